#ifndef POSMINI_SYSTEM_H
#define POSMINI_SYSTEM_H

/// Linux calls that Swift's Glibc module does not expose (GNU extensions, sys/eventfd.h).

/// A non-blocking, close-on-exec eventfd; -1 with errno set on failure.
int posmini_eventfd(void);
/// Names the calling thread (at most 15 bytes are kept); 0 or an errno.
int posmini_set_thread_name(const char *name);
/// Makes the process not dumpable: no core file, no ptrace or /proc/PID/mem by other
/// unprivileged processes. 0 or -1 with errno set.
int posmini_set_undumpable(void);
/// Whether the process is dumpable (1), not (0), or -1 on error.
int posmini_dumpable(void);

/// Bytes malloc has handed out and not had back (mallinfo2: uordblks + hblkhd).
unsigned long long posmini_heap_in_use(void);

/// Fixes malloc's thresholds at their defaults (128 KiB): blocks that large are mapped on their
/// own and unmapped when freed, and an arena's free top past 128 KiB goes back at once. glibc
/// otherwise raises both after the first large block is freed (to its size, and twice its size),
/// after which the decoder's large buffers come from a thread's arena, whose free top
/// malloc_trim does not shrink. Returns 1 when both were set.
int posmini_fix_malloc_thresholds(void);

/// Gives free heap memory back to the kernel (malloc_trim(0): every arena, free pages inside
/// them too). After a burst (a backlog of swipes, a thousand clients) malloc keeps the pages it
/// needed at the peak; this returns them. Returns 1 when memory was released.
int posmini_trim_heap(void);

/// Hands back the process's clean start-up pages: madvise(MADV_PAGEOUT) over every read-only
/// or executable mapping of a file (the program, the libraries). Pages the process still uses
/// come back on their next touch (from the page cache, or the file); pages other processes map
/// are left alone by the kernel. Returns the bytes advised, or -1 with errno set (EINVAL: a
/// kernel before 5.4, which has no MADV_PAGEOUT).
long long posmini_release_file_pages(void);

/// Safe file writing (ReaderIO's SafeFiles.swift).
/// renameat2(RENAME_NOREPLACE): 0, or -1 with errno set (EEXIST: the new name exists; EINVAL:
/// the file system cannot do it).
int posmini_rename_noreplace(int olddirfd, const char *oldpath, int newdirfd, const char *newpath);
/// Fills `buffer` from the kernel's random source (getrandom); 0 or -1 with errno set.
int posmini_random_bytes(void *buffer, unsigned long count);
/// O_PATH (a GNU extension the Swift module may not show).
int posmini_o_path(void);

#endif

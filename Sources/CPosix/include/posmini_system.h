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

#endif

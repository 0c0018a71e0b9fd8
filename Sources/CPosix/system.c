#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <stdio.h>
#include <errno.h>
#include "posmini_system.h"

int posmini_eventfd(void) { return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); }

int posmini_set_thread_name(const char *name) { return pthread_setname_np(pthread_self(), name); }

#include <sys/prctl.h>

int posmini_set_undumpable(void) {
    return prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

int posmini_dumpable(void) {
    return prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
}

unsigned long long posmini_heap_in_use(void) {
    struct mallinfo2 info = mallinfo2();
    return (unsigned long long)info.uordblks + (unsigned long long)info.hblkhd;
}

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif

long long posmini_release_file_pages(void) {
    FILE *maps = fopen("/proc/self/maps", "re");
    if (maps == NULL) return -1;
    char line[4096];
    long long advised = 0;
    int failure = 0;
    while (fgets(line, sizeof line, maps) != NULL) {
        unsigned long start, end, offset, inode;
        char perms[5];
        int path = 0;
        if (sscanf(line, "%lx-%lx %4s %lx %*s %lu %n", &start, &end, perms, &offset, &inode, &path) < 5) continue;
        // A file (inode set, a path) mapped without write permission: clean pages only.
        if (inode == 0 || path == 0 || line[path] != '/' || perms[1] == 'w' || perms[0] != 'r') continue;
        if (madvise((void *)start, end - start, MADV_PAGEOUT) == 0) {
            advised += (long long)(end - start);
        } else if (failure == 0) {
            failure = errno;
        }
    }
    fclose(maps);
    if (advised == 0 && failure != 0) {
        errno = failure;
        return -1;
    }
    return advised;
}

int posmini_trim_heap(void) { return malloc_trim(0); }

int posmini_fix_malloc_thresholds(void) {
    return mallopt(M_MMAP_THRESHOLD, 128 * 1024) == 1 && mallopt(M_TRIM_THRESHOLD, 128 * 1024) == 1;
}

#include <fcntl.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE 1
#endif

int posmini_rename_noreplace(int olddirfd, const char *oldpath, int newdirfd, const char *newpath) {
    // The system call itself: glibc's wrapper appeared in 2.28 and is not in every header.
    return (int)syscall(SYS_renameat2, olddirfd, oldpath, newdirfd, newpath, RENAME_NOREPLACE);
}

int posmini_random_bytes(void *buffer, unsigned long count) {
    unsigned char *p = buffer;
    while (count > 0) {
        ssize_t n = getrandom(p, count, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += n;
        count -= (unsigned long)n;
    }
    return 0;
}

int posmini_o_path(void) { return O_PATH; }

#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <sys/eventfd.h>
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

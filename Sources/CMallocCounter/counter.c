#include <stddef.h>
#include <errno.h>
#include <stdatomic.h>
#include "CMallocCounter.h"

// glibc's own entry points: interposing the public names in the executable and forwarding
// here needs no dlsym (which would itself allocate).
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
extern void *__libc_memalign(size_t, size_t);

static _Atomic long allocations;
// Per thread as well: the capture thread's own count, whatever the other threads do.
static _Thread_local long thread_allocations;

static inline void count(void) {
    atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
    thread_allocations++;
}

long posmini_allocation_count(void) { return atomic_load_explicit(&allocations, memory_order_relaxed); }
long posmini_thread_allocation_count(void) { return thread_allocations; }

void *malloc(size_t n) { count(); return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { count(); return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { count(); return __libc_realloc(p, n); }
void free(void *p) { __libc_free(p); }
void *memalign(size_t alignment, size_t n) { count(); return __libc_memalign(alignment, n); }
void *aligned_alloc(size_t alignment, size_t n) { count(); return __libc_memalign(alignment, n); }
int posix_memalign(void **out, size_t alignment, size_t n) {
    count();
    void *p = __libc_memalign(alignment, n);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

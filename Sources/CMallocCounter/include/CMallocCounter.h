#ifndef POSMINI_MALLOC_COUNTER_H
#define POSMINI_MALLOC_COUNTER_H
/// Counts calls that allocate heap memory (malloc, calloc, realloc, posix_memalign,
/// aligned_alloc, memalign) in the process that links this target: the benchmark's proof that
/// steady-state decoding does not allocate. Linked into posmini-bench only.
long posmini_allocation_count(void);
/// Allocations made by the calling thread so far.
long posmini_thread_allocation_count(void);
#endif

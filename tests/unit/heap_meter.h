/* heap_meter.h — how many heap bytes the process holds right now, for tests that
 * bound what a hostile guest or agent can make the host allocate (counted, never
 * timed). Under ASan its allocator's own count; otherwise glibc's mallinfo2()
 * (in-use chunks plus mmap'd ones). heap_meter_init() puts every thread on the
 * main arena first, since mallinfo2() only reports that one. */
#ifndef PROVIUM_TESTS_HEAP_METER_H
#define PROVIUM_TESTS_HEAP_METER_H

#include <stddef.h>
#include <stdint.h>

#if defined(__SANITIZE_ADDRESS__)
#define HEAP_METER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HEAP_METER_ASAN 1
#endif
#endif

#ifdef HEAP_METER_ASAN
/* The ASan runtime's own count (gcc ships no sanitizer headers: declared here). */
size_t __sanitizer_get_current_allocated_bytes(void);
static inline void heap_meter_init(void) {}
static inline size_t heap_in_use(void)
{
	return __sanitizer_get_current_allocated_bytes();
}
#else
#include <malloc.h>
static inline void heap_meter_init(void)
{
	mallopt(M_ARENA_MAX, 1);
}
static inline size_t heap_in_use(void)
{
	struct mallinfo2 m = mallinfo2();
	return m.uordblks + m.hblkhd;
}
#endif

/* Bytes the heap grew by since `base` (0 when it shrank). */
static inline size_t heap_growth(size_t base)
{
	size_t now = heap_in_use();
	return now > base ? now - base : 0;
}

#endif

// Counts heap allocations so a test can prove that a warmed-up call makes none:
// replaces the global operator new of the test binary that includes it (once,
// in its one translation unit). operator new[] and the aligned forms forward to
// these by default.
#ifndef TILEKIT_TESTS_COUNT_ALLOCATIONS_H_
#define TILEKIT_TESTS_COUNT_ALLOCATIONS_H_

#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <new>

#pragma GCC diagnostic ignored "-Wmismatched-new-delete"  // the counting operator new below uses malloc

static std::atomic<size_t> g_allocations{0};

void* operator new(size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
// The nothrow form too (std::stable_sort's buffer uses it): otherwise it would
// come from the runtime's allocator and be freed by the delete below (ASan:
// alloc-dealloc-mismatch).
void* operator new(size_t n, const std::nothrow_t&) noexcept {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(n ? n : 1);
}
void operator delete(void* p) noexcept { std::free(p); }  // NOLINT: pairs with the malloc above
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }

#endif  // TILEKIT_TESTS_COUNT_ALLOCATIONS_H_

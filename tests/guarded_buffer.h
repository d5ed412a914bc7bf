// A test allocator that puts a buffer flush against an inaccessible page, so a
// kernel that reads or writes one element past either end faults at once
// (SIGSEGV) instead of touching a neighbour in the heap: masked tails, the last
// row of a view with ld > cols, a vector load "a little past the end" that an
// over-read by ASan's shadow granularity (8 bytes) would miss in a release build.
//
//   GuardedBuffer<float> c(n, Guard::kAfter);   // c.data()[n] is on the guard page
//   GuardedBuffer<float> c(n, Guard::kBefore);  // c.data()[-1] is on the guard page
//
// For a matrix view, allocate its span, (rows - 1)·ld + cols elements
// (SpanElements): the last row's last column then touches the guard (kAfter)
// or the first row's first column does (kBefore). Only the guarded end is
// tight; alignment follows from it (kBefore: page-aligned; kAfter: aligned to
// the element size only, so kernels meet unaligned data too).
#ifndef TILEKIT_TESTS_GUARDED_BUFFER_H_
#define TILEKIT_TESTS_GUARDED_BUFFER_H_

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <cstdlib>

namespace tilekit {
namespace testing {

enum class Guard { kAfter, kBefore };

inline const char* GuardName(Guard g) { return g == Guard::kAfter ? "after" : "before"; }

inline size_t SpanElements(size_t rows, size_t cols, size_t ld) { return rows && cols ? (rows - 1) * ld + cols : 0; }

template <typename T>
class GuardedBuffer {
 public:
  GuardedBuffer(size_t n, Guard guard) : n_(n) {
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    const size_t data_pages = (n * sizeof(T) + page - 1) / page;
    map_bytes_ = (data_pages + 1) * page;
    void* m = mmap(nullptr, map_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
      std::perror("GuardedBuffer: mmap");
      std::abort();
    }
    map_ = static_cast<unsigned char*>(m);
    unsigned char* guard_page = guard == Guard::kAfter ? map_ + data_pages * page : map_;
    if (mprotect(guard_page, page, PROT_NONE) != 0) {
      std::perror("GuardedBuffer: mprotect");
      std::abort();
    }
    data_ = reinterpret_cast<T*>(guard == Guard::kAfter ? guard_page - n * sizeof(T) : map_ + page);
  }
  ~GuardedBuffer() { munmap(map_, map_bytes_); }
  GuardedBuffer(const GuardedBuffer&) = delete;
  GuardedBuffer& operator=(const GuardedBuffer&) = delete;

  T* data() { return data_; }
  const T* data() const { return data_; }
  size_t size() const { return n_; }
  T& operator[](size_t i) { return data_[i]; }
  const T& operator[](size_t i) const { return data_[i]; }

 private:
  unsigned char* map_ = nullptr;
  size_t map_bytes_ = 0;
  T* data_ = nullptr;
  size_t n_ = 0;
};

}  // namespace testing
}  // namespace tilekit

#endif  // TILEKIT_TESTS_GUARDED_BUFFER_H_

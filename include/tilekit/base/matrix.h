// Non-owning views of row-major matrices, the element types tilekit kernels
// accept, and the overflow-checked size arithmetic their validation shares.
#ifndef TILEKIT_BASE_MATRIX_H_
#define TILEKIT_BASE_MATRIX_H_

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "tilekit/base/bf16.h"
#include "tilekit/base/status.h"

namespace tilekit {

// rows × cols, element (i, j) at data[i * ld + j]; ld >= cols.
template <typename T>
struct MatrixView {
  T* data = nullptr;
  size_t rows = 0, cols = 0, ld = 0;

  // A writable view passes wherever a read-only one is taken (gemm's A).
  template <typename U, typename = std::enable_if_t<std::is_same<U, T>::value && !std::is_const<U>::value>>
  operator MatrixView<const U>() const {
    return MatrixView<const U>{data, rows, cols, ld};
  }
};

// ld = 0 means "packed rows" (ld = cols).
template <typename T>
MatrixView<T> matrix(T* data, size_t rows, size_t cols, size_t ld = 0) {
  return MatrixView<T>{data, rows, cols, ld ? ld : cols};
}

template <typename T>
constexpr bool kIsKernelElement = std::is_same<std::remove_const_t<T>, float>::value ||
                                  std::is_same<std::remove_const_t<T>, bf16>::value;

template <typename T>
constexpr bool kIsBf16 = std::is_same<std::remove_const_t<T>, bf16>::value;

namespace detail {

// a * b, false on overflow.
inline bool mul_fits(size_t a, size_t b, size_t* out) {
  if (a && b > SIZE_MAX / a) return false;
  *out = a * b;
  return true;
}

// Bytes spanned by a view: (rows-1)·ld + cols elements; false on overflow.
template <typename T>
bool span_bytes(const MatrixView<T>& m, size_t* bytes) {
  if (m.rows == 0 || m.cols == 0) {
    *bytes = 0;
    return true;
  }
  size_t elems;
  if (!mul_fits(m.rows - 1, m.ld, &elems) || elems > SIZE_MAX - m.cols) return false;
  return mul_fits(elems + m.cols, sizeof(T), bytes);
}

inline bool ranges_overlap(const void* a, size_t a_bytes, const void* b, size_t b_bytes) {
  if (!a_bytes || !b_bytes) return false;
  const auto pa = reinterpret_cast<uintptr_t>(a), pb = reinterpret_cast<uintptr_t>(b);
  return pa < pb + b_bytes && pb < pa + a_bytes;
}

// A view a kernel may read or write: not null (unless empty), ld >= cols, and a
// byte span that fits in size_t. `op` and `name` make the message
// ("gemm: residual has ld=2 < cols=20").
template <typename T>
Status check_view(const char* op, const char* name, const MatrixView<T>& v) {
  if (!v.data && v.rows && v.cols) return fail(Status::kNullPointer, "%s: %s is null", op, name);
  if (v.ld < v.cols) {
    return fail(Status::kBadLeadingDim, "%s: %s has ld=%zu < cols=%zu", op, name, v.ld, v.cols);
  }
  size_t bytes;
  if (!span_bytes(v, &bytes)) {
    return fail(Status::kOverflow, "%s: %s of %zu x %zu (ld %zu) overflows size_t", op, name, v.rows, v.cols, v.ld);
  }
  return Status::kOk;
}

}  // namespace detail
}  // namespace tilekit

#endif  // TILEKIT_BASE_MATRIX_H_

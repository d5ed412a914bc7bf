// Non-owning views of row-major matrices, the element types tilekit kernels
// accept, and the overflow-checked size arithmetic their validation shares.
#ifndef TILEKIT_BASE_MATRIX_H_
#define TILEKIT_BASE_MATRIX_H_

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "tilekit/base/bf16.h"
#include "tilekit/base/size_math.h"
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

// tokens × heads rows of head_dim elements: row (t, h) starts at
// data[t * token_stride + h * head_stride]. The layout of Q and K ([tokens]
// [heads][head_dim], possibly slices of one fused QKV output, so token_stride
// can exceed heads · head_dim) and of per-head norms (QK-norm). Rows must not
// overlap: head_stride >= head_dim, token_stride >= (heads - 1) · head_stride +
// head_dim. A matrix is the case heads = 1 (rows_of).
template <typename T>
struct HeadsView {
  T* data = nullptr;
  size_t tokens = 0, heads = 0, head_dim = 0;
  size_t token_stride = 0, head_stride = 0;

  template <typename U, typename = std::enable_if_t<std::is_same<U, T>::value && !std::is_const<U>::value>>
  operator HeadsView<const U>() const {
    return HeadsView<const U>{data, tokens, heads, head_dim, token_stride, head_stride};
  }
  T* row(size_t t, size_t h) const { return data + t * token_stride + h * head_stride; }
};

// Strides of 0 mean packed: head_stride = head_dim, token_stride = heads · head_dim.
template <typename T>
HeadsView<T> heads_view(T* data, size_t tokens, size_t heads, size_t head_dim, size_t token_stride = 0,
                        size_t head_stride = 0) {
  if (!head_stride) head_stride = head_dim;
  if (!token_stride) token_stride = heads * head_stride;
  return HeadsView<T>{data, tokens, heads, head_dim, token_stride, head_stride};
}

// The rows of a matrix as a HeadsView of one head per row.
template <typename T>
HeadsView<T> rows_of(const MatrixView<T>& m) {
  return HeadsView<T>{m.data, m.rows, 1, m.cols, m.ld, m.cols};
}

template <typename T>
constexpr bool kIsKernelElement = std::is_same<std::remove_const_t<T>, float>::value ||
                                  std::is_same<std::remove_const_t<T>, bf16>::value;

template <typename T>
constexpr bool kIsBf16 = std::is_same<std::remove_const_t<T>, bf16>::value;

namespace detail {

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

// Bytes spanned by a HeadsView; false on overflow.
template <typename T>
bool span_bytes(const HeadsView<T>& v, size_t* bytes) {
  if (v.tokens == 0 || v.heads == 0 || v.head_dim == 0) {
    *bytes = 0;
    return true;
  }
  size_t a, b;
  if (!mul_fits(v.tokens - 1, v.token_stride, &a) || !mul_fits(v.heads - 1, v.head_stride, &b)) return false;
  if (a > SIZE_MAX - b || a + b > SIZE_MAX - v.head_dim) return false;
  return mul_fits(a + b + v.head_dim, sizeof(T), bytes);
}

// A HeadsView a kernel may read or write: not null (unless empty), rows that
// do not overlap each other, a span that fits in size_t.
template <typename T>
Status check_view(const char* op, const char* name, const HeadsView<T>& v) {
  const bool empty = v.tokens == 0 || v.heads == 0;
  if (!v.data && !empty) return fail(Status::kNullPointer, "%s: %s is null", op, name);
  if (v.heads > 1 && v.head_stride < v.head_dim) {
    return fail(Status::kBadLeadingDim, "%s: %s has head_stride=%zu < head_dim=%zu", op, name, v.head_stride,
                v.head_dim);
  }
  size_t row_extent = 0;
  if (v.heads && (!mul_fits(v.heads - 1, v.head_stride, &row_extent) || row_extent > SIZE_MAX - v.head_dim)) {
    return fail(Status::kOverflow, "%s: %s: %zu heads x stride %zu overflows size_t", op, name, v.heads, v.head_stride);
  }
  row_extent += v.head_dim;
  if (v.tokens > 1 && v.heads && v.token_stride < row_extent) {
    return fail(Status::kBadLeadingDim, "%s: %s has token_stride=%zu < %zu, the extent of its %zu heads", op, name,
                v.token_stride, row_extent, v.heads);
  }
  size_t bytes;
  if (!span_bytes(v, &bytes)) {
    return fail(Status::kOverflow, "%s: %s of %zu tokens x %zu heads x %zu overflows size_t", op, name, v.tokens,
                v.heads, v.head_dim);
  }
  return Status::kOk;
}

template <typename A, typename B>
bool same_view(const HeadsView<A>& a, const HeadsView<B>& b) {
  return static_cast<const void*>(a.data) == static_cast<const void*>(b.data) && sizeof(A) == sizeof(B) &&
         a.tokens == b.tokens && a.heads == b.heads && a.head_dim == b.head_dim &&
         (a.tokens < 2 || a.token_stride == b.token_stride) && (a.heads < 2 || a.head_stride == b.head_stride);
}

// Whether two views share any byte, judged on their spans (conservative:
// interleaved views whose rows are disjoint count as overlapping).
template <typename A, typename B>
bool views_overlap(const HeadsView<A>& a, const HeadsView<B>& b) {
  size_t a_bytes = 0, b_bytes = 0;
  span_bytes(a, &a_bytes);
  span_bytes(b, &b_bytes);
  return ranges_overlap(a.data, a_bytes, b.data, b_bytes);
}

// Whether two views share no byte. Exact for views with the same token stride
// in bytes (slices of one fused QKV row: each must fit in the other's gap
// within a token's period); otherwise judged on their spans.
template <typename A, typename B>
bool views_disjoint(const HeadsView<A>& a, const HeadsView<B>& b) {
  if (!views_overlap(a, b)) return true;
  const size_t period = a.token_stride * sizeof(A);
  if (a.tokens < 2 || b.tokens < 2 || period != b.token_stride * sizeof(B)) return false;
  const uintptr_t pa = reinterpret_cast<uintptr_t>(a.data), pb = reinterpret_cast<uintptr_t>(b.data);
  const size_t shift = static_cast<size_t>((pb >= pa ? pb - pa : pa - pb) % period);
  const size_t offset = pb >= pa ? shift : (period - shift) % period;  // b's start within a's period
  const size_t a_extent = ((a.heads - 1) * a.head_stride + a.head_dim) * sizeof(A);
  const size_t b_extent = ((b.heads - 1) * b.head_stride + b.head_dim) * sizeof(B);
  return a_extent <= offset && offset + b_extent <= period;
}

}  // namespace detail
}  // namespace tilekit

#endif  // TILEKIT_BASE_MATRIX_H_

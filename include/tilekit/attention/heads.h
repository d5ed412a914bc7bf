// Validation of the HeadsView (base/matrix.h) attention reads and writes: the
// layout of Q, K and V as a projection writes them ([tokens][heads][dim], heads
// side by side within a token, tokens token_stride elements apart), so a slice
// of a fused QKV GEMM output is a view without a copy.
#ifndef TILEKIT_ATTENTION_HEADS_H_
#define TILEKIT_ATTENTION_HEADS_H_

#include <cstddef>

#include "tilekit/base/matrix.h"

namespace tilekit {

namespace detail {

// As check_view for a matrix of `tokens` rows of token_stride elements,
// heads·head_dim used: attention reads the heads of a token as one row, so they
// must be adjacent (head_stride == head_dim).
template <typename T>
Status check_heads(const char* op, const char* name, const HeadsView<T>& v, size_t* bytes) {
  const MatrixView<T> m{v.data, v.tokens, v.heads * v.head_dim, v.token_stride};
  if (v.heads && v.head_dim > SIZE_MAX / v.heads) {
    return fail(Status::kOverflow, "%s: %s heads x dim overflows", op, name);
  }
  if (!v.data && v.tokens && v.heads && v.head_dim) return fail(Status::kNullPointer, "%s: %s is null", op, name);
  if (v.heads > 1 && v.head_stride != v.head_dim) {
    return fail(Status::kBadLeadingDim, "%s: %s has head_stride %zu != head_dim %zu (heads must be adjacent)", op,
                name, v.head_stride, v.head_dim);
  }
  if (v.token_stride < v.heads * v.head_dim) {
    return fail(Status::kBadLeadingDim, "%s: %s has a token stride of %zu < heads x dim = %zu x %zu", op, name,
                v.token_stride, v.heads, v.head_dim);
  }
  if (!span_bytes(m, bytes)) return fail(Status::kOverflow, "%s: %s overflows size_t", op, name);
  return Status::kOk;
}

}  // namespace detail
}  // namespace tilekit

#endif  // TILEKIT_ATTENTION_HEADS_H_

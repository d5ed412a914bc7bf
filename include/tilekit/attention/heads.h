// Views of per-token, per-head rows: the layout of Q, K and V as a projection
// writes them ([tokens][heads][dim], heads side by side within a token, tokens
// `stride` elements apart), so a slice of a fused QKV GEMM output is a view
// without a copy.
#ifndef TILEKIT_ATTENTION_HEADS_H_
#define TILEKIT_ATTENTION_HEADS_H_

#include <cstddef>
#include <type_traits>

#include "tilekit/base/matrix.h"

namespace tilekit {

// Element (t, h, c) at data[t * stride + h * dim + c]; stride >= heads * dim.
template <typename T>
struct HeadsView {
  T* data = nullptr;
  size_t tokens = 0, heads = 0, dim = 0, stride = 0;

  template <typename U, typename = std::enable_if_t<std::is_same<U, T>::value && !std::is_const<U>::value>>
  operator HeadsView<const U>() const {
    return HeadsView<const U>{data, tokens, heads, dim, stride};
  }
  T* row(size_t t, size_t h) const { return data + t * stride + h * dim; }
};

// stride = 0 means "packed tokens" (stride = heads * dim).
template <typename T>
HeadsView<T> heads_view(T* data, size_t tokens, size_t heads, size_t dim, size_t stride = 0) {
  return HeadsView<T>{data, tokens, heads, dim, stride ? stride : heads * dim};
}

namespace detail {

// As check_view for a matrix of `tokens` rows of stride elements, heads·dim used.
template <typename T>
Status check_heads(const char* op, const char* name, const HeadsView<T>& v, size_t* bytes) {
  const MatrixView<T> m{v.data, v.tokens, v.heads * v.dim, v.stride};
  if (v.heads && v.dim > SIZE_MAX / v.heads) return fail(Status::kOverflow, "%s: %s heads x dim overflows", op, name);
  if (!v.data && v.tokens && v.heads && v.dim) return fail(Status::kNullPointer, "%s: %s is null", op, name);
  if (v.stride < v.heads * v.dim) {
    return fail(Status::kBadLeadingDim, "%s: %s has a token stride of %zu < heads x dim = %zu x %zu", op, name,
                v.stride, v.heads, v.dim);
  }
  if (!span_bytes(m, bytes)) return fail(Status::kOverflow, "%s: %s overflows size_t", op, name);
  return Status::kOk;
}

}  // namespace detail
}  // namespace tilekit

#endif  // TILEKIT_ATTENTION_HEADS_H_

// What the row ops (rms_norm, rope, softmax) share between their -impl.h and
// -inl.h halves: how a kernel sees a strided operand. Target-independent; no
// Highway.
#ifndef TILEKIT_OPS_ROWS_H_
#define TILEKIT_OPS_ROWS_H_

#include <cstddef>

#include "tilekit/base/matrix.h"

namespace tilekit {
namespace detail {

// One operand as a kernel sees it: row r (= token t, head h of `heads`) starts
// at data + t·token_stride + h·head_stride elements of float or bf16.
struct StridedRows {
  void* data = nullptr;
  size_t token_stride = 0, head_stride = 0;
  bool bf16 = false;

  template <typename T>
  static StridedRows of(const HeadsView<T>& v) {
    return StridedRows{const_cast<void*>(static_cast<const void*>(v.data)), v.token_stride, v.head_stride, kIsBf16<T>};
  }
  template <typename T>
  T* row(size_t token, size_t head) const {
    return static_cast<T*>(data) + token * token_stride + head * head_stride;
  }
};

}  // namespace detail
}  // namespace tilekit

#endif  // TILEKIT_OPS_ROWS_H_

// Row softmax over an fp32 [M][N] matrix: y = softmax(x · scale + mask) per
// row, with the row maximum subtracted before exponentiating.
//   - a row whose every element is -Inf (fully masked) gives zeros, not NaN;
//   - a NaN anywhere in a row (in x, the mask, or made by x·scale + mask, as
//     Inf - Inf) makes the whole row NaN, and so does +Inf (Inf - Inf when the
//     maximum is subtracted), as in PyTorch;
//   - exp is Highway's hn::Exp (contrib/math, at most 1 ULP of error).
// y may be x itself (same data and ld); any other overlap with x or the mask
// is an error (column blocks of one buffer, same ld, do not overlap). Rows are split over options.executor, each computed whole by one
// thread: results do not depend on the thread count.
#ifndef TILEKIT_OPS_SOFTMAX_H_
#define TILEKIT_OPS_SOFTMAX_H_

#include "tilekit/base/api.h"
#include "tilekit/base/matrix.h"
#include "tilekit/base/status.h"
#include "tilekit/threading/executor.h"

namespace tilekit {

struct SoftmaxOptions {
  float scale = 1.f;             // finite
  MatrixView<const float> mask;  // additive, M × N with its own ld; data null: none
  Executor* executor = nullptr;  // null: the calling thread
};

TILEKIT_API Status softmax(MatrixView<const float> x, MatrixView<float> y, const SoftmaxOptions& options = {});

}  // namespace tilekit

#endif  // TILEKIT_OPS_SOFTMAX_H_

// Element-wise ops over fp32 rows, for what a GEMM's epilogue cannot carry:
// the residual adds after a norm (Gemma's post-attention and post-MLP norms:
// x = x + norm(out)), products of two tensors, the embedding's scale by √dim,
// and the final logit softcap (Gemma 2).
//
//   add      y = a + b
//   mul      y = a · b
//   scale    y = s · x
//   softcap  y = c · tanh(x / c)    (c > 0, finite; Tanh within 4 ULP; ±Inf gives ±c)
//
// add, mul and scale are one fp32 rounding per element: the same bits on every
// path and for any thread count. Operands are [M][N] with their own leading
// dimensions; y may be an input itself (same data and ld: in place), any other
// overlap with an input is refused (Status::kAliasing). Rows are split over
// options.executor (threading/split.h), each row computed whole by one thread.
#ifndef TILEKIT_OPS_ELEMENTWISE_H_
#define TILEKIT_OPS_ELEMENTWISE_H_

#include "tilekit/base/api.h"
#include "tilekit/base/matrix.h"
#include "tilekit/base/status.h"
#include "tilekit/threading/executor.h"

namespace tilekit {

struct ElementwiseOptions {
  Executor* executor = nullptr;  // null: the calling thread
};

TILEKIT_API Status add(MatrixView<const float> a, MatrixView<const float> b, MatrixView<float> y,
                       const ElementwiseOptions& options = {});
TILEKIT_API Status mul(MatrixView<const float> a, MatrixView<const float> b, MatrixView<float> y,
                       const ElementwiseOptions& options = {});
// s finite.
TILEKIT_API Status scale(MatrixView<const float> x, float s, MatrixView<float> y,
                         const ElementwiseOptions& options = {});
// cap finite and > 0.
TILEKIT_API Status softcap(MatrixView<const float> x, float cap, MatrixView<float> y,
                           const ElementwiseOptions& options = {});

}  // namespace tilekit

#endif  // TILEKIT_OPS_ELEMENTWISE_H_

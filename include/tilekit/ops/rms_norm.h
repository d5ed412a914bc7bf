// RMSNorm over rows: y = x / sqrt(mean(x²) + eps) · w, and the fused residual
// add of vLLM's fused_add_rms_norm (h = x + residual; residual ← h; y =
// rmsnorm(h)) in one pass over memory.
//
// Rows are the rows of a HeadsView: a matrix (rows_of(MatrixView)), or the
// heads of [tokens][heads][head_dim] Q or K for the QK-norm of Qwen3 and
// Gemma 3 (one weight of head_dim shared by every head). x and y are fp32 or
// bf16, the weight fp32. The sum of squares and the normalisation are fp32.
//
// Where bf16 rounding happens (transformers#29402), so that outputs can match
// a reference bit for bit:
//  - kAfterWeight (Gemma, vLLM): y = bf16(x·r·w), one rounding at the store.
//  - kBeforeWeight (HF Llama): the normalised value x·r is rounded to x's dtype
//    first (`hidden_states.to(input_dtype)`), then multiplied by w and rounded
//    to y's dtype. Only differs from kAfterWeight when x is bf16.
// r = 1 / sqrt(sum(x²) / D + eps) in fp32 (sum, divide, add, sqrt, divide), the
// order of PyTorch's CPU mean and rsqrt. The sum's order is this library's
// (vector accumulators), fixed per path.
//
// add_rms_norm: h = x + residual in fp32, rounded to the residual's dtype
// (x's) as it is stored; the norm is taken of the stored h, as HF's decoder
// layer does with its bf16 residual stream.
//
// In place: y may be x itself (same data, strides and dtype). Any other
// overlap between outputs, or between an output and an input, is an error
// (Status::kAliasing); views whose rows interleave without sharing an element
// (K in, V out of one fused QKV row: same token stride) are fine. Rows are split over options.executor, each row computed
// whole by one thread: results do not depend on the thread count.
#ifndef TILEKIT_OPS_RMS_NORM_H_
#define TILEKIT_OPS_RMS_NORM_H_

#include "tilekit/base/api.h"
#include "tilekit/base/bf16.h"
#include "tilekit/base/matrix.h"
#include "tilekit/base/status.h"
#include "tilekit/threading/executor.h"

namespace tilekit {

enum class Bf16Rounding {
  kAfterWeight,   // y = bf16(x·r·w) (Gemma, vLLM)
  kBeforeWeight,  // y = bf16(bf16(x·r)·w) when x is bf16 (HF Llama)
};

struct RmsNormOptions {
  float eps = 1e-6f;           // >= 0, not NaN
  bool weight_offset = false;  // scale by (1 + w), as Gemma stores its weights
  Bf16Rounding rounding = Bf16Rounding::kAfterWeight;
  Executor* executor = nullptr;  // null: the calling thread
};

// y = rmsnorm(x) · w over each of x's tokens × heads rows of head_dim; weight
// has head_dim floats.
TILEKIT_API Status rms_norm(HeadsView<const float> x, const float* weight, HeadsView<float> y,
                            const RmsNormOptions& options = {});
TILEKIT_API Status rms_norm(HeadsView<const float> x, const float* weight, HeadsView<bf16> y,
                            const RmsNormOptions& options = {});
TILEKIT_API Status rms_norm(HeadsView<const bf16> x, const float* weight, HeadsView<float> y,
                            const RmsNormOptions& options = {});
TILEKIT_API Status rms_norm(HeadsView<const bf16> x, const float* weight, HeadsView<bf16> y,
                            const RmsNormOptions& options = {});

// h = x + residual; residual ← h; y = rmsnorm(h) · w. residual has x's dtype
// and shape; y may be x (in place), never the residual.
TILEKIT_API Status add_rms_norm(HeadsView<const float> x, HeadsView<float> residual, const float* weight,
                                HeadsView<float> y, const RmsNormOptions& options = {});
TILEKIT_API Status add_rms_norm(HeadsView<const float> x, HeadsView<float> residual, const float* weight,
                                HeadsView<bf16> y, const RmsNormOptions& options = {});
TILEKIT_API Status add_rms_norm(HeadsView<const bf16> x, HeadsView<bf16> residual, const float* weight,
                                HeadsView<float> y, const RmsNormOptions& options = {});
TILEKIT_API Status add_rms_norm(HeadsView<const bf16> x, HeadsView<bf16> residual, const float* weight,
                                HeadsView<bf16> y, const RmsNormOptions& options = {});

}  // namespace tilekit

#endif  // TILEKIT_OPS_RMS_NORM_H_

// Definitions of ops/rms_norm.h (compiled once per program, by its module's implementation.h).
#ifndef TILEKIT_OPS_RMS_NORM_IMPL_H_
#define TILEKIT_OPS_RMS_NORM_IMPL_H_

#include <cmath>

#include "tilekit/cpu/dispatch.h"
#include "tilekit/ops/exports.h"
#include "tilekit/ops/rms_norm.h"
#include "tilekit/ops/rows.h"
#include "tilekit/threading/split.h"

namespace tilekit {
namespace detail {

template <typename A, typename B>
Status check_same_shape(const char* op, const char* a_name, const HeadsView<A>& a, const char* b_name,
                        const HeadsView<B>& b) {
  if (a.tokens != b.tokens || a.heads != b.heads || a.head_dim != b.head_dim) {
    return fail(Status::kShapeMismatch, "%s: %s is %zu x %zu x %zu but %s is %zu x %zu x %zu", op, a_name, a.tokens,
                a.heads, a.head_dim, b_name, b.tokens, b.heads, b.head_dim);
  }
  return Status::kOk;
}

// x may be the residual's input only when absent (residual.data null).
template <typename X, typename Y>
Status rms_norm_impl(const char* op, HeadsView<const X> x, HeadsView<X> residual, bool has_residual,
                     const float* weight, HeadsView<Y> y, const RmsNormOptions& opt) {
  Status s;
  if ((s = check_view(op, "x", x)) != Status::kOk || (s = check_view(op, "y", y)) != Status::kOk) return s;
  if (has_residual && (s = check_view(op, "residual", residual)) != Status::kOk) return s;
  if ((s = check_same_shape(op, "x", x, "y", y)) != Status::kOk) return s;
  if (has_residual && (s = check_same_shape(op, "x", x, "residual", residual)) != Status::kOk) return s;
  if (std::isnan(opt.eps) || opt.eps < 0.f)
    return fail(Status::kInvalidArgument, "%s: eps=%g must be >= 0", op, opt.eps);
  if (x.head_dim == 0) return fail(Status::kInvalidArgument, "%s: rows of width 0 (head_dim = 0)", op);
  if (x.tokens == 0 || x.heads == 0) return Status::kOk;
  if (!weight) return fail(Status::kNullPointer, "%s: weight is null", op);
  // y == x exactly is the in-place norm; any other overlap would read values
  // another row (or this one) already overwrote.
  if (!same_view(x, y) && !views_disjoint(x, y)) return fail(Status::kAliasing, "%s: y overlaps x without being x", op);
  if (has_residual && (!views_disjoint(residual, x) || !views_disjoint(residual, y))) {
    return fail(Status::kAliasing, "%s: residual overlaps %s", op, views_disjoint(residual, x) ? "y" : "x");
  }
  const HeadsView<const float> w = heads_view(weight, 1, 1, x.head_dim);
  if (views_overlap(w, y) || (has_residual && views_overlap(w, residual))) {
    return fail(Status::kAliasing, "%s: weight overlaps an output", op);
  }

  RmsNormJob job;
  job.x = StridedRows::of(x);
  job.y = StridedRows::of(y);
  if (has_residual) job.residual = StridedRows::of(residual);
  job.weight = weight;
  job.heads = x.heads;
  job.dim = x.head_dim;
  job.eps = opt.eps;
  job.weight_offset = opt.weight_offset;
  job.round_before_weight = opt.rounding == Bf16Rounding::kBeforeWeight;
  const size_t row_bytes = x.head_dim * (sizeof(X) * (has_residual ? 3 : 1) + sizeof(Y));
  const Isa isa = cpu::active_isa();  // once per call: every chunk runs the same path
  job.native_bf16 = cpu::isa_converts_bf16(isa);
  const Work per_row{4.0 * static_cast<double>(x.head_dim), static_cast<double>(row_bytes)};
  run_chunks(opt.executor, x.tokens * x.heads, per_row, [&job, isa](size_t begin, size_t end) {
    TILEKIT_DISPATCH_ON(isa, RmsNormRows)(job, begin, end);
  });
  return Status::kOk;
}

}  // namespace detail

TILEKIT_API Status rms_norm(HeadsView<const float> x, const float* weight, HeadsView<float> y,
                            const RmsNormOptions& options) {
  return detail::rms_norm_impl<float>("rms_norm", x, HeadsView<float>{}, false, weight, y, options);
}
TILEKIT_API Status rms_norm(HeadsView<const float> x, const float* weight, HeadsView<bf16> y,
                            const RmsNormOptions& options) {
  return detail::rms_norm_impl<float>("rms_norm", x, HeadsView<float>{}, false, weight, y, options);
}
TILEKIT_API Status rms_norm(HeadsView<const bf16> x, const float* weight, HeadsView<float> y,
                            const RmsNormOptions& options) {
  return detail::rms_norm_impl<bf16>("rms_norm", x, HeadsView<bf16>{}, false, weight, y, options);
}
TILEKIT_API Status rms_norm(HeadsView<const bf16> x, const float* weight, HeadsView<bf16> y,
                            const RmsNormOptions& options) {
  return detail::rms_norm_impl<bf16>("rms_norm", x, HeadsView<bf16>{}, false, weight, y, options);
}

TILEKIT_API Status add_rms_norm(HeadsView<const float> x, HeadsView<float> residual, const float* weight,
                                HeadsView<float> y, const RmsNormOptions& options) {
  return detail::rms_norm_impl<float>("add_rms_norm", x, residual, true, weight, y, options);
}
TILEKIT_API Status add_rms_norm(HeadsView<const float> x, HeadsView<float> residual, const float* weight,
                                HeadsView<bf16> y, const RmsNormOptions& options) {
  return detail::rms_norm_impl<float>("add_rms_norm", x, residual, true, weight, y, options);
}
TILEKIT_API Status add_rms_norm(HeadsView<const bf16> x, HeadsView<bf16> residual, const float* weight,
                                HeadsView<float> y, const RmsNormOptions& options) {
  return detail::rms_norm_impl<bf16>("add_rms_norm", x, residual, true, weight, y, options);
}
TILEKIT_API Status add_rms_norm(HeadsView<const bf16> x, HeadsView<bf16> residual, const float* weight,
                                HeadsView<bf16> y, const RmsNormOptions& options) {
  return detail::rms_norm_impl<bf16>("add_rms_norm", x, residual, true, weight, y, options);
}

}  // namespace tilekit

#endif  // TILEKIT_OPS_RMS_NORM_IMPL_H_

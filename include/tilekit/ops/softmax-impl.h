// Definition of ops/softmax.h (compiled once per program, by its module's implementation.h).
#ifndef TILEKIT_OPS_SOFTMAX_IMPL_H_
#define TILEKIT_OPS_SOFTMAX_IMPL_H_

#include <cmath>

#include "tilekit/cpu/dispatch.h"
#include "tilekit/ops/exports.h"
#include "tilekit/ops/rows.h"
#include "tilekit/threading/split.h"
#include "tilekit/ops/softmax.h"

namespace tilekit {

TILEKIT_API Status softmax(MatrixView<const float> x, MatrixView<float> y, const SoftmaxOptions& options) {
  const char* op = "softmax";
  const MatrixView<const float>& mask = options.mask;
  const bool has_mask = mask.data != nullptr;
  Status s;
  if ((s = detail::check_view(op, "x", x)) != Status::kOk || (s = detail::check_view(op, "y", y)) != Status::kOk)
    return s;
  if (has_mask && (s = detail::check_view(op, "mask", mask)) != Status::kOk) return s;
  if (x.rows != y.rows || x.cols != y.cols || (has_mask && (mask.rows != x.rows || mask.cols != x.cols))) {
    return fail(Status::kShapeMismatch, "%s: x is %zu x %zu, y %zu x %zu, mask %zu x %zu", op, x.rows, x.cols, y.rows,
                y.cols, mask.rows, mask.cols);
  }
  if (!std::isfinite(options.scale))
    return fail(Status::kInvalidArgument, "%s: scale=%g is not finite", op, options.scale);
  if (x.cols == 0 && x.rows) return fail(Status::kInvalidArgument, "%s: rows of width 0", op);
  if (x.rows == 0) return Status::kOk;
  const HeadsView<const float> xv = rows_of(x), mv = rows_of(mask);
  const HeadsView<float> yv = rows_of(y);
  if (!detail::same_view(xv, yv) && !detail::views_disjoint(xv, yv)) {
    return fail(Status::kAliasing, "%s: y overlaps x without being x", op);
  }
  if (has_mask && !detail::views_disjoint(mv, yv)) return fail(Status::kAliasing, "%s: mask overlaps y", op);

  detail::SoftmaxJob job;
  job.x = x.data;
  job.mask = has_mask ? mask.data : nullptr;
  job.y = y.data;
  job.n = x.cols;
  job.x_ld = x.ld;
  job.mask_ld = mask.ld;
  job.y_ld = y.ld;
  job.scale = options.scale;
  const Isa isa = cpu::active_isa();  // once per call: every chunk runs the same path
  // exp dominates: Highway's Exp is ~20 vector operations per lane.
  const detail::Work per_row{24.0 * static_cast<double>(x.cols),
                             static_cast<double>(x.cols * sizeof(float) * (has_mask ? 3 : 2))};
  detail::run_chunks(options.executor, x.rows, per_row, [&job, isa](size_t begin, size_t end) {
    TILEKIT_DISPATCH_ON(isa, detail::SoftmaxRows)(job, begin, end);
  });
  return Status::kOk;
}

}  // namespace tilekit

#endif  // TILEKIT_OPS_SOFTMAX_IMPL_H_

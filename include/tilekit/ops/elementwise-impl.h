// Definitions of ops/elementwise.h (compiled once per program, by its module's implementation.h).
#ifndef TILEKIT_OPS_ELEMENTWISE_IMPL_H_
#define TILEKIT_OPS_ELEMENTWISE_IMPL_H_

#include <cmath>

#include "tilekit/cpu/dispatch.h"
#include "tilekit/ops/elementwise.h"
#include "tilekit/ops/exports.h"
#include "tilekit/threading/split.h"

namespace tilekit {
namespace detail {

// An output may be an input exactly (same data and ld); any other overlap
// would read elements another row already overwrote.
inline Status check_elementwise_input(const char* op, const char* name, const MatrixView<const float>& in,
                                      const MatrixView<float>& y) {
  Status s = check_view(op, name, in);
  if (s != Status::kOk) return s;
  if (in.rows != y.rows || in.cols != y.cols) {
    return fail(Status::kShapeMismatch, "%s: %s is %zu x %zu but y is %zu x %zu", op, name, in.rows, in.cols, y.rows,
                y.cols);
  }
  const HeadsView<const float> iv = rows_of(in);
  const HeadsView<float> yv = rows_of(y);
  if (!same_view(iv, yv) && !views_disjoint(iv, yv)) {
    return fail(Status::kAliasing, "%s: y overlaps %s without being %s", op, name, name);
  }
  return Status::kOk;
}

inline Status run_elementwise(const char* op, ElementwiseOp kind, const MatrixView<const float>& a,
                              const MatrixView<const float>* b, float value, const MatrixView<float>& y,
                              const ElementwiseOptions& opt) {
  Status s = check_view(op, "y", y);
  if (s != Status::kOk) return s;
  if ((s = check_elementwise_input(op, b ? "a" : "x", a, y)) != Status::kOk) return s;
  if (b && (s = check_elementwise_input(op, "b", *b, y)) != Status::kOk) return s;
  if (y.rows == 0 || y.cols == 0) return Status::kOk;
  ElementwiseJob job;
  job.op = kind;
  job.a = a.data;
  job.a_ld = a.ld;
  job.b = b ? b->data : nullptr;
  job.b_ld = b ? b->ld : 0;
  job.y = y.data;
  job.y_ld = y.ld;
  job.n = y.cols;
  job.value = value;
  const Isa isa = cpu::active_isa();  // once per call: every chunk runs the same path
  // Memory-bound but for softcap (Tanh: ~20 vector operations per lane).
  const double flops = kind == ElementwiseOp::kSoftcap ? 24.0 : 1.0;
  const Work per_row{flops * static_cast<double>(y.cols),
                     static_cast<double>(y.cols * sizeof(float) * (b ? 3 : 2))};
  run_chunks(opt.executor, y.rows, per_row, [&job, isa](size_t begin, size_t end) {
    TILEKIT_DISPATCH_ON(isa, ElementwiseRows)(job, begin, end);
  });
  return Status::kOk;
}

}  // namespace detail

TILEKIT_API Status add(MatrixView<const float> a, MatrixView<const float> b, MatrixView<float> y,
                       const ElementwiseOptions& options) {
  return detail::run_elementwise("add", detail::ElementwiseOp::kAdd, a, &b, 0.f, y, options);
}

TILEKIT_API Status mul(MatrixView<const float> a, MatrixView<const float> b, MatrixView<float> y,
                       const ElementwiseOptions& options) {
  return detail::run_elementwise("mul", detail::ElementwiseOp::kMul, a, &b, 0.f, y, options);
}

TILEKIT_API Status scale(MatrixView<const float> x, float s, MatrixView<float> y, const ElementwiseOptions& options) {
  if (!std::isfinite(s)) return fail(Status::kInvalidArgument, "scale: s=%g is not finite", s);
  return detail::run_elementwise("scale", detail::ElementwiseOp::kScale, x, nullptr, s, y, options);
}

TILEKIT_API Status softcap(MatrixView<const float> x, float cap, MatrixView<float> y,
                           const ElementwiseOptions& options) {
  if (!(cap > 0.f) || !std::isfinite(cap)) {
    return fail(Status::kInvalidArgument, "softcap: cap=%g must be finite and > 0", cap);
  }
  return detail::run_elementwise("softcap", detail::ElementwiseOp::kSoftcap, x, nullptr, cap, y, options);
}

}  // namespace tilekit

#endif  // TILEKIT_OPS_ELEMENTWISE_IMPL_H_

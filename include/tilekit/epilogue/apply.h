// An epilogue applied as its own pass over an fp32 matrix: C = epilogue(C),
// with C's current values in place of A·B. The same per-target ops the GEMM
// fuses into its store; for ops a graph cannot fuse, and for measuring fusion.
#ifndef TILEKIT_EPILOGUE_APPLY_H_
#define TILEKIT_EPILOGUE_APPLY_H_

#include "tilekit/base/matrix.h"
#include "tilekit/base/status.h"
#include "tilekit/cpu/dispatch.h"
#include "tilekit/detail/kernels.h"
#include "tilekit/epilogue/epilogue.h"

namespace tilekit {

inline Status apply_epilogue(MatrixView<float> c, const Epilogue& ep) {
  const char* name = "apply_epilogue";
  if (!c.data && c.rows && c.cols) return fail(Status::kNullPointer, "%s: C is null", name);
  if (c.ld < c.cols) return fail(Status::kBadLeadingDim, "%s: C has ld=%zu < cols=%zu", name, c.ld, c.cols);
  size_t c_bytes = 0;
  if (!detail::span_bytes(c, &c_bytes)) return fail(Status::kOverflow, "%s: C's size overflows", name);
  if (ep.beta != 0.f) return fail(Status::kInvalidArgument, "%s: beta needs a product to add C to", name);
  if (ep.activation == Activation::kSwiGlu) {
    return fail(Status::kInvalidArgument, "%s: SwiGLU needs a gate/up GEMM", name);
  }
  if (ep.bias && detail::ranges_overlap(ep.bias, c.cols * sizeof(float), c.data, c_bytes)) {
    return fail(Status::kAliasing, "%s: bias overlaps C", name);
  }
  if (ep.residual) {
    const MatrixView<const float> r{ep.residual, c.rows, c.cols, ep.ld_residual};
    size_t r_bytes = 0;
    if (r.ld < r.cols) return fail(Status::kBadLeadingDim, "%s: residual has ld=%zu < cols=%zu", name, r.ld, r.cols);
    if (!detail::span_bytes(r, &r_bytes)) return fail(Status::kOverflow, "%s: residual's size overflows", name);
    const bool in_place = ep.residual == c.data && ep.ld_residual == c.ld;
    if (!in_place && detail::ranges_overlap(ep.residual, r_bytes, c.data, c_bytes)) {
      return fail(Status::kAliasing, "%s: residual overlaps C", name);
    }
  }
  if (c.rows && c.cols) TILEKIT_DISPATCH(detail::ApplyEpilogueRows)(c.data, c.rows, c.cols, c.ld, ep);
  return Status::kOk;
}

}  // namespace tilekit

#endif  // TILEKIT_EPILOGUE_APPLY_H_

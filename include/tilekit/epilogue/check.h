// Validation of an epilogue's operands against the output it writes, shared by
// every place an epilogue runs (the GEMM's store, apply_epilogue's pass).
#ifndef TILEKIT_EPILOGUE_CHECK_H_
#define TILEKIT_EPILOGUE_CHECK_H_

#include "tilekit/base/matrix.h"
#include "tilekit/base/status.h"
#include "tilekit/epilogue/epilogue.h"

namespace tilekit {
namespace detail {

// bias ([c.cols]) and residual ([c.rows][ld_residual]) must be valid views that
// do not overlap C. c must already have passed check_view (c_bytes is its span).
template <typename TC>
Status check_epilogue_operands(const char* op, const MatrixView<TC>& c, size_t c_bytes, const Epilogue& ep) {
  if (ep.bias && ranges_overlap(ep.bias, c.cols * sizeof(float), c.data, c_bytes)) {
    return fail(Status::kAliasing, "%s: bias overlaps C", op);
  }
  if (ep.residual) {
    const MatrixView<const float> r{ep.residual, c.rows, c.cols, ep.ld_residual};
    const Status s = check_view(op, "residual", r);
    if (s != Status::kOk) return s;
    size_t r_bytes = 0;
    span_bytes(r, &r_bytes);
    // Reading the residual from C itself (same element, same ld) is safe: each
    // element is read before it is written. Any other overlap is not.
    const bool in_place = static_cast<const void*>(ep.residual) == static_cast<const void*>(c.data) &&
                          ep.ld_residual == c.ld && !kIsBf16<TC>;
    if (!in_place && ranges_overlap(ep.residual, r_bytes, c.data, c_bytes)) {
      return fail(Status::kAliasing, "%s: residual overlaps C", op);
    }
  }
  return Status::kOk;
}

}  // namespace detail
}  // namespace tilekit

#endif  // TILEKIT_EPILOGUE_CHECK_H_

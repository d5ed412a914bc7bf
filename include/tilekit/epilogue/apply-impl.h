// Definition of epilogue/apply.h (compiled once per program, by its module's implementation.h).
#ifndef TILEKIT_EPILOGUE_APPLY_IMPL_H_
#define TILEKIT_EPILOGUE_APPLY_IMPL_H_

#include "tilekit/cpu/dispatch.h"
#include "tilekit/epilogue/exports.h"
#include "tilekit/epilogue/apply.h"
#include "tilekit/epilogue/check.h"

namespace tilekit {

TILEKIT_API Status apply_epilogue(MatrixView<float> c, const Epilogue& ep) {
  const char* name = "apply_epilogue";
  Status s = detail::check_view(name, "C", c);
  if (s != Status::kOk) return s;
  if (ep.beta != 0.f) return fail(Status::kInvalidArgument, "%s: beta needs a product to add C to", name);
  if (is_gated(ep.activation)) {
    return fail(Status::kInvalidArgument, "%s: %s needs a gate/up GEMM", name, activation_name(ep.activation));
  }
  size_t c_bytes = 0;
  detail::span_bytes(c, &c_bytes);
  if ((s = detail::check_epilogue_operands(name, c, c_bytes, ep)) != Status::kOk) return s;
  if (c.rows && c.cols) TILEKIT_DISPATCH(detail::ApplyEpilogueRows)(c.data, c.rows, c.cols, c.ld, ep);
  return Status::kOk;
}

}  // namespace tilekit

#endif  // TILEKIT_EPILOGUE_APPLY_IMPL_H_

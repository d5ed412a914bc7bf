// Definitions of convert/convert.h (compiled once per program, by its module's implementation.h).
#ifndef TILEKIT_CONVERT_CONVERT_IMPL_H_
#define TILEKIT_CONVERT_CONVERT_IMPL_H_

#include <cstddef>
#include <cstdint>

#include "tilekit/base/matrix.h"
#include "tilekit/convert/convert.h"
#include "tilekit/cpu/dispatch.h"
#include "tilekit/convert/exports.h"

namespace tilekit {

namespace detail {

template <typename In, typename Out>
Status check_convert(const char* name, const In* in, const Out* out, size_t n) {
  if (n == 0) return Status::kOk;
  if (!in || !out) return fail(Status::kNullPointer, "%s: %s is null", name, in ? "out" : "in");
  if (n > SIZE_MAX / sizeof(float)) return fail(Status::kOverflow, "%s: n=%zu overflows", name, n);
  if (ranges_overlap(in, n * sizeof(In), out, n * sizeof(Out))) {
    return fail(Status::kAliasing, "%s: in and out overlap", name);
  }
  return Status::kOk;
}
}  // namespace detail

TILEKIT_API Status convert_f32_to_bf16(const float* in, bf16* out, size_t n) {
  const Status s = detail::check_convert("convert_f32_to_bf16", in, out, n);
  if (s != Status::kOk || n == 0) return s;
  const Isa isa = cpu::active_isa();
  TILEKIT_DISPATCH_ON(isa, detail::ConvertF32ToBf16)(in, reinterpret_cast<uint16_t*>(out), n,
                                                     cpu::isa_converts_bf16(isa));
  return Status::kOk;
}

TILEKIT_API Status convert_bf16_to_f32(const bf16* in, float* out, size_t n) {
  const Status s = detail::check_convert("convert_bf16_to_f32", in, out, n);
  if (s != Status::kOk || n == 0) return s;
  TILEKIT_DISPATCH(detail::ConvertBf16ToF32)(reinterpret_cast<const uint16_t*>(in), out, n);
  return Status::kOk;
}

}  // namespace tilekit

#endif  // TILEKIT_CONVERT_CONVERT_IMPL_H_

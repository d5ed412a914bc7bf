// bfloat16 storage type and its scalar conversions. The vector conversions live
// in convert/; these are the reference the vector code is tested against and
// the path for single values.
#ifndef TILEKIT_BASE_BF16_H_
#define TILEKIT_BASE_BF16_H_

#include <cstdint>
#include <cstring>

namespace tilekit {

// 16-bit brain float: the upper half of an IEEE binary32. A distinct struct (not
// uint16_t) so that overloads on element type cannot mistake it for an integer.
struct bf16 {
  uint16_t bits;
};
static_assert(sizeof(bf16) == 2, "bf16 must be two bytes");

// Round to nearest, ties to even. NaN stays NaN (quietened, sign kept), ±Inf
// and denormals follow from the integer rounding: a carry out of the mantissa
// correctly bumps the exponent, up to Inf for values above bf16's max.
inline bf16 f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) {
    return bf16{static_cast<uint16_t>((u >> 16) | 0x0040u)};
  }
  const uint32_t rounding = 0x7FFFu + ((u >> 16) & 1u);
  return bf16{static_cast<uint16_t>((u + rounding) >> 16)};
}

inline float bf16_to_f32(bf16 h) {
  const uint32_t u = static_cast<uint32_t>(h.bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace tilekit

#endif  // TILEKIT_BASE_BF16_H_

// IEEE binary16 (half) to fp32: the scale type of GGUF's quantized blocks
// (Q8_0, Q4_0), which pack_weights reads. Exact: every half is an fp32.
#ifndef TILEKIT_BASE_FP16_H_
#define TILEKIT_BASE_FP16_H_

#include <cstdint>
#include <cstring>

namespace tilekit {

inline float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu, mant = h & 0x3FFu;
  uint32_t bits;
  if (exp == 0x1F) {  // Inf, NaN (payload kept)
    bits = sign | 0x7F800000u | (mant << 13);
  } else if (exp != 0) {  // normal: rebias 15 -> 127
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  } else if (mant == 0) {  // ±0
    bits = sign;
  } else {  // subnormal: mant · 2^-24, normal in fp32
    int shift = 0;
    uint32_t m = mant;
    while (!(m & 0x400u)) {
      m <<= 1;
      ++shift;
    }
    bits = sign | ((113 - shift) << 23) | ((m & 0x3FFu) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

}  // namespace tilekit

#endif  // TILEKIT_BASE_FP16_H_

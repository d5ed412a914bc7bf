// The BFMMLA micro-kernel on NEON (path neon_bf16): one 128-bit segment per
// vector, so a k-block of a panel is 4 column pairs, nr = 8.
#ifndef TILEKIT_ARCH_ARM_BFMMLA_NEON_H_
#define TILEKIT_ARCH_ARM_BFMMLA_NEON_H_

#include "tilekit/cpu/features.h"

#if TILEKIT_ARCH_ARM64
#include <arm_neon.h>

#include <cstddef>
#include <cstdint>

#include "tilekit/arch/arm_bfmmla_tile.h"

#pragma GCC push_options
#pragma GCC target("arch=armv8.6-a+bf16")
namespace tilekit {
namespace arch {
namespace neon_bf16 {

using VF = float32x4_t;
using VB = bfloat16x8_t;

inline VF Zero() { return vdupq_n_f32(0.f); }
// Loaded as u16, the type they were stored as (no aliasing through __bf16).
inline VB LoadA(const uint16_t* p) { return vreinterpretq_bf16_u16(vld1q_u16(p)); }
inline VB LoadB(const uint16_t* p) { return vreinterpretq_bf16_u16(vld1q_u16(p)); }
inline VF Mmla(VF c, VB a, VB b) { return vbfmmlaq_f32(c, a, b); }
constexpr size_t PanelColumns() { return 8; }

// An accumulator holds a 2 × 2 tile [r0c0 r0c1 r1c0 r1c1]: seen as two f64
// lanes, row 0 of two tiles side by side is their even lanes, row 1 the odd.
inline void StoreRows(VF c0, VF c1, float* row0, float* row1) {
  const float64x2_t x0 = vreinterpretq_f64_f32(c0), x1 = vreinterpretq_f64_f32(c1);
  vst1q_f32(row0, vreinterpretq_f32_f64(vuzp1q_f64(x0, x1)));
  if (row1) vst1q_f32(row1, vreinterpretq_f32_f64(vuzp2q_f64(x0, x1)));
}
inline void LoadRows(const float* row0, const float* row1, VF& c0, VF& c1) {
  const float64x2_t r0 = vreinterpretq_f64_f32(vld1q_f32(row0));
  const float64x2_t r1 = row1 ? vreinterpretq_f64_f32(vld1q_f32(row1)) : vdupq_n_f64(0.0);
  c0 = vreinterpretq_f32_f64(vzip1q_f64(r0, r1));
  c1 = vreinterpretq_f32_f64(vzip2q_f64(r0, r1));
}

#include "tilekit/arch/arm_bfmmla_tile-inl.h"

}  // namespace neon_bf16
}  // namespace arch
}  // namespace tilekit
#pragma GCC pop_options

#endif  // TILEKIT_ARCH_ARM64
#endif  // TILEKIT_ARCH_ARM_BFMMLA_NEON_H_

// The SDOT micro-kernel on NEON (paths neon and neon_bf16 of CPUs with
// FEAT_DotProd): one 128-bit segment per vector, so nr = 8 and a step of 4 K
// of a panel is 2 vectors.
#ifndef TILEKIT_ARCH_ARM_SDOT_NEON_H_
#define TILEKIT_ARCH_ARM_SDOT_NEON_H_

#include "tilekit/cpu/features.h"

#if TILEKIT_ARCH_ARM64
#include <arm_neon.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "tilekit/arch/arm_sdot_tile.h"

#pragma GCC push_options
#pragma GCC target("arch=armv8.2-a+dotprod")
namespace tilekit {
namespace arch {
namespace neon_sdot {

using VI = int32x4_t;
using VF = float32x4_t;
using VS = int8x16_t;
using VU = uint8x16_t;

constexpr size_t Lanes() { return 4; }
inline VI ZeroI() { return vdupq_n_s32(0); }
inline VF ZeroF() { return vdupq_n_f32(0.f); }
inline VS LoadS8(const int8_t* p) { return vld1q_s8(p); }
inline VS LoadA(const int8_t* p) { return vld1q_s8(p); }
template <int L>
inline VI Dot(VI acc, VS b, VS a) { return vdotq_laneq_s32(acc, b, a, L); }
inline VF LoadF(const float* p) { return vld1q_f32(p); }
inline void StoreF(float* p, VF v) { vst1q_f32(p, v); }
inline VF LoadQuadF(const float* p) { return vld1q_f32(p); }
inline VF ToFloat(VI v) { return vcvtq_f32_s32(v); }
inline VF Mul(VF x, VF y) { return vmulq_f32(x, y); }
template <int L>
inline VF MulAddLane(VF c, VF x, VF s) { return vfmaq_laneq_f32(c, x, s, L); }
inline VU LoadU8(const uint8_t* p) { return vld1q_u8(p); }
inline void StoreU8(int8_t* p, VU v) { vst1q_s8(p, vreinterpretq_s8_u8(v)); }
inline VU Zip1(VU x, VU y) { return vzip1q_u8(x, y); }
inline VU Zip2(VU x, VU y) { return vzip2q_u8(x, y); }
inline VU Signed8(VU u) { return veorq_u8(u, vdupq_n_u8(0x80)); }
inline void Signed4(VU u, VU& lo, VU& hi) {
  lo = vsubq_u8(vandq_u8(u, vdupq_n_u8(0x0F)), vdupq_n_u8(8));
  hi = vsubq_u8(vshrq_n_u8(u, 4), vdupq_n_u8(8));
}
// Bytes i·4 + c to 4c + i: a 4 × 4 transpose.
inline VU Transpose4(VU v) {
  static constexpr uint8_t kOrder[16] = {0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15};
  return vqtbl1q_u8(v, vld1q_u8(kOrder));
}

#include "tilekit/arch/arm_sdot_tile-inl.h"

}  // namespace neon_sdot
}  // namespace arch
}  // namespace tilekit
#pragma GCC pop_options

#endif  // TILEKIT_ARCH_ARM64
#endif  // TILEKIT_ARCH_ARM_SDOT_NEON_H_

// The SDOT micro-kernel on SVE (paths sve and sve_bf16), vector-length
// agnostic: a vector holds VL/128 segments, the indexed SDOT and FMLA work
// segment by segment, and A steps and row scales are loaded into every
// segment (LD1RQ), so nr = VL/16 columns (8 at 128 bits, 128 at 2048) with the
// same code. SVE's SDOT is base SVE: no FEAT_DotProd needed (A64FX has SVE
// without it).
#ifndef TILEKIT_ARCH_ARM_SDOT_SVE_H_
#define TILEKIT_ARCH_ARM_SDOT_SVE_H_

#include "tilekit/cpu/features.h"

#if TILEKIT_ARCH_ARM64
#include <arm_sve.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "tilekit/arch/arm_sdot_tile.h"

#pragma GCC push_options
#pragma GCC target("arch=armv8.2-a+sve")
namespace tilekit {
namespace arch {
namespace sve_sdot {

using VI = svint32_t;
using VF = svfloat32_t;
using VS = svint8_t;
using VU = svuint8_t;

inline size_t Lanes() { return svcntw(); }
inline VI ZeroI() { return svdup_n_s32(0); }
inline VF ZeroF() { return svdup_n_f32(0.f); }
inline VS LoadS8(const int8_t* p) { return svld1_s8(svptrue_b8(), p); }
inline VS LoadA(const int8_t* p) { return svld1rq_s8(svptrue_b8(), p); }
template <int L>
inline VI Dot(VI acc, VS b, VS a) { return svdot_lane_s32(acc, b, a, L); }
inline VF LoadF(const float* p) { return svld1_f32(svptrue_b32(), p); }
inline void StoreF(float* p, VF v) { svst1_f32(svptrue_b32(), p, v); }
inline VF LoadQuadF(const float* p) { return svld1rq_f32(svptrue_b32(), p); }
inline VF ToFloat(VI v) { return svcvt_f32_s32_x(svptrue_b32(), v); }
inline VF Mul(VF x, VF y) { return svmul_f32_x(svptrue_b32(), x, y); }
template <int L>
inline VF MulAddLane(VF c, VF x, VF s) { return svmla_lane_f32(c, x, s, L); }
inline VU LoadU8(const uint8_t* p) { return svld1_u8(svptrue_b8(), p); }
inline void StoreU8(int8_t* p, VU v) { svst1_s8(svptrue_b8(), p, svreinterpret_s8_u8(v)); }
inline VU Zip1(VU x, VU y) { return svzip1_u8(x, y); }
inline VU Zip2(VU x, VU y) { return svzip2_u8(x, y); }
inline VU Signed8(VU u) { return sveor_n_u8_x(svptrue_b8(), u, 0x80); }
inline void Signed4(VU u, VU& lo, VU& hi) {
  const svbool_t all = svptrue_b8();
  lo = svsub_n_u8_x(all, svand_n_u8_x(all, u, 0x0F), 8);
  hi = svsub_n_u8_x(all, svlsr_n_u8_x(all, u, 4), 8);
}
// Bytes i·h + c to 4c + i (h = VL/32 bytes; at most 3 · 64 + 63 = 255).
inline VU Transpose4(VU v) {
  const svbool_t all = svptrue_b8();
  const svuint8_t j = svindex_u8(0, 1);
  const svuint8_t from = svmla_n_u8_x(all, svlsr_n_u8_x(all, j, 2), svand_n_u8_x(all, j, 3),
                                      static_cast<uint8_t>(svcntb() / 4));
  return svtbl_u8(v, from);
}

#include "tilekit/arch/arm_sdot_tile-inl.h"

}  // namespace sve_sdot
}  // namespace arch
}  // namespace tilekit
#pragma GCC pop_options

#endif  // TILEKIT_ARCH_ARM64
#endif  // TILEKIT_ARCH_ARM_SDOT_SVE_H_

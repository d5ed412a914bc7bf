// The BFMMLA micro-kernel on SVE (path sve_bf16), vector-length agnostic: a
// vector holds VL/128 segments, each a column pair of B (so nr = VL/16, 8 at
// 128 bits, 128 at 2048) or a copy of the same A row pair (LD1RQH), and
// BFMMLA works segment by segment.
#ifndef TILEKIT_ARCH_ARM_BFMMLA_SVE_H_
#define TILEKIT_ARCH_ARM_BFMMLA_SVE_H_

#include "tilekit/cpu/features.h"

#if TILEKIT_ARCH_ARM64
#include <arm_sve.h>

#include <cstddef>
#include <cstdint>

#include "tilekit/arch/arm_bfmmla_tile.h"

#pragma GCC push_options
#pragma GCC target("arch=armv8.6-a+sve+bf16")
namespace tilekit {
namespace arch {
namespace sve_bf16 {

using VF = svfloat32_t;
using VB = svbfloat16_t;

inline VF Zero() { return svdup_n_f32(0.f); }
// Loaded as u16, the type they were stored as (no aliasing through __bf16).
inline VB LoadA(const uint16_t* p) { return svreinterpret_bf16_u16(svld1rq_u16(svptrue_b16(), p)); }
inline VB LoadB(const uint16_t* p) { return svreinterpret_bf16_u16(svld1_u16(svptrue_b16(), p)); }
inline VF Mmla(VF c, VB a, VB b) { return svbfmmla_f32(c, a, b); }
inline size_t PanelColumns() { return 2 * svcntw(); }

// Each segment of an accumulator holds a 2 × 2 tile [r0c0 r0c1 r1c0 r1c1]:
// seen as f64 lanes, row 0 of all segments of two accumulators is their even
// lanes in order (UZP1), row 1 the odd ones.
inline void StoreRows(VF c0, VF c1, float* row0, float* row1) {
  const svfloat64_t x0 = svreinterpret_f64_f32(c0), x1 = svreinterpret_f64_f32(c1);
  svst1_f32(svptrue_b32(), row0, svreinterpret_f32_f64(svuzp1_f64(x0, x1)));
  if (row1) svst1_f32(svptrue_b32(), row1, svreinterpret_f32_f64(svuzp2_f64(x0, x1)));
}
inline void LoadRows(const float* row0, const float* row1, VF& c0, VF& c1) {
  const svfloat64_t r0 = svreinterpret_f64_f32(svld1_f32(svptrue_b32(), row0));
  const svfloat64_t r1 = row1 ? svreinterpret_f64_f32(svld1_f32(svptrue_b32(), row1)) : svdup_n_f64(0.0);
  c0 = svreinterpret_f32_f64(svzip1_f64(r0, r1));
  c1 = svreinterpret_f32_f64(svzip2_f64(r0, r1));
}

#include "tilekit/arch/arm_bfmmla_tile-inl.h"

}  // namespace sve_bf16
}  // namespace arch
}  // namespace tilekit
#pragma GCC pop_options

#endif  // TILEKIT_ARCH_ARM64
#endif  // TILEKIT_ARCH_ARM_BFMMLA_SVE_H_

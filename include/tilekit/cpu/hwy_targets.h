// Which Highway target carries each path's portable code, and which targets a
// path may use. Implementation side: it includes Highway's <hwy/targets.h>, so
// the API headers (tilekit.h) do not include it. Tests and benchmarks that
// compare targets may.
#ifndef TILEKIT_CPU_HWY_TARGETS_H_
#define TILEKIT_CPU_HWY_TARGETS_H_

#include <hwy/targets.h>

#include <cstdint>

#include "tilekit/cpu/isa.h"

namespace tilekit {
namespace cpu {

// The Highway target that carries a path's portable code. Matrix-instruction
// paths (avx512_bf16, amx, neon_bf16, sve_bf16) run their portable parts on the
// vector target below them.
inline int64_t hwy_target_of(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return HWY_EMU128;  // EMU128 and SCALAR: bits 61, 62
#if HWY_ARCH_X86
    case Isa::kAvx2: return HWY_AVX2;
    case Isa::kAvx512:
    case Isa::kAvx512Bf16:
    case Isa::kAmx: return HWY_AVX3;
#endif
#if HWY_ARCH_ARM_A64
    case Isa::kNeon:
    case Isa::kNeonBf16: return HWY_NEON;
    case Isa::kSve:
    case Isa::kSveBf16: return HWY_SVE;
#endif
    default: return HWY_EMU128;
  }
}

// Highway's supported targets, read once: hwy::SupportedTargets() runs CPUID
// on every call in Highway 1.0.3 (measured 8.6 µs in this VM), which every
// dispatch would otherwise pay.
inline int64_t hwy_supported_targets() {
  static const int64_t supported = hwy::SupportedTargets();
  return supported;
}

// Highway targets a path may use: its own and every weaker one (Highway's bits
// grow as targets get weaker; EMU128 and SCALAR are the fallbacks).
inline int64_t hwy_targets_allowed(Isa isa) {
  const int64_t own = hwy_target_of(isa);
  const int64_t weaker_or_equal = ~(own - 1);
  return weaker_or_equal & hwy_supported_targets();
}

inline int64_t active_hwy_targets() { return hwy_targets_allowed(active_isa()); }

}  // namespace cpu
}  // namespace tilekit

#endif  // TILEKIT_CPU_HWY_TARGETS_H_

// Checks of bf16 stores against the reference rounding (f32_to_bf16), shared by
// the tests of every kernel that stores bf16: the modes under which a
// conversion instruction could differ from it, and which of the rounding's
// edge cases a test's outputs reached.
#ifndef TILEKIT_TESTS_BF16_STORE_CHECKS_H_
#define TILEKIT_TESTS_BF16_STORE_CHECKS_H_

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "tilekit/cpu/features.h"  // TILEKIT_ARCH_*
#if TILEKIT_ARCH_X86
#include <xmmintrin.h>
#endif

#include "tilekit/tilekit.h"

namespace tilekit {
namespace testing {

// Sets the modes under which an fp32 -> bf16 instruction could flush denormals
// or drop NaN payloads, for the object's lifetime: MXCSR DAZ and FTZ on x86
// (vcvtneps2bf16 ignores MXCSR), FPCR FZ and DN on Arm (BFCVT honours them; a
// host engine may set FZ for its own code).
class ScopedFlushModes {
 public:
#if TILEKIT_ARCH_X86
  ScopedFlushModes() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | 0x8040u); }
  ~ScopedFlushModes() { _mm_setcsr(saved_); }

 private:
  unsigned saved_;
#elif TILEKIT_ARCH_ARM64
  ScopedFlushModes() {
    asm volatile("mrs %0, fpcr" : "=r"(saved_));
    const uint64_t fz_dn = (uint64_t{1} << 24) | (uint64_t{1} << 25);
    asm volatile("msr fpcr, %0" : : "r"(saved_ | fz_dn));
  }
  ~ScopedFlushModes() { asm volatile("msr fpcr, %0" : : "r"(saved_)); }

 private:
  uint64_t saved_;
#endif
};

// Which edges of the rounding a set of fp32 values (about to be stored as
// bf16) reached: ties (the dropped half exactly 0x8000), fp32 subnormals,
// finite values that round to Inf, NaNs.
struct Bf16Edges {
  size_t ties = 0, subnormals = 0, to_inf = 0, nans = 0;
  void add(float v) {
    uint32_t u;
    std::memcpy(&u, &v, 4);
    const uint32_t mag = u & 0x7FFFFFFFu;
    if (mag > 0x7F800000u) {
      ++nans;
      return;
    }
    ties += mag < 0x7F800000u && (u & 0xFFFFu) == 0x8000u;
    subnormals += mag != 0 && mag < 0x00800000u;
    to_inf += mag < 0x7F800000u && (f32_to_bf16(v).bits & 0x7FFFu) == 0x7F80u;
  }
  std::string describe() const {
    return std::to_string(ties) + " ties, " + std::to_string(subnormals) + " subnormals, " + std::to_string(to_inf) +
           " finite to Inf, " + std::to_string(nans) + " NaNs";
  }
};

}  // namespace testing
}  // namespace tilekit

#endif  // TILEKIT_TESTS_BF16_STORE_CHECKS_H_

// Arm BFMMLA kernels, the parts the GEMM driver and the batch-reduce GEMM
// share: the micro-kernel build for the active path and the packing of A into
// its operand layout (contract: arm_bfmmla_tile.h). aarch64 only.
#ifndef TILEKIT_ARCH_ARM_BFMMLA_H_
#define TILEKIT_ARCH_ARM_BFMMLA_H_

#include "tilekit/cpu/features.h"

#if TILEKIT_ARCH_ARM64
#include <arm_neon.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "tilekit/arch/arm_bfmmla_neon.h"
#include "tilekit/arch/arm_bfmmla_sve.h"
#include "tilekit/arch/arm_bfmmla_tile.h"
#include "tilekit/base/bf16.h"
#include "tilekit/cpu/isa.h"

namespace tilekit {
namespace arch {

// The micro-kernel build for path `isa`: SVE on sve_bf16, NEON on neon_bf16.
// Only those paths pack kArmBfmmla panels (active_panel_layout) and only they
// run the batch-reduce GEMM, so a CPU without BF16 never gets here. Not
// cached: the SVE build's nr reads the vector length.
inline BfmmlaKernel BfmmlaKernelOn(Isa isa) {
  return isa == Isa::kSveBf16 ? sve_bf16::Kernel() : neon_bf16::Kernel();
}

// BFCVTN, the fp32 -> bf16 conversion of A packing, is itself a BF16
// instruction; the target of the NEON micro-kernel.
#define TILEKIT_ARM_BF16_TARGET __attribute__((target("arch=armv8.6-a+bf16")))

// One A row pair of a k-block as the quadword BFMMLA reads: row 0's 4 k, then
// row 1's. fp32 rounds to nearest even (BFCVTN; NaN stays NaN), bf16 is copied.
TILEKIT_ARM_BF16_TARGET inline void PackRowPair(const float* r0, const float* r1, uint16_t* out) {
  const bfloat16x8_t v = vcvtq_high_bf16_f32(vcvtq_low_bf16_f32(vld1q_f32(r0)), vld1q_f32(r1));
  vst1q_u16(out, vreinterpretq_u16_bf16(v));
}
inline void PackRowPair(const bf16* r0, const bf16* r1, uint16_t* out) {
  std::memcpy(out, r0, kBfmmlaKR * sizeof(bf16));
  std::memcpy(out + kBfmmlaKR, r1, kBfmmlaKR * sizeof(bf16));
}

// Packs rows [0, rows) × k [0, kc) of A (row-major, stride lda) as the
// micro-kernel's A operand, converting fp32 to bf16 once per element here
// rather than once per use. Tile t (rows [t·mr, t·mr + mr)) starts at
// dst + t·mr·kc_padded; within it, k-block by k-block, its ceil(rows / 2) row
// pairs. The row past an odd row count and the k past kc are zeros: they add
// nothing to C. Never reads A outside those rows and columns.
template <typename TA>
TILEKIT_ARM_BF16_TARGET void PackA(const TA* a, size_t lda, size_t rows, size_t kc, uint16_t* dst) {
  static_assert(std::is_same<TA, float>::value || std::is_same<TA, bf16>::value, "A is fp32 or bf16");
  const size_t kblocks = (kc + kBfmmlaKR - 1) / kBfmmlaKR;
  for (size_t i0 = 0; i0 < rows; i0 += kBfmmlaMR) {
    const size_t tile_rows = std::min(kBfmmlaMR, rows - i0), pairs = (tile_rows + 1) / 2;
    uint16_t* tile = dst + i0 * kblocks * kBfmmlaKR;
    for (size_t kb = 0; kb < kblocks; ++kb) {
      const size_t k0 = kb * kBfmmlaKR, n = std::min(kBfmmlaKR, kc - k0);
      for (size_t p = 0; p < pairs; ++p) {
        const TA* r0 = a + (i0 + 2 * p) * lda + k0;
        const TA* r1 = 2 * p + 1 < tile_rows ? r0 + lda : nullptr;
        uint16_t* out = tile + (kb * pairs + p) * kBfmmlaPairElems;
        if (n == kBfmmlaKR && r1) {
          PackRowPair(r0, r1, out);
          continue;
        }
        // An edge: through zeros on the stack, converted the same way.
        TA edge[kBfmmlaPairElems] = {};
        std::memcpy(edge, r0, n * sizeof(TA));
        if (r1) std::memcpy(edge + kBfmmlaKR, r1, n * sizeof(TA));
        PackRowPair(edge, edge + kBfmmlaKR, out);
      }
    }
  }
}

}  // namespace arch
}  // namespace tilekit

#endif  // TILEKIT_ARCH_ARM64
#endif  // TILEKIT_ARCH_ARM_BFMMLA_H_

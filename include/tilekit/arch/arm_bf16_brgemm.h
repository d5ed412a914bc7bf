// Batch-reduce GEMM on the Arm BFMMLA micro-kernel: the building block GEMM
// and flash attention share (oneDNN's brgemm contract).
//
//   C[rows][nr] += Σ_{i < count} A_i[rows][k] · B_i[k][nr]
//
//   A_i  bf16, row-major, row stride lda_i >= k. Read only inside rows × k.
//   B_i  k rows of one kArmBfmmla panel (gemm/packed_weights.h) of the active
//        path, nr = active_panel_layout(WeightType::kBf16).nr columns: e.g.
//        PackedWeights::panel(p), or packed_offset(layout, k0, 0) elements
//        into it to start at row k0, a multiple of 4. Rows past k up to the
//        next multiple of 4 must be zero (pack_weights pads them so).
//   C    fp32, rows × nr, row stride ldc >= nr. Accumulated in fp32, term by
//        term in order, each term's k in order: the result does not depend on
//        how a caller splits rows into calls.
//
// For attention: S = Q·Kᵀ takes one term per key block (A = a block of query
// rows, B = the block's keys packed as panel columns), O += P·V one term per
// value block (A = the probabilities in bf16). Paths neon_bf16 and sve_bf16
// only (Status::kUnsupported elsewhere). No allocation: A is packed to the
// micro-kernel's row pairs kBrgemmKChunk k at a time on the stack.
#ifndef TILEKIT_ARCH_ARM_BF16_BRGEMM_H_
#define TILEKIT_ARCH_ARM_BF16_BRGEMM_H_

#include "tilekit/cpu/features.h"

#if TILEKIT_ARCH_ARM64
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "tilekit/arch/arm_bfmmla.h"
#include "tilekit/base/bf16.h"
#include "tilekit/base/matrix.h"
#include "tilekit/base/status.h"
#include "tilekit/cpu/isa.h"

namespace tilekit {

struct Bf16BrgemmTerm {
  const bf16* a = nullptr;
  size_t lda = 0;
  const bf16* b = nullptr;  // kArmBfmmla panel rows
};

namespace arch {
// k per packed A chunk: mr × 256 bf16 = 4 KiB of stack, and a chunk's slice
// of B (256 × nr bf16) stays in L1 up to nr = 32 (SVE 512-bit).
constexpr size_t kBrgemmKChunk = 256;
}  // namespace arch

inline Status arm_bf16_brgemm(const Bf16BrgemmTerm* terms, size_t count, size_t rows, size_t k, float* c,
                              size_t ldc) {
  const Isa isa = cpu::active_isa();
  if (isa != Isa::kNeonBf16 && isa != Isa::kSveBf16) {
    return fail(Status::kUnsupported, "arm_bf16_brgemm: path %s has no BF16 matrix instructions (needs neon_bf16 or sve_bf16)",
                isa_name(isa));
  }
  if (!terms && count) return fail(Status::kNullPointer, "arm_bf16_brgemm: terms is null");
  if (!c && rows) return fail(Status::kNullPointer, "arm_bf16_brgemm: C is null");
  const arch::BfmmlaKernel kern = arch::BfmmlaKernelOn(isa);
  const size_t nr = kern.nr;
  if (ldc < nr) return fail(Status::kBadLeadingDim, "arm_bf16_brgemm: C has ldc=%zu < nr=%zu", ldc, nr);
  size_t c_bytes;
  if (!detail::span_bytes(MatrixView<const float>{c, rows, nr, ldc}, &c_bytes)) {
    return fail(Status::kOverflow, "arm_bf16_brgemm: C of %zu x %zu (ldc %zu) overflows size_t", rows, nr, ldc);
  }
  if (!rows || !k) return Status::kOk;
  for (size_t i = 0; i < count; ++i) {
    const Bf16BrgemmTerm& t = terms[i];
    if (!t.a) return fail(Status::kNullPointer, "arm_bf16_brgemm: term %zu: A is null", i);
    if (!t.b) return fail(Status::kNullPointer, "arm_bf16_brgemm: term %zu: B is null", i);
    if (t.lda < k) return fail(Status::kBadLeadingDim, "arm_bf16_brgemm: term %zu: A has lda=%zu < k=%zu", i, t.lda, k);
    size_t a_bytes;
    if (!detail::span_bytes(MatrixView<const bf16>{t.a, rows, k, t.lda}, &a_bytes)) {
      return fail(Status::kOverflow, "arm_bf16_brgemm: term %zu: A of %zu x %zu (lda %zu) overflows size_t", i, rows,
                  k, t.lda);
    }
    if (detail::ranges_overlap(t.a, a_bytes, c, c_bytes)) {
      return fail(Status::kAliasing, "arm_bf16_brgemm: term %zu: A overlaps C", i);
    }
    const size_t b_bytes = (k + arch::kBfmmlaKR - 1) / arch::kBfmmlaKR * arch::kBfmmlaKR * nr * sizeof(bf16);
    if (detail::ranges_overlap(t.b, b_bytes, c, c_bytes)) {
      return fail(Status::kAliasing, "arm_bf16_brgemm: term %zu: B overlaps C", i);
    }
  }
  alignas(16) uint16_t a_pack[arch::kBfmmlaMR * arch::kBrgemmKChunk];
  for (size_t i0 = 0; i0 < rows; i0 += arch::kBfmmlaMR) {
    const size_t tile_rows = std::min(arch::kBfmmlaMR, rows - i0);
    const arch::BfmmlaTileFn tile = kern.tile[(tile_rows + 1) / 2 - 1];
    for (size_t i = 0; i < count; ++i) {
      const Bf16BrgemmTerm& t = terms[i];
      for (size_t k0 = 0; k0 < k; k0 += arch::kBrgemmKChunk) {
        const size_t kc = std::min(arch::kBrgemmKChunk, k - k0);
        arch::PackA(t.a + i0 * t.lda + k0, t.lda, tile_rows, kc, a_pack);
        tile((kc + arch::kBfmmlaKR - 1) / arch::kBfmmlaKR, a_pack, reinterpret_cast<const uint16_t*>(t.b) + k0 * nr,
             c + i0 * ldc, ldc, tile_rows, /*accumulate=*/true);
      }
    }
  }
  return Status::kOk;
}

}  // namespace tilekit

#endif  // TILEKIT_ARCH_ARM64
#endif  // TILEKIT_ARCH_ARM_BF16_BRGEMM_H_

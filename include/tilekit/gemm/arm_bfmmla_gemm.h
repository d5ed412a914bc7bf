// The Arm BFMMLA GEMM kernel and its record: bf16 weights on the neon_bf16 and
// sve_bf16 paths. The loops around the micro-kernel of arch/arm_bfmmla.h for
// one thread's share: rows [r0, r1) × panels [p0, p1) with the plan's blocking,
// and results that do not depend on the share. aarch64 only.
//
// Layout (PanelKind::kArmBfmmla): BFMMLA multiplies 2 rows × 4 k of A by 4 k ×
// 2 columns of B, so a panel stores K in blocks of kr = 4 (zero-padded), and
// within a block column pairs, each pair as column 2j's 4 k then column
// 2j+1's 4 k: one 128-bit quadword per pair. Panels keep nr = 2·lanes, the
// width GemmEpilogueTile stores, so lanes records the SVE vector length.
#ifndef TILEKIT_GEMM_ARM_BFMMLA_GEMM_H_
#define TILEKIT_GEMM_ARM_BFMMLA_GEMM_H_

#include "tilekit/cpu/features.h"

#if TILEKIT_ARCH_ARM64
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "tilekit/arch/arm_bfmmla.h"
#include "tilekit/base/bf16.h"
#include "tilekit/base/size_math.h"
#include "tilekit/cpu/dispatch.h"
#include "tilekit/gemm/exports.h"
#include "tilekit/gemm/kernel.h"
#include "tilekit/gemm/plan.h"
#include "tilekit/gemm/vector.h"

namespace tilekit {
namespace arch {

// The vector kernel's blocking (vector_blocking sizes it for these panels:
// their nr, 2-byte B) with kc rounded up to whole k-blocks, so a K block never splits one. The A
// block is bf16 here, half the L2 share the driver planned for fp32.
struct BfmmlaBlocking {
  size_t mc, kc;
  size_t tiles;   // mr tiles of an mc block
  bool split_k;   // more than one K block: partial sums wait in the workspace
  size_t nr;

  explicit BfmmlaBlocking(const detail::GemmPlan& p, size_t panel_nr)
      : mc(p.mc),
        kc(round_up(p.kc, kBfmmlaKR)),
        tiles(div_ceil(p.mc, kBfmmlaMR)),
        split_k(kc < p.k),
        nr(panel_nr) {}
  size_t a_elems() const { return tiles * kBfmmlaMR * kc; }  // bf16, even: kc is a multiple of kr
  // One tile, or with split K the partial sums of every tile of a panel group.
  size_t c_floats(const detail::GemmPlan& p) const {
    return (split_k ? tiles * p.nc_panels : 1) * kBfmmlaMR * nr;
  }
};

inline size_t BfmmlaWorkspaceFloats(const detail::GemmPlan& p, const PanelLayout&, size_t) {
  const BfmmlaBlocking blk(p, BfmmlaKernelOn(p.isa).nr);
  return blk.a_elems() / 2 + blk.c_floats(p);
}

// BLIS's loops, as in the Highway GemmRange: a group of panels × an mc block
// of A (packed to bf16 row pairs once per K block) × K blocks of kc; each
// panel's kc slice stays in L1 while the block's tiles stream past it. Every
// tile lands in fp32 memory (the workspace), and after the last K block the
// shared epilogue (GemmEpilogueTile) stores its valid rows and columns to C.
template <typename TA>
void BfmmlaGemmRangeT(const detail::GemmPlan& p, size_t r0, size_t r1, size_t p0, size_t p1, float* ws) {
  const BfmmlaKernel kern = BfmmlaKernelOn(p.isa);
  auto* const epilogue = &TILEKIT_DISPATCH_ON(p.isa, detail::GemmEpilogueTile);
  const BfmmlaBlocking blk(p, kern.nr);
  const size_t nr = kern.nr;
  uint16_t* const a_ws = reinterpret_cast<uint16_t*>(ws);
  float* const c_ws = ws + blk.a_elems() / 2;
  const TA* const a = static_cast<const TA*>(p.a);
  for (size_t jc = p0; jc < p1; jc += p.nc_panels) {
    const size_t jc_end = std::min(p1, jc + p.nc_panels);
    for (size_t ic = r0; ic < r1; ic += blk.mc) {
      const size_t rows = std::min(blk.mc, r1 - ic);
      size_t pc = 0;
      do {  // once even for K = 0: the epilogue of a zero product
        const size_t kc = std::min(blk.kc, p.k - pc), kblocks = div_ceil(kc, kBfmmlaKR);
        const bool first = pc == 0, last = pc + kc >= p.k;
        PackA(a + ic * p.lda + pc, p.lda, rows, kc, a_ws);
        for (size_t pb = jc; pb < jc_end; ++pb) {
          const auto [seg, col, cols] = detail::panel_columns(p, pb, nr);
          // pc is a multiple of kr: its k-block starts pc · nr elements in.
          const uint16_t* panel = reinterpret_cast<const uint16_t*>(p.b + pb * p.panel_bytes) + pc * nr;
          for (size_t ir = 0; ir < rows; ir += kBfmmlaMR) {
            const size_t tile_rows = std::min(kBfmmlaMR, rows - ir);
            float* tile = blk.split_k ? c_ws + ((pb - jc) * blk.tiles + ir / kBfmmlaMR) * kBfmmlaMR * nr : c_ws;
            kern.tile[(tile_rows + 1) / 2 - 1](kblocks, a_ws + ir * kblocks * kBfmmlaKR, panel, tile, nr,
                                               tile_rows, /*accumulate=*/!first);
            if (last) epilogue(tile, nr, tile_rows, *seg, ic + ir, col, cols, p.c_bf16);
          }
        }
        pc += kc;
      } while (pc < p.k);
    }
  }
}

inline void BfmmlaGemmRange(const detail::GemmPlan& p, size_t r0, size_t r1, size_t p0, size_t p1, float* ws) {
  if (p.a_bf16) return BfmmlaGemmRangeT<bf16>(p, r0, r1, p0, p1, ws);
  BfmmlaGemmRangeT<float>(p, r0, r1, p0, p1, ws);
}

inline bool bfmmla_path(Isa isa) { return isa == Isa::kNeonBf16 || isa == Isa::kSveBf16; }

inline bool bfmmla_layout(Isa isa, WeightType type, const detail::PackShape&, PanelLayout* l) {
  if (type != WeightType::kBf16) return false;
  l->kind = PanelKind::kArmBfmmla;
  l->lanes = static_cast<uint32_t>(detail::vector_lanes(isa));
  l->nr = 2 * l->lanes;
  l->kr = kBfmmlaKR;
  l->k_align = kBfmmlaKR;
  l->type = type;
  l->a_bf16 = true;
  return true;
}

inline size_t bfmmla_offset(const PanelLayout& l, size_t k, size_t c) {
  return (k / 4) * 4 * l.nr + (c / 2) * 8 + (c % 2) * 4 + k % 4;
}
inline size_t bfmmla_mr(Isa) { return kBfmmlaMR; }
// The vector kernel's blocking; kc is rounded to kr inside (BfmmlaBlocking).
inline void bfmmla_block(detail::GemmPlan& p, const PanelLayout& l, size_t mr) { detail::vector_blocking(p, l, mr); }
inline detail::GemmRangeFn bfmmla_range(Isa, const detail::GemmPlan&) { return &BfmmlaGemmRange; }

inline constexpr detail::GemmKernel kArmBfmmlaGemm{"arm_bfmmla",     &bfmmla_path,           &bfmmla_layout,
                                                   &bfmmla_offset,   &bfmmla_mr,             &bfmmla_block,
                                                   &BfmmlaWorkspaceFloats, &bfmmla_range, /*rows_first=*/false};

}  // namespace arch
}  // namespace tilekit

#endif  // TILEKIT_ARCH_ARM64
#endif  // TILEKIT_GEMM_ARM_BFMMLA_GEMM_H_

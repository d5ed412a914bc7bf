// The quantized kernel on Arm integer dot products and its record: int8 /
// int4 weights on the NEON paths of CPUs with FEAT_DotProd (SDOT) and on every
// SVE path (SVE's SDOT, vector-length agnostic). The packed layout is the
// quantized kernel's (gemm/quant.h), panels of nr = 2·lanes; the record
// differs in what many rows run, as the x86 VNNI record (gemm/quant_vnni.h):
//   M < kInt8ActMinRows: the weight-only kernels of gemm/quant-inl.h;
//   M >= kInt8ActMinRows: A quantized to int8 per row and sub-group (the rule
//     of gemm/quant_act.h), weights made signed as they are moved to SDOT's
//     order, int8 × int8 summed exactly in int32 per sub-group, then scaled by
//     the weight's and the row's scales and summed in fp32.
// Signed weights rather than USDOT (u8 × s8, I8MM) on the stored bytes: the
// move costs one XOR (int8) or subtraction (int4) per 16 bytes once per row
// block, where USDOT would subtract z · Σq_a from every row's sums at every
// sub-group; and one code path runs on every CPU with SDOT (every emulated
// CPU with SDOT also has I8MM, so an SDOT-only fallback would go untested).
//
// Loops, for one share (rows [r0, r1) × panels [p0, p1)):
//   ic: mc rows   A quantized once, 4 rows at a time, and moved to the tile
//                 order of arch/arm_sdot_tile.h (steps of 4 rows × 4 K, row
//                 scales per sub-group);
//   panel, then K block of kc (whole sub-groups, the moved slice at most
//                 half of L1): the slice moved once per row block;
//   row tile of 4 rows × nr over the K block (arch/arm_sdot_tile-inl.h):
//                 int32 sums and fp32 results in registers, fp32 partial sums
//                 between K blocks in the workspace, exact to store and reload.
// Every output sums its sub-groups in K order whatever the blocking or thread
// count, so 1 and N threads give the same bits. aarch64 only.
#ifndef TILEKIT_GEMM_QUANT_SDOT_H_
#define TILEKIT_GEMM_QUANT_SDOT_H_

#include "tilekit/cpu/features.h"

#if TILEKIT_ARCH_ARM64
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "tilekit/arch/arm_sdot_neon.h"
#include "tilekit/arch/arm_sdot_sve.h"
#include "tilekit/arch/arm_sdot_tile.h"
#include "tilekit/base/bf16.h"
#include "tilekit/base/size_math.h"
#include "tilekit/cpu/dispatch.h"
#include "tilekit/gemm/exports.h"
#include "tilekit/gemm/kernel.h"
#include "tilekit/gemm/quant.h"
#include "tilekit/gemm/quant_act.h"

namespace tilekit {
namespace detail {

using arch::kSdotAStep;
using arch::kSdotKR;
using arch::kSdotMR;

// The micro-kernel build for path `isa`: SVE on the SVE paths, NEON on the
// others. Not cached: the SVE build's nr reads the vector length.
inline arch::SdotKernel SdotKernelOn(Isa isa) {
  return isa == Isa::kSve || isa == Isa::kSveBf16 ? arch::sve_sdot::Kernel() : arch::neon_sdot::Kernel();
}

// The workspace of the SDOT loops: the row block's A in tile order and its
// row scales, one tile of A quantized row by row (QuantizeActInt8's output),
// the partial sums of one panel, and the moved weight slice.
struct SdotWorkspace {
  size_t tiles, kp, sg, subgroups, kc, nr;
  SdotWorkspace(const GemmPlan& p, size_t panel_nr)
      : tiles(div_ceil(p.mc, kSdotMR)),
        kp(round_up(p.k, p.group)),
        sg(int8_act_subgroup(p.group)),
        subgroups(kp / sg),
        kc(p.kc),
        nr(panel_nr) {}
  size_t a_bytes() const { return round_up(tiles * kSdotMR * kp, 64); }
  size_t a_scale_bytes() const { return round_up(tiles * kSdotMR * subgroups * sizeof(float), 64); }
  size_t rows_bytes() const { return round_up(kSdotMR * (kp + subgroups * sizeof(float)), 64); }
  size_t c_bytes() const { return round_up(tiles * kSdotMR * nr * sizeof(float), 64); }
  size_t b_bytes() const { return arch::sdot_slice_bytes(kc, sg, nr); }
  size_t floats() const {
    return (a_bytes() + a_scale_bytes() + rows_bytes() + c_bytes() + b_bytes()) / sizeof(float) + 16;
  }
};

// Rows [0, rows) (rows <= 4) of the quantized rows `q` (stride kp, scales
// [row][subgroups]) moved to one tile of A: per step of 4 K, the 4 rows' 4
// values; per sub-group, the 4 rows' scales. Rows past `rows` are zeros with
// scale 0.
inline void SdotTileA(const Int8Rows& q, size_t rows, size_t kp, int8_t* a, float* a_scale) {
  for (size_t s = 0; s < kp; s += kSdotKR) {
    int8_t* step = a + s / kSdotKR * kSdotAStep;
    for (size_t r = 0; r < kSdotMR; ++r) {
      if (r < rows) {
        std::memcpy(step + r * kSdotKR, q.q + r * q.q_stride + s, kSdotKR);
      } else {
        std::memset(step + r * kSdotKR, 0, kSdotKR);
      }
    }
  }
  for (size_t j = 0; j < q.subgroups; ++j) {
    for (size_t r = 0; r < kSdotMR; ++r) a_scale[j * kSdotMR + r] = r < rows ? q.scale[r * q.meta_stride + j] : 0.f;
  }
}

inline void SdotRange(const GemmPlan& p, size_t r0, size_t r1, size_t p0, size_t p1, float* ws) {
  const arch::SdotKernel kern = SdotKernelOn(p.isa);
  const size_t nr = kern.nr;
  const SdotWorkspace w(p, nr);
  unsigned char* base = reinterpret_cast<unsigned char*>(ws);
  int8_t* a_tiles = reinterpret_cast<int8_t*>(base);
  float* a_scale = reinterpret_cast<float*>(base + w.a_bytes());
  unsigned char* rows_ws = base + w.a_bytes() + w.a_scale_bytes();
  const Int8Rows a_rows{reinterpret_cast<int8_t*>(rows_ws + kSdotMR * w.subgroups * sizeof(float)),
                        w.kp,
                        reinterpret_cast<float*>(rows_ws),
                        nullptr,
                        w.subgroups,
                        w.sg,
                        w.subgroups};
  float* c_ws = reinterpret_cast<float*>(rows_ws + w.rows_bytes());
  int8_t* slice = reinterpret_cast<int8_t*>(rows_ws + w.rows_bytes() + w.c_bytes());
  const auto quantize = TILEKIT_DISPATCH_ON(p.isa, QuantizeActInt8);
  const auto epilogue = TILEKIT_DISPATCH_ON(p.isa, GemmEpilogueTile);
  const arch::SdotMoveFn move = p.b_type == WeightType::kInt4 ? kern.move_int4 : kern.move_int8;
  const size_t a_elem = p.a_bf16 ? sizeof(bf16) : sizeof(float);
  for (size_t ic = r0; ic < r1; ic += p.mc) {
    const size_t rows = std::min(p.mc, r1 - ic), tiles = div_ceil(rows, kSdotMR);
    for (size_t t = 0; t < tiles; ++t) {
      const size_t row = ic + t * kSdotMR, tile_rows = std::min(kSdotMR, rows - t * kSdotMR);
      quantize(static_cast<const unsigned char*>(p.a) + row * p.lda * a_elem, p.a_bf16, p.lda, tile_rows, p.k,
               a_rows);
      SdotTileA(a_rows, tile_rows, w.kp, a_tiles + t * kSdotMR * w.kp, a_scale + t * kSdotMR * w.subgroups);
    }
    for (size_t pb = p0; pb < p1; ++pb) {
      const PanelColumns cols = panel_columns(p, pb, nr);
      if (w.kp == 0) {  // K = 0: the epilogue of a zero product
        std::memset(c_ws, 0, rows * nr * sizeof(float));
        epilogue(c_ws, nr, rows, *cols.seg, ic, cols.col, cols.cols, p.c_bf16);
        continue;
      }
      const uint8_t* panel = p.b + pb * p.panel_bytes;
      for (size_t pc = 0; pc < w.kp; pc += p.kc) {
        const size_t kc = std::min(p.kc, w.kp - pc);
        move(panel, p.group, w.sg, pc, pc + kc, slice);
        const bool first = pc == 0, last = pc + kc >= w.kp;
        for (size_t t = 0; t < tiles; ++t) {
          const size_t tile_rows = std::min(kSdotMR, rows - t * kSdotMR);
          float* c = c_ws + t * kSdotMR * nr;
          const arch::SdotTileArgs args{slice,
                                        a_tiles + t * kSdotMR * w.kp + pc / kSdotKR * kSdotAStep,
                                        a_scale + (t * w.subgroups + pc / w.sg) * kSdotMR,
                                        kc / w.sg,
                                        w.sg,
                                        c,
                                        first};
          kern.tile[tile_rows - 1](args);
          if (last) epilogue(c, nr, tile_rows, *cols.seg, ic + t * kSdotMR, cols.col, cols.cols, p.c_bf16);
        }
      }
    }
  }
}

// --- The record. -------------------------------------------------------------

inline bool sdot_path(Isa isa) {
  if (isa == Isa::kSve || isa == Isa::kSveBf16) return true;
  return (isa == Isa::kNeon || isa == Isa::kNeonBf16) && cpu::features().dotprod;
}

inline bool sdot_layout(Isa isa, WeightType type, const PackShape& shape, PanelLayout* l) {
  if (!quant_layout(isa, type, shape, l)) return false;
  set_int8_act(l);
  return true;
}

inline size_t sdot_mr(Isa isa) { return std::max(kSdotMR, quant_mr(isa)); }

// Few rows: the weight-only kernel's blocking. Many: int8_act_block's, K in
// blocks whose moved slice (kc × nr bytes) fills half of L1, so it stays there
// while the row block's tiles stream past it: 2048 K on NEON with 32 KiB, 512
// at 512-bit SVE.
inline void sdot_block(GemmPlan& p, const PanelLayout& l, size_t mr) {
  if (p.m < kInt8ActMinRows) return quant_block(p, l, mr);
  const size_t l1 = cpu::features().l1d ? cpu::features().l1d : (size_t{32} << 10);
  int8_act_block(p, l, kSdotMR, l1 / 2 / l.nr);
}

inline size_t sdot_workspace_floats(const GemmPlan& p, const PanelLayout& l, size_t mr) {
  if (p.m < kInt8ActMinRows) return quant_workspace_floats(p, l, mr);
  return SdotWorkspace(p, l.nr).floats();
}

inline GemmRangeFn sdot_range(Isa isa, const GemmPlan& p) {
  return p.m < kInt8ActMinRows ? quant_range(isa, p) : &SdotRange;
}

inline constexpr GemmKernel kQuantSdotGemm{"quant_sdot",      &sdot_path, &sdot_layout,
                                           &quant_offset,     &sdot_mr,   &sdot_block,
                                           &sdot_workspace_floats, &sdot_range, /*rows_first=*/false,
                                           &quant_pack};

}  // namespace detail
}  // namespace tilekit

#endif  // TILEKIT_ARCH_ARM64
#endif  // TILEKIT_GEMM_QUANT_SDOT_H_

// The AMX-BF16 GEMM kernel and its record: bf16 weights on the amx path.
// Blocking, A packing and the loop over one thread's share (rows [r0, r1) ×
// panels [p0, p1)), around the tile micro-kernel of arch/amx_brgemm.h. The
// driver (gemm/gemm-impl.h) validates, plans and threads; the epilogue is the
// per-target GemmEpilogueTile every path shares.
//
// Layout (PanelKind::kAmx): panels of nr = 32 columns in VNNI pairs, the B
// tiles of tdpbf16ps:
//   bf16: uint16[K/2][32][2]  element (k, c) at panel + (k/2)·64 + 2c + k%2
// so columns 0-15 of 16 consecutive pairs are one 16 × 64-byte tile (row
// stride 128 bytes) and columns 16-31 the next. K is zero-padded to a multiple
// of 32: a K step of the kernel always loads 16 whole pairs, so the last step
// never reads past its panel (the next panel's Inf or NaN times A's zero
// padding would be NaN; past the last panel lies the end of the buffer).
// Its epilogue runs on the AVX-512 target's 16-lane vectors (a panel = 2
// vectors): a build without that target keeps bf16 weights on the vector
// kernel.
//
// Loops (BLIS's, B already packed), for one share:
//   ic: mc rows    A block mc × K packed once as bf16 (fp32 A rounded to nearest
//                  even here: the one conversion per element).
//   jc: nc panels  the partial sums of mc × nc·32 fp32 stay in L2.
//   pc: kc of K    the kc × 32 slice of a panel (kc·64 bytes) stays in L1 while
//                  every micro-tile of the block passes over it, reading its A
//                  from L2; meanwhile the next panel's slice is prefetched
//                  into L2, so the weights stream from memory under the compute.
//   panel, then micro-tile (32 rows × one panel, 2 × 2 C tiles) over kc.
// A micro-tile's C lives in tiles across its K block; between K blocks it is
// stored to the partial sums (fp32, exact) and reloaded, so the result does not
// depend on kc, and kc depends only on the shape: every element sums the same
// products in the same order whatever the thread count.
//
// Tails. M: A rows past M are zero in the packed block and the epilogue stores
// only valid rows (for M < 16 the tiles have M rows; M = 1 runs a vdpbf16ps
// GEMV over the same panels). N: panels are zero-padded
// to 32 columns by packing; the epilogue stores only valid columns. K: weights
// are padded to a multiple of 32 (k_align), A to the same by packing with zeros.
#ifndef TILEKIT_GEMM_AMX_GEMM_H_
#define TILEKIT_GEMM_AMX_GEMM_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "tilekit/arch/amx.h"
#include "tilekit/arch/amx_brgemm.h"
#include "tilekit/base/bf16.h"
#include "tilekit/base/size_math.h"
#include "tilekit/cpu/dispatch.h"
#include "tilekit/cpu/features.h"
#include "tilekit/gemm/dot.h"
#include "tilekit/gemm/exports.h"
#include "tilekit/gemm/kernel.h"
#include "tilekit/gemm/plan.h"
#include "tilekit/gemm/vector.h"

#if TILEKIT_ARCH_X86

namespace tilekit {
namespace arch {

using ::tilekit::detail::GemmPlan;
using ::tilekit::detail::SegmentPlan;

// Rows of C per micro-tile (two row tiles): the granularity of thread shares.
constexpr size_t kAmxMR = 2 * kTileRows;
// Columns per panel: two column tiles.
constexpr size_t kAmxNR = 2 * kTileRows;

// kc for M > 32. A K block of 256 keeps the panel slice at 16 KiB, so it stays
// in L1 (48 KiB) next to the A tiles streaming through, while a micro-tile
// still does 8 K steps (32 tdpbf16ps) per store and reload of its partial sums.
// Measured on Sapphire Rapids: 256 beat 128 and 512.
constexpr size_t kAmxKc = 256;

// Streams the next panel is prefetched in when one micro-tile walks a panel
// (see L2Prefetch); a power of two.
constexpr size_t kAmxPrefetchStreams = 8;

// Rows per tile: 16, or M when the whole GEMM has fewer (2 to 15 rows do not
// multiply zeros; M = 1 does not use tiles at all, see amx_gemv_range).
inline size_t amx_tile_rows(size_t m) { return std::min(m, kTileRows); }

// Blocking for the AMX kernel, from the shape and the cache sizes only.
//   kc: M <= 32 is one micro-tile high: its C stays in tiles over all of K, and
//       B streams once with nothing to reuse; otherwise kAmxKc.
//   mc: B is read from memory once per mc rows. At ~1 TFLOP/s per core against
//       ~10 GB/s, mc >= 256 keeps the stream under the compute; larger when the
//       mc × K bf16 A block still fits in L2.
//   nc: the partial sums (mc × nc·32 fp32) fill a quarter of L2.
inline void amx_gemm_block(GemmPlan& p, const PanelLayout&, size_t) {
  const cpu::Features& f = cpu::features();
  const size_t l2 = f.l2 ? f.l2 : (size_t{2} << 20);
  const size_t k_pad = round_up(p.k, kStepK);
  const size_t panels = ::tilekit::detail::plan_panels(p);
  p.pack_a = true;
  p.kc = p.m <= kAmxMR ? k_pad : std::min(kAmxKc, k_pad);
  const size_t mc_fit = k_pad ? l2 / (k_pad * sizeof(bf16)) / kAmxMR * kAmxMR : 0;
  p.mc = std::min(round_up(p.m, kAmxMR), std::max<size_t>(256, mc_fit));
  p.nc_panels = p.kc >= k_pad ? panels : std::max<size_t>(1, l2 / 4 / (p.mc * kAmxNR * sizeof(float)));
}

// The per-thread workspace: the packed A block (bf16), the partial sums of one
// panel group and one micro-tile's finished C for the epilogue (32 × 32 fp32).
struct AmxWorkspace {
  size_t a_floats, partial_floats;
  static constexpr size_t kTileFloats = kAmxMR * kAmxNR;
  explicit AmxWorkspace(const GemmPlan& p)
      : a_floats(p.mc * round_up(p.k, kStepK) * sizeof(bf16) / sizeof(float)),
        partial_floats(p.kc < round_up(p.k, kStepK) ? p.mc * p.nc_panels * kAmxNR : 0) {}
  size_t floats() const { return a_floats + partial_floats + kTileFloats; }
};
inline size_t amx_gemm_workspace_floats(const GemmPlan& p, const PanelLayout&, size_t) { return AmxWorkspace(p).floats(); }

// 32 values of one A row from k0 (n <= 32 of them real, the rest zero) as bf16.
TILEKIT_AMX_TARGET inline __m512i ARowStep(const float* src, size_t n) {
  const __mmask16 lo = static_cast<__mmask16>(n >= 16 ? 0xFFFF : (1u << n) - 1);
  const __mmask16 hi = static_cast<__mmask16>(n >= 32 ? 0xFFFF : n <= 16 ? 0 : (1u << (n - 16)) - 1);
  // Round to nearest even, as f32_to_bf16 (NaN stays NaN; denormals flush to
  // zero, as tdpbf16ps would flush them anyway).
  return reinterpret_cast<__m512i>(
      _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(hi, src + 16), _mm512_maskz_loadu_ps(lo, src)));
}
TILEKIT_AMX_TARGET inline __m512i ARowStep(const bf16* src, size_t n) {
  const __mmask32 m = n >= 32 ? 0xFFFFFFFFu : (1u << n) - 1;
  return _mm512_maskz_loadu_epi16(m, src);
}

// One A row as bf16, zero-padded to whole K steps: the broadcast operand of
// the vdpbf16ps GEMVs (here and in gemm/amx_narrow.h). dst holds round_up(k, 32).
template <typename TA>
TILEKIT_AMX_TARGET inline void ARowToBf16(const TA* src, size_t k, bf16* dst) {
  for (size_t k0 = 0; k0 < k; k0 += kStepK) _mm512_storeu_si512(dst + k0, ARowStep(src + k0, std::min(kStepK, k - k0)));
}

// Where the packed A block of one ic is. Per K block (kc, the last one
// shorter), per micro-tile (two row tiles, the last maybe one), per K step:
// the micro-tile's row tiles back to back, tile_rows × 32 bf16 each. So the A
// a micro-tile reads over one K block is a single stream of step_bytes per step.
struct APacking {
  size_t tile_rows, row_tiles, kc, k_pad;
  size_t steps_in(size_t pc) const { return std::min(kc, k_pad - pc) / kStepK; }
  size_t tiles_in(size_t it) const { return std::min<size_t>(2, row_tiles - 2 * it); }
  // Elements (bf16) from the block's start to micro-tile it of the K block at pc.
  size_t offset(size_t pc, size_t it) const {
    return pc * row_tiles * tile_rows + 2 * it * tile_rows * kStepK * steps_in(pc);
  }
};

template <typename TA>
TILEKIT_AMX_TARGET void PackABlock(const TA* a, size_t lda, size_t k, size_t rows, const APacking& ap,
                                   bf16* ws) {
  for (size_t r = 0; r < ap.row_tiles * ap.tile_rows; ++r) {
    const size_t t = r / ap.tile_rows, it = t / 2, nt = ap.tiles_in(it);
    const size_t in_step = ((t % 2) * ap.tile_rows + r % ap.tile_rows) * kStepK;
    const TA* src = r < rows ? a + r * lda : nullptr;  // null: a zero row of the last tile
    for (size_t pc = 0; pc < ap.k_pad; pc += ap.kc) {
      bf16* dst = ws + ap.offset(pc, it) + in_step;
      const size_t steps = ap.steps_in(pc);
      for (size_t s = 0; s < steps; ++s, dst += nt * ap.tile_rows * kStepK) {
        const size_t k0 = pc + s * kStepK;
        const __m512i v = src ? ARowStep(src + k0, std::min(kStepK, k - k0)) : _mm512_setzero_si512();
        _mm512_store_si512(dst, v);
      }
    }
  }
}

// One micro-tile (kRows row tiles × one panel) over one K block.
struct MicroTile {
  ATiles a;
  const unsigned char* b;
  size_t steps;
  L2Prefetch next;  // this micro-tile's share of the next panel's slice
  float* partial;   // 32 × 32 fp32 partial sums of this micro-tile
  bool first_k, last_k;
};

constexpr size_t kCTileStride = kAmxNR * sizeof(float);  // 32 fp32 per row

template <int kRows>
TILEKIT_AMX_TARGET inline void RunMicroTile(const MicroTile& t, float* out) {
  if (t.first_k) {
    ZeroCTiles<kRows, 2>();
  } else {
    LoadCTiles<kRows, 2>(t.partial, kCTileStride);
  }
  TileKLoop<kRows, 2>(t.a, t.b, t.steps, t.next);
  StoreCTiles<kRows, 2>(t.last_k ? out : t.partial, kCTileStride);
}

// Tiles for the GEMM: row tiles of tile_rows (C and A), full B tiles.
inline TileConfig AmxGemmConfig(size_t tile_rows) {
  TileConfig cfg;
  for (int i = 0; i < 2; ++i) {
    cfg.set(kTileA + i, tile_rows, kTileBytes);
    cfg.set(kTileB + i, kTileRows, kTileBytes);
    for (int j = 0; j < 2; ++j) cfg.set(kTileC + 2 * i + j, tile_rows, kTileBytes);
  }
  return cfg;
}

// M = 1 (the decode step) on AMX panels. One-row tiles leave AMX waiting on
// tile loads: measured 6.5-7.5 GB/s of weights against 10-11 GB/s for the
// vector GEMV (1 thread). The panel layout is already what vdpbf16ps wants:
// each 128-byte pair row holds columns 0-15 then 16-31 as (k, k+1) bf16 pairs,
// so one broadcast A pair meets two vectors of weights per K pair. As in the
// vector GEMV (gemm-inl.h), kAmxGemvPanels panels run at once, each its own
// stream prefetched kAmxStreamAhead bytes ahead, because one core reads memory
// faster from several streams. A is rounded to bf16 as the tiles would have it.
constexpr size_t kAmxGemvPanels = 8;
constexpr size_t kAmxStreamAhead = 4096;

template <size_t kPanels>
TILEKIT_AMX_TARGET void AmxGemvPanels(const uint32_t* a_pairs, size_t pairs, const unsigned char* b,
                                      size_t panel_bytes, float* out) {
  __m512 acc[2 * kPanels];
  for (size_t i = 0; i < 2 * kPanels; ++i) acc[i] = _mm512_setzero_ps();
  for (size_t q = 0; q < pairs; ++q) {
    const __m512bh a = reinterpret_cast<__m512bh>(_mm512_set1_epi32(static_cast<int>(a_pairs[q])));
#pragma GCC unroll 8
    for (size_t i = 0; i < kPanels; ++i) {
      const unsigned char* row = b + i * panel_bytes + q * kBPairRowBytes;
      _mm_prefetch(reinterpret_cast<const char*>(row + kAmxStreamAhead), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(row + kAmxStreamAhead + 64), _MM_HINT_T0);
      acc[2 * i] = _mm512_dpbf16_ps(acc[2 * i], reinterpret_cast<__m512bh>(_mm512_loadu_si512(row)), a);
      acc[2 * i + 1] = _mm512_dpbf16_ps(acc[2 * i + 1], reinterpret_cast<__m512bh>(_mm512_loadu_si512(row + 64)), a);
    }
  }
  for (size_t i = 0; i < 2 * kPanels; ++i) _mm512_storeu_ps(out + i * 16, acc[i]);
}

// The whole share for M = 1: A (one row) as bf16 pairs in the workspace, then
// the panels in groups, each panel's 32 results through the shared epilogue.
template <typename TA>
TILEKIT_AMX_TARGET void amx_gemv_range(const GemmPlan& p, size_t p0, size_t p1, float* ws) {
  const size_t k_pad = round_up(p.k, kStepK);
  bf16* a_row = reinterpret_cast<bf16*>(ws);
  ARowToBf16(static_cast<const TA*>(p.a), p.k, a_row);
  float* out = ws + k_pad / 2;  // kAmxGemvPanels × 32 floats (the workspace holds 32 × 32 more)
  const auto epilogue_tile = TILEKIT_DISPATCH_ON(p.isa, ::tilekit::detail::GemmEpilogueTile);
  using Kernel = void (*)(const uint32_t*, size_t, const unsigned char*, size_t, float*);
  static constexpr Kernel kKernels[] = {&AmxGemvPanels<1>, &AmxGemvPanels<2>, &AmxGemvPanels<3>, &AmxGemvPanels<4>,
                                        &AmxGemvPanels<5>, &AmxGemvPanels<6>, &AmxGemvPanels<7>, &AmxGemvPanels<8>};
  static_assert(sizeof(kKernels) / sizeof(kKernels[0]) == kAmxGemvPanels, "one kernel per group size");
  for (size_t pb = p0; pb < p1; pb += kAmxGemvPanels) {
    const size_t n = std::min(kAmxGemvPanels, p1 - pb);
    kKernels[n - 1](reinterpret_cast<const uint32_t*>(a_row), k_pad / 2, p.b + pb * p.panel_bytes, p.panel_bytes,
                    out);
    for (size_t i = 0; i < n; ++i) {
      const auto pc = ::tilekit::detail::panel_columns(p, pb + i, kAmxNR);
      epilogue_tile(out + i * kAmxNR, kAmxNR, 1, *pc.seg, 0, pc.col, pc.cols, p.c_bf16);
    }
  }
}

// One thread's share: rows [r0, r1) × panels [p0, p1) (the GemmRangeFn contract).
TILEKIT_AMX_TARGET inline void amx_gemm_range(const GemmPlan& p, size_t r0, size_t r1, size_t p0, size_t p1,
                                              float* ws) {
  if (p.m == 1) {
    return p.a_bf16 ? amx_gemv_range<bf16>(p, p0, p1, ws) : amx_gemv_range<float>(p, p0, p1, ws);
  }
  const AmxWorkspace layout(p);
  bf16* a_ws = reinterpret_cast<bf16*>(ws);
  float* partials = ws + layout.a_floats;
  float* tile_out = partials + layout.partial_floats;
  const auto epilogue_tile = TILEKIT_DISPATCH_ON(p.isa, ::tilekit::detail::GemmEpilogueTile);
  const size_t tile_rows = amx_tile_rows(p.m), k_pad = round_up(p.k, kStepK);
  const TileConfig cfg = AmxGemmConfig(tile_rows);
  load_tile_config(cfg);
  for (size_t ic = r0; ic < r1; ic += p.mc) {
    const size_t rows = std::min(p.mc, r1 - ic);
    const APacking ap{tile_rows, div_ceil(rows, tile_rows), p.kc, k_pad};
    const size_t micro_tiles = (ap.row_tiles + 1) / 2;
    if (p.a_bf16) {
      PackABlock(static_cast<const bf16*>(p.a) + ic * p.lda, p.lda, p.k, rows, ap, a_ws);
    } else {
      PackABlock(static_cast<const float*>(p.a) + ic * p.lda, p.lda, p.k, rows, ap, a_ws);
    }
    tile_load_barrier();
    for (size_t jc = p0; jc < p1; jc += p.nc_panels) {
      const size_t jc_end = std::min(p1, jc + p.nc_panels);
      size_t pc = 0;
      do {  // K = 0 still runs the epilogue once, on zeros
        const size_t steps = ap.steps_in(pc);
        const bool first_k = pc == 0, last_k = pc + p.kc >= k_pad;
        for (size_t pb = jc; pb < jc_end; ++pb) {
          const auto [seg, col, cols] = ::tilekit::detail::panel_columns(p, pb, kAmxNR);
          const unsigned char* b = p.b + pb * p.panel_bytes + pc / 2 * kBPairRowBytes;
          // The next panel's slice, split evenly over this slice's micro-tiles
          // (in whole lines), so B streams from memory at a steady rate. A
          // single micro-tile (M <= 32) walks a whole panel: its prefetch runs
          // as kAmxPrefetchStreams streams over equal parts of the next one.
          const unsigned char* b_next = pb + 1 < jc_end ? b + p.panel_bytes : nullptr;
          const size_t next_bytes = round_up(kBStepBytes / micro_tiles, 64);
          size_t streams = micro_tiles == 1 ? kAmxPrefetchStreams : 1;
          while (steps % streams) streams /= 2;  // equal parts of whole K steps
          for (size_t it = 0; it < micro_tiles; ++it) {
            const size_t nt = ap.tiles_in(it);
            const unsigned char* a = reinterpret_cast<const unsigned char*>(a_ws + ap.offset(pc, it));
            const size_t tile_bytes = tile_rows * kTileBytes;
            const MicroTile t{ATiles{a, kTileBytes, tile_bytes, nt * tile_bytes},
                              b,
                              steps,
                              L2Prefetch{b_next ? b_next + it * steps * next_bytes : nullptr, next_bytes, streams,
                                         steps / streams * kBStepBytes},
                              partials + ((pb - jc) * micro_tiles + it) * AmxWorkspace::kTileFloats,
                              first_k,
                              last_k};
            if (nt == 2) {
              RunMicroTile<2>(t, tile_out);
            } else {
              RunMicroTile<1>(t, tile_out);
            }
            if (last_k) {
              const size_t row0 = 2 * it * tile_rows;
              epilogue_tile(tile_out, kAmxNR, std::min(nt * tile_rows, rows - row0), *seg, ic + row0, col, cols,
                            p.c_bf16);
            }
          }
        }
        pc += p.kc;
      } while (pc < k_pad);
    }
  }
}

inline bool amx_path(Isa isa) { return isa == Isa::kAmx; }

// bf16 weights that are not one narrow matrix, when the path's vectors are
// AVX-512's 16 lanes (the epilogue's two vectors per panel).
inline bool amx_layout(Isa isa, WeightType type, const ::tilekit::detail::PackShape& shape, PanelLayout* l) {
  if (type != WeightType::kBf16 || ::tilekit::detail::vector_lanes(isa) != 16 ||
      ::tilekit::detail::is_narrow(shape, kAmxNR)) {
    return false;
  }
  l->kind = PanelKind::kAmx;
  l->lanes = 16;
  l->nr = kAmxNR;
  l->kr = 2;
  l->k_align = kStepK;
  l->type = type;
  l->a_bf16 = true;
  return true;
}

inline size_t amx_offset(const PanelLayout& l, size_t k, size_t c) { return (k / 2) * l.nr * 2 + c * 2 + k % 2; }
inline size_t amx_mr(Isa) { return kAmxMR; }
inline ::tilekit::detail::GemmRangeFn amx_range(Isa, const GemmPlan&) { return &amx_gemm_range; }

inline constexpr ::tilekit::detail::GemmKernel kAmxGemm{
    "amx",      &amx_path,  &amx_layout, &amx_offset, &amx_mr, &amx_gemm_block, &amx_gemm_workspace_floats,
    &amx_range, /*rows_first=*/false};

}  // namespace arch
}  // namespace tilekit

#endif  // TILEKIT_ARCH_X86
#endif  // TILEKIT_GEMM_AMX_GEMM_H_

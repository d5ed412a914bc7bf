// Per-target: BLIS's loops around the vector path's micro-kernel for one
// thread's share of the output (rows [r0, r1) × panels [p0, p1)): A packing,
// row tiles, K blocks and the prefetch plan of each tile; M = 1 goes to the
// GEMV.
#if defined(TILEKIT_GEMM_LOOPS_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TILEKIT_GEMM_LOOPS_INL_H_
#undef TILEKIT_GEMM_LOOPS_INL_H_
#else
#define TILEKIT_GEMM_LOOPS_INL_H_
#endif

#include <hwy/highway.h>

#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "tilekit/gemm/gemv-inl.h"
#include "tilekit/gemm/microkernel-inl.h"
#include "tilekit/gemm/operands-inl.h"
#include "tilekit/gemm/plan.h"
#include "tilekit/gemm/prefetch-inl.h"
#include "tilekit/gemm/store-inl.h"

HWY_BEFORE_NAMESPACE();
namespace tilekit {
namespace detail {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// A block's rows cut into the fewest tiles of at most kGemmMR rows, heights
// differing by at most one: 256 rows are 14 × 12 + 8 × 11, not 21 × 12 + 4
// (a 4-row tile has too few accumulators to hide the FMA latency, and the
// block's last tile also pulls the next B slice into L1). The tile height does
// not change any element's arithmetic (its products are summed in k order
// whatever the tile), so results stay identical.
struct RowTiles {
  size_t count, base, extra;
  explicit RowTiles(size_t rows)
      : count((rows + kGemmMR - 1) / kGemmMR), base(count ? rows / count : 0), extra(count ? rows % count : 0) {}
  size_t begin(size_t t) const { return t * base + HWY_MIN(t, extra); }
  size_t rows(size_t t) const { return base + (t < extra ? 1 : 0); }
};

// Copies rows [r0, r0 + rows) of A, all of K, into panels of kGemmMR rows,
// k-major ([panel][K][kGemmMR]), so the micro-kernel's broadcasts read one
// contiguous stream (rows of a large-ld A map to the same L1 sets) and a K
// block of a panel is contiguous too. bf16 A is widened here: one conversion
// per element per row block, not one per use. Packed once per row block and
// reused by every panel group and K block.
template <typename TA>
HWY_INLINE void PackA(const TA* a, size_t lda, size_t r0, size_t rows, size_t K, float* HWY_RESTRICT ws) {
  const RowTiles tiles(rows);
  for (size_t t = 0; t < tiles.count; ++t) {
    float* HWY_RESTRICT panel = ws + t * K * kGemmMR;
    const size_t n = tiles.rows(t);
    const TA* src = a + (r0 + tiles.begin(t)) * lda;
    for (size_t k = 0; k < K; ++k) {
      for (size_t i = 0; i < n; ++i) {
        panel[k * kGemmMR + i] = AsFloat(src[i * lda + k]);
      }
    }
  }
}

// BLIS's loops around the micro-kernel, B already packed: a block of mc rows
// (A packed once) × a group of panels (nc columns) × K blocks of kc. The
// kc × nr slice of a panel stays in L1 while the mc / mr tiles of the block
// stream past it; the tiles' partial sums stay in L2.
template <typename TA, typename TB, typename TC>
HWY_INLINE void GemmRangeT(const GemmPlan& p, size_t r0, size_t r1, size_t p0, size_t p1, float* ws) {
  const size_t lanes = GemmPanelLanes(), nr = 2 * lanes;
  constexpr size_t kBytesPerColumn = std::is_same<TB, float>::value ? 4 : 2;  // bf16 pairs: 2
  const size_t row_bytes = nr * kBytesPerColumn;
  const size_t row_blocks = (p.mc + kGemmMR - 1) / kGemmMR;
  const TA* a = static_cast<const TA*>(p.a);
  float* a_ws = ws;
  float* c_ws = p.pack_a ? ws + row_blocks * kGemmMR * p.k : ws;
  // B is read front to back (see SlicePrefetch) with one panel per group or
  // one K block per panel.
  const bool linear = p.nc_panels == 1 || p.kc >= p.k;
  // The GEMV (M = 1) prefetches its streams only when the share's weights
  // cannot be in L2 already: decided once per share.
  const bool gemv_streams = GemvStreams((p1 - p0) * p.panel_bytes);
  for (size_t ic = r0; ic < r1; ic += p.mc) {
    const size_t rows = HWY_MIN(p.mc, r1 - ic);
    const RowTiles tiles(rows);
    if (p.pack_a) PackA(a, p.lda, ic, rows, p.k, a_ws);
    for (size_t jc = p0; jc < p1; jc += p.nc_panels) {
      const size_t jc_end = HWY_MIN(p1, jc + p.nc_panels);
      size_t pc = 0;
      do {
        const size_t kc = HWY_MIN(p.kc, p.k - pc);
        const uint32_t flags = (pc == 0 ? kFirstK : 0u) | (pc + kc >= p.k ? kLastK : 0u);
        if (rows == 1 && kc == p.k) {  // the GEMV: no K blocks, no row tiles
          // bf16 A is always packed (widened); fp32 A may be read in place.
          const float* a_row = a_ws;
          size_t a_step = kGemmMR;
          if constexpr (std::is_same<TA, float>::value) {
            if (!p.pack_a) a_row = a + ic * p.lda, a_step = 1;
          }
          for (size_t pb = jc; pb < jc_end; pb += kGemvPanels) {
            const size_t n = HWY_MIN(kGemvPanels, jc_end - pb);
            TileOut outs[kGemvPanels];
            for (size_t i = 0; i < n; ++i) {
              const PanelColumns pc = panel_columns(p, pb + i, nr);
              outs[i] = TileOut{pc.seg, ic, pc.col, pc.cols};
              PrefetchEpilogueInputs<TC>(outs[i], 1);
            }
            RunGemv<TB, TC>(n, gemv_streams, p.k, a_row, a_step, p.b + pb * p.panel_bytes,
                            p.panel_bytes, row_bytes, outs, std::make_index_sequence<kGemvPanels>());
          }
          pc += kc;
          continue;
        }
        for (size_t pb = jc; pb < jc_end; ++pb) {
          const PanelColumns out_cols = panel_columns(p, pb, nr);
          const SlicePrefetch pf = PlanSlicePrefetch(p.b, pb, pc, kc, p.k, row_bytes, p.panel_bytes, tiles.count,
                                                     linear ? p1 - 1 : jc_end - 1, linear);
          for (size_t tile = 0; tile < tiles.count; ++tile) {
            const size_t ir = tiles.begin(tile), mr = tiles.rows(tile);
            const PanelSlice<TB> b{reinterpret_cast<const TB*>(pf.slice), pf.L1Target(tile), row_bytes,
                                   pf.L2Target(tile)};
            const TileOut out{out_cols.seg, ic + ir, out_cols.col, out_cols.cols};
            if (flags & kLastK) PrefetchEpilogueInputs<TC>(out, mr);
            // No workspace (one K block, A read in place): no partial sums,
            // and no offset from a null pointer.
            float* partial = c_ws ? c_ws + ((pb - jc) * row_blocks + tile) * kGemmMR * nr : nullptr;
            if (p.pack_a) {
              const float* a_panel = a_ws + tile * p.k * kGemmMR + pc * kGemmMR;
              RunTile<true, TB, TC>(mr, kc, a_panel, 0, b, partial, flags, out, std::make_index_sequence<kGemmMR>());
            } else if constexpr (std::is_same<TA, float>::value) {
              RunTile<false, TB, TC>(mr, kc, a + (ic + ir) * p.lda + pc, p.lda, b, partial, flags, out,
                                     std::make_index_sequence<kGemmMR>());
            }
          }
        }
        pc += kc;
      } while (pc < p.k);
    }
  }
}

// One thread's share: rows [r0, r1) × panels [p0, p1). `ws` holds the packed
// A block (mc·K floats, rounded up to whole mr panels) followed by the partial
// sums of one panel group (mc·nc floats); see workspace_floats in gemm.h.
inline void GemmRange(const GemmPlan& p, size_t r0, size_t r1, size_t p0, size_t p1, float* ws) {
  WithElementTypes(p, [&](auto* a, auto* b, auto* c) {
    GemmRangeT<Pointee<decltype(a)>, Pointee<decltype(b)>, Pointee<decltype(c)>>(p, r0, r1, p0, p1, ws);
  });
}

}  // namespace HWY_NAMESPACE
}  // namespace detail
}  // namespace tilekit
HWY_AFTER_NAMESPACE();

#endif  // TILEKIT_GEMM_LOOPS_INL_H_

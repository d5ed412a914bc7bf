// Per-target: the quantized kernel (gemm/quant.h), weight-only: int8 / int4
// values widen to fp32 in registers and multiply fp32 activations, fp32 sums.
//   M <= kQuantGemvMaxRows (decode): QuantGemv streams several panels at
//     once; each group's products are summed apart and scaled once (the zero
//     point subtracted as z · Σa over the group), so a weight costs a load
//     lane, a widening and an FMA per row of a tile of up to 4 rows.
//   More rows: each K block of a panel is dequantized to fp32 once per row block
//     and the vector kernel's register tile (microkernel-inl.h) runs over it.
#if defined(TILEKIT_GEMM_QUANT_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TILEKIT_GEMM_QUANT_INL_H_
#undef TILEKIT_GEMM_QUANT_INL_H_
#else
#define TILEKIT_GEMM_QUANT_INL_H_
#endif

#include <hwy/cache_control.h>
#include <hwy/highway.h>

#include <cstddef>
#include <cstdint>
#include <utility>

#include "tilekit/base/bf16.h"
#include "tilekit/gemm/loops-inl.h"
#include "tilekit/gemm/microkernel-inl.h"
#include "tilekit/gemm/operands-inl.h"
#include "tilekit/gemm/plan.h"
#include "tilekit/gemm/prefetch-inl.h"
#include "tilekit/gemm/quant_act.h"
#include "tilekit/gemm/store-inl.h"

HWY_BEFORE_NAMESPACE();
namespace tilekit {
namespace detail {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// On 16-lane x86 vectors a nibble becomes its value q = u - 8 in one
// vpermps from a 16-entry table (the instruction reads an index's low 4 bits
// only), where widening it needs a mask or shift, a conversion, and the zero
// point subtracted later: the int4 decode step was bound by those operations
// (0.41 of the read ceiling), not by memory.
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
constexpr bool kInt4Table = true;
#else
constexpr bool kInt4Table = false;
#endif
// The zero point still in the values LoadQuantRow gives.
constexpr float QuantZero(bool int4) { return int4 ? (kInt4Table ? 0.f : 8.f) : 128.f; }

// A packed row's values as two fp32 vectors, columns [0, N) and [N, 2N): the
// stored (offset binary) values, or q itself for int4 on 16-lane x86
// (QuantZero says which). int8: 2N bytes, each widened; int4: N bytes, the
// low nibbles are columns [0, N), the high ones [N, 2N).
template <bool kInt4, class DF>
HWY_INLINE void LoadQuantRow(DF df, const uint8_t* HWY_RESTRICT row, hn::Vec<DF>& u0, hn::Vec<DF>& u1) {
  const hn::RebindToUnsigned<DF> du;
  const hn::RebindToSigned<DF> di;
  const hn::Rebind<uint8_t, DF> d8;
  const size_t N = hn::Lanes(df);
  if constexpr (kInt4) {
    const auto x = hn::PromoteTo(du, hn::LoadU(d8, row));
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
    const __m512 values = _mm512_setr_ps(-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7);
    u0 = hn::Vec<DF>{_mm512_permutexvar_ps(x.raw, values)};
    u1 = hn::Vec<DF>{_mm512_permutexvar_ps(hn::ShiftRight<4>(x).raw, values)};
    (void)di;
#else
    u0 = hn::ConvertTo(df, hn::BitCast(di, hn::And(x, hn::Set(du, 0xFu))));
    u1 = hn::ConvertTo(df, hn::BitCast(di, hn::ShiftRight<4>(x)));
#endif
  } else {
    u0 = hn::ConvertTo(df, hn::BitCast(di, hn::PromoteTo(du, hn::LoadU(d8, row))));
    u1 = hn::ConvertTo(df, hn::BitCast(di, hn::PromoteTo(du, hn::LoadU(d8, row + N))));
  }
}

// Panels read at once by the GEMV, each its own memory stream (one core reads
// memory faster from several sequential streams, as in GemvPanels): a panel
// holds a group's two sums per row in registers; the running totals wait in
// memory, updated once per group. A tile of kRows rows reads
// QuantGemvPanelsFor(kRows) panels at once: every weight row loaded and
// widened once serves all of them, within 16 sums in registers (one row keeps
// 8 panels of AVX-512's 32 registers, as before rows were added).
#if HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_SCALAR || HWY_TARGET == HWY_EMU128
constexpr size_t kQuantGemvPanels = 4;
#else
constexpr size_t kQuantGemvPanels = 8;
#endif
// Rows of one GEMV tile: more rows are tiles of at most this many.
constexpr size_t kQuantGemvRows = 4;
constexpr size_t QuantGemvPanelsFor(size_t rows) {
  return rows == 1 ? kQuantGemvPanels : rows == 2 ? kQuantGemvPanels / 2 : HWY_MAX(size_t{1}, kQuantGemvPanels / 4);
}

// Where a GEMV reads its panels: a K-group of row_bytes rows is followed by the
// panel's scales; panels lie panel_bytes apart. A prefetch is issued every
// rows_per_line rows (one per cache line of a stream). (Prefetching, from a
// block's first tile, the panels its later tiles read measured slower: M = 4
// read at 0.37-0.43 of the read ceiling with it, 0.56-0.62 without, int8.)
struct QuantPanels {
  const uint8_t* b;
  size_t panel_bytes, row_bytes, group_bytes, g, groups, rows_per_line;
  float zero;
};

// The rows of a GEMV tile: row r's fp32 values (zero-padded to whole groups)
// at a + r · a_stride, its group sums at asum + r · asum_stride, its outputs
// at out + r · out_stride.
struct QuantGemvRows {
  const float* a;
  const float* asum;
  float* out;
  size_t a_stride, asum_stride, out_stride;
};

// Sum s<P><R><half> of panel P, row R. Only the sums of panels < kPanels and
// rows < kRows are used; the compiler drops the others.
#define TILEKIT_QGEMV_DECLARE(P)                                                             \
  auto s##P##00 = hn::Zero(df), s##P##01 = s##P##00, s##P##10 = s##P##00, s##P##11 = s##P##00, \
       s##P##20 = s##P##00, s##P##21 = s##P##00, s##P##30 = s##P##00, s##P##31 = s##P##00;
#define TILEKIT_QGEMV_ROW_FMA(P, R)                                                          \
  if constexpr (kRows > R) {                                                                 \
    s##P##R##0 = hn::MulAdd(a##R, u0, s##P##R##0);                                           \
    s##P##R##1 = hn::MulAdd(a##R, u1, s##P##R##1);                                           \
  }
#define TILEKIT_QGEMV_FMA(P)                                                                 \
  if constexpr (kPanels > P) {                                                               \
    const uint8_t* row = rows + P * q.panel_bytes + k * q.row_bytes;                         \
    if (prefetch) hwy::Prefetch(row + kStreamAhead);                                         \
    hn::Vec<decltype(df)> u0, u1;                                                            \
    LoadQuantRow<kInt4>(df, row, u0, u1);                                                    \
    TILEKIT_QGEMV_ROW_FMA(P, 0) TILEKIT_QGEMV_ROW_FMA(P, 1)                                  \
    TILEKIT_QGEMV_ROW_FMA(P, 2) TILEKIT_QGEMV_ROW_FMA(P, 3)                                  \
  }
#define TILEKIT_QGEMV_ROW_SCALE(P, R)                                                        \
  if constexpr (kRows > R) {                                                                 \
    const auto corr = hn::Set(df, q.zero * r.asum[R * r.asum_stride + gi]);                  \
    float* t = r.out + R * r.out_stride + P * 2 * N;                                         \
    hn::Store(hn::MulAdd(hn::Sub(s##P##R##0, corr), sc0, hn::Load(df, t)), df, t);           \
    hn::Store(hn::MulAdd(hn::Sub(s##P##R##1, corr), sc1, hn::Load(df, t + N)), df, t + N);   \
    s##P##R##0 = hn::Zero(df);                                                               \
    s##P##R##1 = hn::Zero(df);                                                               \
  }
#define TILEKIT_QGEMV_SCALE(P)                                                               \
  if constexpr (kPanels > P) {                                                               \
    const float* scales = reinterpret_cast<const float*>(rows + P * q.panel_bytes + q.g * q.row_bytes); \
    const auto sc0 = hn::LoadU(df, scales), sc1 = hn::LoadU(df, scales + N);                 \
    TILEKIT_QGEMV_ROW_SCALE(P, 0) TILEKIT_QGEMV_ROW_SCALE(P, 1)                              \
    TILEKIT_QGEMV_ROW_SCALE(P, 2) TILEKIT_QGEMV_ROW_SCALE(P, 3)                              \
  }

// out_r[P · 2N + c] = Σ_k a_r[k] · w(k, c) for the first kPanels panels at q.b
// and rows r < kRows (each out row aligned, kPanels · 2N floats). Each row's
// sums are the same operations in the same order whatever kRows: a row's
// outputs do not depend on the rows beside it.
template <size_t kRows, size_t kPanels, bool kInt4>
HWY_NOINLINE void QuantGemvTile(const QuantPanels& q, const QuantGemvRows& r) {
  static_assert(kRows >= 1 && kRows <= kQuantGemvRows && kPanels <= 8, "QuantGemvTile declares 8 panels × 4 rows");
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  for (size_t i = 0; i < kRows; ++i) {
    for (size_t c = 0; c < kPanels * 2 * N; c += N) hn::Store(hn::Zero(df), df, r.out + i * r.out_stride + c);
  }
  TILEKIT_QGEMV_DECLARE(0) TILEKIT_QGEMV_DECLARE(1) TILEKIT_QGEMV_DECLARE(2) TILEKIT_QGEMV_DECLARE(3)
  TILEKIT_QGEMV_DECLARE(4) TILEKIT_QGEMV_DECLARE(5) TILEKIT_QGEMV_DECLARE(6) TILEKIT_QGEMV_DECLARE(7)
  const size_t line_mask = q.rows_per_line - 1;
  for (size_t gi = 0; gi < q.groups; ++gi) {
    const uint8_t* rows = q.b + gi * q.group_bytes;
    const float* ag = r.a + gi * q.g;
    for (size_t k = 0; k < q.g; ++k) {
      const bool prefetch = (k & line_mask) == 0;
      const auto a0 = hn::Set(df, ag[k]);
      const auto a1 = hn::Set(df, kRows > 1 ? ag[r.a_stride + k] : 0.f);
      const auto a2 = hn::Set(df, kRows > 2 ? ag[2 * r.a_stride + k] : 0.f);
      const auto a3 = hn::Set(df, kRows > 3 ? ag[3 * r.a_stride + k] : 0.f);
      TILEKIT_QGEMV_FMA(0) TILEKIT_QGEMV_FMA(1) TILEKIT_QGEMV_FMA(2) TILEKIT_QGEMV_FMA(3)
      TILEKIT_QGEMV_FMA(4) TILEKIT_QGEMV_FMA(5) TILEKIT_QGEMV_FMA(6) TILEKIT_QGEMV_FMA(7)
    }
    TILEKIT_QGEMV_SCALE(0) TILEKIT_QGEMV_SCALE(1) TILEKIT_QGEMV_SCALE(2) TILEKIT_QGEMV_SCALE(3)
    TILEKIT_QGEMV_SCALE(4) TILEKIT_QGEMV_SCALE(5) TILEKIT_QGEMV_SCALE(6) TILEKIT_QGEMV_SCALE(7)
  }
}
#undef TILEKIT_QGEMV_DECLARE
#undef TILEKIT_QGEMV_ROW_FMA
#undef TILEKIT_QGEMV_FMA
#undef TILEKIT_QGEMV_ROW_SCALE
#undef TILEKIT_QGEMV_SCALE

// The tile of `rows` rows and `panels` panels (1 <= panels <=
// QuantGemvPanelsFor(rows)).
template <size_t kRows, bool kInt4, size_t... kCounts>
HWY_INLINE void RunQuantGemvRows(size_t panels, const QuantPanels& q, const QuantGemvRows& r,
                                 std::index_sequence<kCounts...>) {
  using Kernel = void (*)(const QuantPanels&, const QuantGemvRows&);
  static constexpr Kernel kKernels[] = {&QuantGemvTile<kRows, kCounts + 1, kInt4>...};
  kKernels[panels - 1](q, r);
}

template <bool kInt4>
HWY_INLINE void RunQuantGemv(size_t rows, size_t panels, const QuantPanels& q, const QuantGemvRows& r) {
  switch (rows) {
    case 1: return RunQuantGemvRows<1, kInt4>(panels, q, r, std::make_index_sequence<QuantGemvPanelsFor(1)>());
    case 2: return RunQuantGemvRows<2, kInt4>(panels, q, r, std::make_index_sequence<QuantGemvPanelsFor(2)>());
    case 3: return RunQuantGemvRows<3, kInt4>(panels, q, r, std::make_index_sequence<QuantGemvPanelsFor(3)>());
    default: return RunQuantGemvRows<4, kInt4>(panels, q, r, std::make_index_sequence<QuantGemvPanelsFor(4)>());
  }
}

template <bool kInt4>
HWY_INLINE QuantPanels QuantPanelsOf(const GemmPlan& p) {
  const size_t row_bytes = kInt4 ? p.nr / 2 : p.nr;
  const size_t kp = (p.k + p.group - 1) / p.group * p.group;
  // Rows per cache line, rounded down to a power of two (the loop masks with
  // it), at least 1.
  size_t rows_per_line = 1;
  while (2 * rows_per_line * row_bytes <= 64) rows_per_line *= 2;
  const size_t group_bytes = p.group * row_bytes + p.nr * sizeof(float);
  return QuantPanels{p.b, p.panel_bytes, row_bytes, group_bytes, p.group, kp / p.group, rows_per_line, QuantZero(kInt4)};
}

// M <= kQuantGemvMaxRows (decode, a few sequences at once): the rows as fp32
// padded to whole groups and their group sums in `ws`, then the share's
// panels kQuantGemvPanels at a time, each block's rows in tiles of up to
// kQuantGemvRows: the first tile streams the block from memory, the others
// find it in L2 (kQuantGemvPanels panels of K rows: 256 KiB at K = 4096,
// int8 on 16 lanes).
template <typename TA, typename TC, bool kInt4>
HWY_INLINE void QuantGemv(const GemmPlan& p, size_t p0, size_t p1, float* HWY_RESTRICT ws) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  QuantPanels q = QuantPanelsOf<kInt4>(p);
  const size_t kp = q.groups * q.g;
  float* a = ws;
  float* asum = a + p.m * kp;
  const TA* rows = static_cast<const TA*>(p.a);
  for (size_t i = 0; i < p.m; ++i) {
    const TA* row = rows + i * p.lda;
    for (size_t gi = 0; gi < q.groups; ++gi) {
      float sum = 0.f;
      for (size_t k = gi * q.g; k < (gi + 1) * q.g; ++k) {
        a[i * kp + k] = k < p.k ? AsFloat(row[k]) : 0.f;
        sum += a[i * kp + k];
      }
      asum[i * q.groups + gi] = sum;
    }
  }
  constexpr size_t kTileLd = kQuantGemvPanels * 2 * HWY_MAX_BYTES / sizeof(float);
  HWY_ALIGN float tile[kQuantGemvRows * kTileLd];
  for (size_t pb = p0; pb < p1; pb += kQuantGemvPanels) {
    const size_t n = HWY_MIN(kQuantGemvPanels, p1 - pb);
    for (size_t i0 = 0; i0 < p.m; i0 += kQuantGemvRows) {
      const size_t m = HWY_MIN(kQuantGemvRows, p.m - i0), step = QuantGemvPanelsFor(m);
      for (size_t j = 0; j < n; j += step) {
        q.b = p.b + (pb + j) * p.panel_bytes;
        const QuantGemvRows r{a + i0 * kp, asum + i0 * q.groups, tile + j * 2 * N, kp, q.groups, kTileLd};
        RunQuantGemv<kInt4>(m, HWY_MIN(step, n - j), q, r);
      }
      for (size_t j = 0; j < n; ++j) {
        const PanelColumns pc = panel_columns(p, pb + j, 2 * N);
        StoreTile<TC>(tile + j * 2 * N, kTileLd, TileOut{pc.seg, i0, pc.col, pc.cols}, m);
      }
    }
  }
}

// Rows [k0, k1) of a panel (k0 a multiple of 8, within whole groups of the
// layout) dequantized to fp32, w = (u - z) · scale, as rows of 2N floats: the
// subtraction is exact (small integers), so w is q · scale rounded once, on
// every path (a fused u · s - z · s would round differently where not fused).
template <bool kInt4>
HWY_INLINE void DequantizeSlice(const QuantPanels& q, const uint8_t* panel, size_t k0, size_t k1,
                                float* HWY_RESTRICT out) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  for (size_t k = k0; k < k1;) {
    const size_t gi = k / q.g, end = HWY_MIN(k1, (gi + 1) * q.g);
    const uint8_t* group = panel + gi * q.group_bytes;
    const float* scales = reinterpret_cast<const float*>(group + q.g * q.row_bytes);
    const auto s0 = hn::LoadU(df, scales), s1 = hn::LoadU(df, scales + N);
    const auto z = hn::Set(df, q.zero);
    for (; k < end; ++k) {
      hn::Vec<decltype(df)> u0, u1;
      LoadQuantRow<kInt4>(df, group + (k - gi * q.g) * q.row_bytes, u0, u1);
      float* dst = out + (k - k0) * 2 * N;
      hn::Store(hn::Mul(hn::Sub(u0, z), s0), df, dst);
      hn::Store(hn::Mul(hn::Sub(u1, z), s1), df, dst + N);
    }
  }
}

// M > 1, rows [r0, r1) × panels [p0, p1): per row block A packed as the
// vector loops pack it (PackA), per panel and K block the slice dequantized
// once and every row tile run over it (RunTile), partial sums in between.
// Each element sums its products in k order whatever the tiling, as in
// GemmRangeT.
template <typename TA, typename TC, bool kInt4>
HWY_INLINE void QuantRangeT(const GemmPlan& p, size_t r0, size_t r1, size_t p0, size_t p1, float* HWY_RESTRICT ws) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df), nr = 2 * N;
  const QuantPanels q = QuantPanelsOf<kInt4>(p);
  const size_t mc_tiles = (p.mc + kGemmMR - 1) / kGemmMR;
  float* a_ws = ws;
  float* c_ws = a_ws + mc_tiles * kGemmMR * p.k;
  // The slice is stored with aligned stores: its own cache line.
  float* slice = ws + (mc_tiles * kGemmMR * (p.k + nr) + 15) / 16 * 16;
  const TA* a = static_cast<const TA*>(p.a);
  for (size_t ic = r0; ic < r1; ic += p.mc) {
    const size_t rows = HWY_MIN(p.mc, r1 - ic);
    const RowTiles tiles(rows);
    PackA(a, p.lda, ic, rows, p.k, a_ws);
    for (size_t pb = p0; pb < p1; ++pb) {
      const PanelColumns cols = panel_columns(p, pb, nr);
      const uint8_t* panel = p.b + pb * p.panel_bytes;
      for (size_t pc = 0; pc < p.k; pc += p.kc) {
        const size_t kc = HWY_MIN(p.kc, p.k - pc);
        const uint32_t flags = (pc == 0 ? kFirstK : 0u) | (pc + kc >= p.k ? kLastK : 0u);
        DequantizeSlice<kInt4>(q, panel, pc, pc + kc, slice);
        const unsigned char* bytes = reinterpret_cast<const unsigned char*>(slice);
        const PanelSlice<float> b{slice, bytes, nr * sizeof(float), L2Lines{bytes, 0, 0, 0}};
        for (size_t t = 0; t < tiles.count; ++t) {
          const TileOut out{cols.seg, ic + tiles.begin(t), cols.col, cols.cols};
          if (flags & kLastK) PrefetchEpilogueInputs<TC>(out, tiles.rows(t));
          RunTile<true, float, TC>(tiles.rows(t), kc, a_ws + t * p.k * kGemmMR + pc * kGemmMR, 0, b,
                                   c_ws + t * kGemmMR * nr, flags, out, std::make_index_sequence<kGemmMR>());
        }
      }
      if (p.k == 0) {  // no K block: the epilogue of a zero product
        HWY_ALIGN float zeros[kGemmMR * 2 * HWY_MAX_BYTES / sizeof(float)] = {};
        for (size_t t = 0; t < tiles.count; ++t) {
          StoreTile<TC>(zeros, nr, TileOut{cols.seg, ic + tiles.begin(t), cols.col, cols.cols}, tiles.rows(t));
        }
      }
    }
  }
}

template <typename TA, typename TC>
HWY_INLINE void QuantRangeAC(const GemmPlan& p, size_t r0, size_t r1, size_t p0, size_t p1, float* ws) {
  const bool int4 = p.b_type == WeightType::kInt4;
  if (p.m <= kQuantGemvMaxRows) {
    return int4 ? QuantGemv<TA, TC, true>(p, p0, p1, ws) : QuantGemv<TA, TC, false>(p, p0, p1, ws);
  }
  return int4 ? QuantRangeT<TA, TC, true>(p, r0, r1, p0, p1, ws) : QuantRangeT<TA, TC, false>(p, r0, r1, p0, p1, ws);
}

// GemmRangeFn of the quantized kernel: A and C fp32 or bf16.
inline void QuantRange(const GemmPlan& p, size_t r0, size_t r1, size_t p0, size_t p1, float* ws) {
  if (p.a_bf16) {
    return p.c_bf16 ? QuantRangeAC<bf16, bf16>(p, r0, r1, p0, p1, ws) : QuantRangeAC<bf16, float>(p, r0, r1, p0, p1, ws);
  }
  return p.c_bf16 ? QuantRangeAC<float, bf16>(p, r0, r1, p0, p1, ws) : QuantRangeAC<float, float>(p, r0, r1, p0, p1, ws);
}

}  // namespace HWY_NAMESPACE
}  // namespace detail
}  // namespace tilekit
HWY_AFTER_NAMESPACE();

#endif  // TILEKIT_GEMM_QUANT_INL_H_

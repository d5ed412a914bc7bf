// Per-target: the dot-product kernel of narrow weights (PanelKind::kDot,
// gemm/dot.h), on every path.
#if defined(TILEKIT_GEMM_DOT_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TILEKIT_GEMM_DOT_INL_H_
#undef TILEKIT_GEMM_DOT_INL_H_
#else
#define TILEKIT_GEMM_DOT_INL_H_
#endif

#include <hwy/highway.h>

#include <cstddef>

#include "tilekit/base/bf16.h"
#include "tilekit/gemm/operands-inl.h"
#include "tilekit/gemm/plan.h"
#include "tilekit/gemm/store-inl.h"

HWY_BEFORE_NAMESPACE();
namespace tilekit {
namespace detail {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Narrow weights (PanelKind::kDot, N <= kDotMaxN; see packed_weights.h): each
// output element is a dot product of an A row and a weight column, both
// contiguous along K, so vectors run along K and no lane multiplies padding
// columns. A tile of kDotMR rows × kDotNR columns keeps kDotMR · kDotNR
// accumulators; a step of 2N values of K loads 2 A vectors per row and one
// weight vector (bf16: one pair vector) per column, and each accumulator sums
// its lanes once at the end. A is read in place, one sequential stream per row:
// at N = 10 each A element meets only 10 weights, so A is the traffic and
// copying it would double it.
// Register budget: kDotMR · kDotNR accumulators + 2 · kDotMR A + 2 weights:
// 20 + 8 + 2 of 32 (AVX-512, NEON, SVE); AVX2's 16 hold 2 × 5.
#if HWY_TARGET == HWY_AVX2
constexpr size_t kDotMR = 2, kDotNR = 5;
#elif HWY_TARGET == HWY_SCALAR
constexpr size_t kDotMR = 2, kDotNR = 2;  // the epilogue tile is 2N = 2 columns wide
#else
constexpr size_t kDotMR = 4, kDotNR = 5;
#endif
inline size_t GemmDotMR() { return kDotMR; }

// Two vectors of A from row position p: values [0, N) and [N, 2N).
template <class DF>
HWY_INLINE void LoadA2(DF df, const float* HWY_RESTRICT p, hn::Vec<DF>& lo, hn::Vec<DF>& hi) {
  lo = hn::LoadU(df, p);
  hi = hn::LoadU(df, p + hn::Lanes(df));
}
template <class DF>
HWY_INLINE void LoadA2(DF df, const bf16* HWY_RESTRICT p, hn::Vec<DF>& lo, hn::Vec<DF>& hi) {
  const hn::RebindToUnsigned<DF> du;
  const hn::Rebind<uint16_t, DF> d16;
  const uint16_t* bits = reinterpret_cast<const uint16_t*>(p);
  lo = hn::BitCast(df, hn::ShiftLeft<16>(hn::PromoteTo(du, hn::LoadU(d16, bits))));
  hi = hn::BitCast(df, hn::ShiftLeft<16>(hn::PromoteTo(du, hn::LoadU(d16, bits + hn::Lanes(df)))));
}

#define TILEKIT_DOT_LOAD_A(R, ROWS, OFFSET) \
  if constexpr (kDotMR > R) LoadA2(df, ROWS[R] + OFFSET, a##R##0, a##R##1);
#define TILEKIT_DOT_FMA(R, C)                       \
  if constexpr (kDotMR > R) {                       \
    c##R##C = hn::MulAdd(a##R##0, w0, c##R##C);     \
    c##R##C = hn::MulAdd(a##R##1, w1, c##R##C);     \
  }
#define TILEKIT_DOT_COLUMN(C, STEP)                                                   \
  if constexpr (kDotNR > C) {                                                         \
    hn::Vec<decltype(df)> w0, w1;                                                     \
    LoadB(df, cols[C], STEP, w0, w1);                                                 \
    TILEKIT_DOT_FMA(0, C) TILEKIT_DOT_FMA(1, C) TILEKIT_DOT_FMA(2, C) TILEKIT_DOT_FMA(3, C) \
  }
// One step: A from ROWS[r] + OFFSET, the columns' step STEP.
#define TILEKIT_DOT_STEP(ROWS, OFFSET, STEP)                                                     \
  TILEKIT_DOT_LOAD_A(0, ROWS, OFFSET) TILEKIT_DOT_LOAD_A(1, ROWS, OFFSET)                        \
  TILEKIT_DOT_LOAD_A(2, ROWS, OFFSET) TILEKIT_DOT_LOAD_A(3, ROWS, OFFSET)                        \
  TILEKIT_DOT_COLUMN(0, STEP) TILEKIT_DOT_COLUMN(1, STEP) TILEKIT_DOT_COLUMN(2, STEP)            \
  TILEKIT_DOT_COLUMN(3, STEP) TILEKIT_DOT_COLUMN(4, STEP)
#define TILEKIT_DOT_SUM_ROW(R)                                                          \
  if constexpr (kDotMR > R) {                                                           \
    if constexpr (kDotNR > 0) sums[R * kDotNR + 0] = hn::GetLane(hn::SumOfLanes(df, c##R##0)); \
    if constexpr (kDotNR > 1) sums[R * kDotNR + 1] = hn::GetLane(hn::SumOfLanes(df, c##R##1)); \
    if constexpr (kDotNR > 2) sums[R * kDotNR + 2] = hn::GetLane(hn::SumOfLanes(df, c##R##2)); \
    if constexpr (kDotNR > 3) sums[R * kDotNR + 3] = hn::GetLane(hn::SumOfLanes(df, c##R##3)); \
    if constexpr (kDotNR > 4) sums[R * kDotNR + 4] = hn::GetLane(hn::SumOfLanes(df, c##R##4)); \
  }

// sums[r · kDotNR + c] = row r · column c over `steps` steps of 2N, then one
// more step with A from `tail` (kDotMR rows of 2N floats: the rows' last
// K mod 2N values, zero-padded; null if none) against the columns' zero padding.
// Every element sums its products in the same order whatever the tile, so
// results do not depend on the thread count.
template <typename TA, typename TB>
HWY_NOINLINE void DotTile(size_t steps, const TA* const* HWY_RESTRICT rows, const TB* const* HWY_RESTRICT cols,
                          const float* HWY_RESTRICT tail, float* HWY_RESTRICT sums) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  auto c00 = hn::Zero(df), c01 = c00, c02 = c00, c03 = c00, c04 = c00, c10 = c00, c11 = c00, c12 = c00;
  auto c13 = c00, c14 = c00, c20 = c00, c21 = c00, c22 = c00, c23 = c00, c24 = c00, c30 = c00;
  auto c31 = c00, c32 = c00, c33 = c00, c34 = c00;
  hn::Vec<decltype(df)> a00, a01, a10, a11, a20, a21, a30, a31;
  for (size_t s = 0; s < steps; ++s) {
    TILEKIT_DOT_STEP(rows, s * 2 * N, s)
  }
  if (tail) {  // the columns' step `steps` is their zero padding
    const float* tail_rows[kDotMR];
    for (size_t r = 0; r < kDotMR; ++r) tail_rows[r] = tail + r * 2 * N;
    TILEKIT_DOT_STEP(tail_rows, 0, steps)
  }
  TILEKIT_DOT_SUM_ROW(0) TILEKIT_DOT_SUM_ROW(1) TILEKIT_DOT_SUM_ROW(2) TILEKIT_DOT_SUM_ROW(3)
}
#undef TILEKIT_DOT_LOAD_A
#undef TILEKIT_DOT_FMA
#undef TILEKIT_DOT_COLUMN
#undef TILEKIT_DOT_STEP
#undef TILEKIT_DOT_SUM_ROW
static_assert(kDotMR <= 4 && kDotNR <= 5, "DotTile declares 4 × 5 accumulators");

// One thread's share of a kDot GEMM: rows [r0, r1) × columns [p0, p1) (one
// panel per column). Row and column tails repeat the last real row or column
// (the extra results are dropped), so one DotTile shape serves every tile.
template <typename TA, typename TB, typename TC>
HWY_INLINE void GemmDotRangeT(const GemmPlan& p, size_t r0, size_t r1, size_t p0, size_t p1) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  const size_t steps = p.k / (2 * N), tail = p.k - steps * 2 * N;
  const TA* a = static_cast<const TA*>(p.a);
  HWY_ALIGN float tail_a[kDotMR * 2 * HWY_MAX_BYTES / sizeof(float)];
  HWY_ALIGN float tile[kDotMR * 2 * HWY_MAX_BYTES / sizeof(float)];
  for (size_t i = r0; i < r1; i += kDotMR) {
    const size_t rows = HWY_MIN(kDotMR, r1 - i);
    const TA* row_ptr[kDotMR];
    for (size_t r = 0; r < kDotMR; ++r) row_ptr[r] = a + (i + HWY_MIN(r, rows - 1)) * p.lda;
    if (tail) {
      for (size_t r = 0; r < kDotMR; ++r) {
        for (size_t j = 0; j < 2 * N; ++j) {
          tail_a[r * 2 * N + j] = j < tail ? AsFloat(row_ptr[r][steps * 2 * N + j]) : 0.f;
        }
      }
    }
    for (size_t pb = p0; pb < p1;) {
      const SegmentPlan& seg = segment_of(p, pb);
      const size_t cols = HWY_MIN(HWY_MIN(kDotNR, p1 - pb), seg.panel_begin + seg.panels - pb);
      const TB* col_ptr[kDotNR];
      for (size_t c = 0; c < kDotNR; ++c) {
        col_ptr[c] = reinterpret_cast<const TB*>(p.b + (pb + HWY_MIN(c, cols - 1)) * p.panel_bytes);
      }
      float sums[kDotMR * kDotNR];
      DotTile<TA, TB>(steps, row_ptr, col_ptr, tail ? tail_a : nullptr, sums);
      for (size_t r = 0; r < rows; ++r) {
        for (size_t c = 0; c < 2 * N; ++c) tile[r * 2 * N + c] = c < cols ? sums[r * kDotNR + c] : 0.f;
      }
      StoreTile<TC>(tile, 2 * N, TileOut{&seg, i, pb - seg.panel_begin, cols}, rows);
      pb += cols;
    }
  }
}

// GemmRangeFn for kDot weights (no workspace).
inline void GemmDotRange(const GemmPlan& p, size_t r0, size_t r1, size_t p0, size_t p1, float*) {
  WithElementTypes(p, [&](auto* a, auto* b, auto* c) {
    GemmDotRangeT<Pointee<decltype(a)>, Pointee<decltype(b)>, Pointee<decltype(c)>>(p, r0, r1, p0, p1);
  });
}

}  // namespace HWY_NAMESPACE
}  // namespace detail
}  // namespace tilekit
HWY_AFTER_NAMESPACE();

#endif  // TILEKIT_GEMM_DOT_INL_H_

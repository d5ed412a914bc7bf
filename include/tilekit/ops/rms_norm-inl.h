// Per-target RMSNorm rows (ops/rms_norm.h): the plain norm and the fused
// residual add, for fp32 and bf16 rows.

// The job a call hands the kernel: target-independent, defined once.
#ifndef TILEKIT_OPS_RMS_NORM_JOB_H_
#define TILEKIT_OPS_RMS_NORM_JOB_H_
#include "tilekit/ops/rows.h"
namespace tilekit {
namespace detail {
struct RmsNormJob {
  StridedRows x, y;
  StridedRows residual;  // data null: no residual add
  const float* weight = nullptr;
  size_t heads = 1, dim = 0;
  float eps = 0;
  bool weight_offset = false, round_before_weight = false;
};
}  // namespace detail
}  // namespace tilekit
#endif  // TILEKIT_OPS_RMS_NORM_JOB_H_

#if defined(TILEKIT_OPS_RMS_NORM_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TILEKIT_OPS_RMS_NORM_INL_H_
#undef TILEKIT_OPS_RMS_NORM_INL_H_
#else
#define TILEKIT_OPS_RMS_NORM_INL_H_
#endif

#include <hwy/highway.h>

#include <cmath>

#include "tilekit/base/bf16.h"
#include "tilekit/epilogue/epilogue-inl.h"  // LoadRowF32, StoreRow, LoadPartial

HWY_BEFORE_NAMESPACE();
namespace tilekit {
namespace detail {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// v rounded to bf16 and widened back: the value a bf16 store would keep.
template <class DF>
HWY_INLINE hn::Vec<DF> RoundTripBf16(DF df, hn::Vec<DF> v) {
  return hn::BitCast(df, hn::ShiftLeft<16>(RoundToBf16Bits(df, v)));
}
template <typename T, class DF>
HWY_INLINE hn::Vec<DF> AsStored(DF df, hn::Vec<DF> v) {
  if constexpr (kIsBf16<T>) {
    return RoundTripBf16(df, v);
  } else {
    return v;
  }
}

// Σ v(i)² over a row of n elements, v(i, m) giving the fp32 vector of the m
// (<= Lanes) elements at i. Four accumulators: a row of 4096 fp32 is 16 KiB,
// streamed at one vector load per FMA; four independent chains hide the FMA
// latency (4 cycles) so the loop runs at load speed. Fixed order per path.
template <class DF, class RowVec>
HWY_INLINE float SumOfSquares(DF df, size_t n, const RowVec& v) {
  const size_t N = hn::Lanes(df);
  auto a0 = hn::Zero(df), a1 = hn::Zero(df), a2 = hn::Zero(df), a3 = hn::Zero(df);
  size_t i = 0;
  for (; i + 4 * N <= n; i += 4 * N) {
    const auto v0 = v(i, N), v1 = v(i + N, N), v2 = v(i + 2 * N, N), v3 = v(i + 3 * N, N);
    a0 = hn::MulAdd(v0, v0, a0);
    a1 = hn::MulAdd(v1, v1, a1);
    a2 = hn::MulAdd(v2, v2, a2);
    a3 = hn::MulAdd(v3, v3, a3);
  }
  for (; i < n; i += N) {
    const auto vi = v(i, HWY_MIN(N, n - i));  // partial loads are zero-filled
    a0 = hn::MulAdd(vi, vi, a0);
  }
  return hn::GetLane(hn::SumOfLanes(df, hn::Add(hn::Add(a0, a1), hn::Add(a2, a3))));
}

// y = (x·r) · w over one row, x read from `src` (the input, or the stored h).
template <class DF, typename X, typename Y>
HWY_INLINE void ScaleRow(DF df, const X* src, float r, const RmsNormJob& job, Y* y) {
  const size_t N = hn::Lanes(df);
  const auto vr = hn::Set(df, r);
  const auto one = hn::Set(df, 1.f);
  for (size_t i = 0; i < job.dim; i += N) {
    const size_t m = HWY_MIN(N, job.dim - i);
    auto nrm = hn::Mul(LoadRowF32(df, src + i, m), vr);
    if (job.round_before_weight) nrm = AsStored<X>(df, nrm);
    auto w = LoadPartial(df, job.weight + i, m);
    if (job.weight_offset) w = hn::Add(w, one);
    StoreRow(df, hn::Mul(nrm, w), y + i, m);
  }
}

HWY_INLINE float InverseRms(float sum_of_squares, const RmsNormJob& job) {
  return 1.0f / std::sqrt(sum_of_squares / static_cast<float>(job.dim) + job.eps);
}

template <typename X, typename Y>
HWY_NOINLINE void RmsNormRowsT(const RmsNormJob& job, size_t begin, size_t end) {
  const hn::ScalableTag<float> df;
  for (size_t row = begin; row < end; ++row) {
    const size_t t = row / job.heads, h = row % job.heads;
    const X* x = job.x.row<const X>(t, h);
    Y* y = job.y.row<Y>(t, h);
    if (!job.residual.data) {
      const float ss = SumOfSquares(df, job.dim, [&](size_t i, size_t m) HWY_ATTR { return LoadRowF32(df, x + i, m); });
      ScaleRow(df, x, InverseRms(ss, job), job, y);
      continue;
    }
    // h = x + residual, stored to the residual as it is summed; the second
    // pass reads h back from L1/L2 (a row is at most tens of KiB).
    X* res = job.residual.row<X>(t, h);
    const float ss = SumOfSquares(df, job.dim, [&](size_t i, size_t m) HWY_ATTR {
      const auto sum = AsStored<X>(df, hn::Add(LoadRowF32(df, x + i, m), LoadRowF32(df, res + i, m)));
      StoreRow(df, sum, res + i, m);
      return sum;
    });
    ScaleRow(df, static_cast<const X*>(res), InverseRms(ss, job), job, y);
  }
}

// Rows [begin, end) of the job (row = token · heads + head).
inline void RmsNormRows(const RmsNormJob& job, size_t begin, size_t end) {
  if (job.x.bf16) {
    if (job.y.bf16) return RmsNormRowsT<bf16, bf16>(job, begin, end);
    return RmsNormRowsT<bf16, float>(job, begin, end);
  }
  if (job.y.bf16) return RmsNormRowsT<float, bf16>(job, begin, end);
  return RmsNormRowsT<float, float>(job, begin, end);
}

}  // namespace HWY_NAMESPACE
}  // namespace detail
}  // namespace tilekit
HWY_AFTER_NAMESPACE();

#endif  // TILEKIT_OPS_RMS_NORM_INL_H_

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
  bool native_bf16 = false;  // the path converts to bf16 in one instruction
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
#include "tilekit/simd/bf16-inl.h"
#include "tilekit/simd/fold-inl.h"
#include "tilekit/simd/load_store-inl.h"

HWY_BEFORE_NAMESPACE();
namespace tilekit {
namespace detail {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Σ v(i)² over a row of n elements, v(i, m) giving the fp32 vector of the m
// elements at i (partial loads are zero-filled, adding nothing).
template <class DF, class RowVec>
HWY_INLINE float SumOfSquares(DF df, size_t n, const RowVec& v) {
  const auto sum = FoldRow(
      df, n, hn::Zero(df),
      [&](hn::Vec<DF> acc, size_t i, size_t m) HWY_ATTR {
        const auto vi = v(i, m);
        return hn::MulAdd(vi, vi, acc);
      },
      [](hn::Vec<DF> a, hn::Vec<DF> b) HWY_ATTR { return hn::Add(a, b); });
  return hn::GetLane(hn::SumOfLanes(df, sum));
}

// y = (x·r) · w over one row, x read from `src` (the input, or the stored h).
// The options are template flags so the loop carries no per-vector test;
// full vectors run apart from the tail.
template <bool kOffset, bool kRoundBefore, bool kNativeBf16, class DF, typename X, typename Y>
HWY_INLINE void NormalizeRow(DF df, const X* src, float r, const float* HWY_RESTRICT weight, size_t n, Y* y) {
  const size_t N = hn::Lanes(df);
  const auto vr = hn::Set(df, r);
  const auto one = hn::Set(df, 1.f);
  const auto step = [&](size_t i, size_t m) HWY_ATTR {
    auto nrm = hn::Mul(LoadRowF32(df, src + i, m), vr);
    if constexpr (kRoundBefore) nrm = AsStored<X, kNativeBf16>(df, nrm);
    auto w = LoadPartial(df, weight + i, m);
    if constexpr (kOffset) w = hn::Add(w, one);
    StoreRow<kNativeBf16>(df, hn::Mul(nrm, w), y + i, m);
  };
  size_t i = 0;
  for (; i + N <= n; i += N) step(i, N);
  if (i < n) step(i, n - i);
}

template <bool kNativeBf16, class DF, typename X, typename Y>
HWY_INLINE void NormalizeRow(DF df, const X* src, float r, const RmsNormJob& job, Y* y) {
  const bool round_before = kIsBf16<X> && job.round_before_weight;
  if (job.weight_offset) {
    if (round_before) return NormalizeRow<true, true, kNativeBf16>(df, src, r, job.weight, job.dim, y);
    return NormalizeRow<true, false, kNativeBf16>(df, src, r, job.weight, job.dim, y);
  }
  if (round_before) return NormalizeRow<false, true, kNativeBf16>(df, src, r, job.weight, job.dim, y);
  NormalizeRow<false, false, kNativeBf16>(df, src, r, job.weight, job.dim, y);
}

HWY_INLINE float InverseRms(float sum_of_squares, const RmsNormJob& job) {
  return 1.0f / std::sqrt(sum_of_squares / static_cast<float>(job.dim) + job.eps);
}

template <typename X, typename Y, bool kNativeBf16>
HWY_NOINLINE void RmsNormRowsT(const RmsNormJob& job, size_t begin, size_t end) {
  const hn::ScalableTag<float> df;
  for (size_t row = begin; row < end; ++row) {
    const size_t t = row / job.heads, h = row % job.heads;
    const X* x = job.x.row<const X>(t, h);
    Y* y = job.y.row<Y>(t, h);
    if (!job.residual.data) {
      const float ss = SumOfSquares(df, job.dim, [&](size_t i, size_t m) HWY_ATTR { return LoadRowF32(df, x + i, m); });
      NormalizeRow<kNativeBf16>(df, x, InverseRms(ss, job), job, y);
      continue;
    }
    // h = x + residual, stored to the residual as it is summed; the second
    // pass reads h back from L1/L2 (a row is at most tens of KiB).
    X* res = job.residual.row<X>(t, h);
    const float ss = SumOfSquares(df, job.dim, [&](size_t i, size_t m) HWY_ATTR {
      const auto sum = hn::Add(LoadRowF32(df, x + i, m), LoadRowF32(df, res + i, m));
      if constexpr (kIsBf16<X>) {
        // Rounded once: the bits stored are the value summed (rounding the
        // value, then storing it, rounded it twice).
        const auto bits = ToBf16Bits<kNativeBf16>(df, sum);
        StorePartial(hn::Rebind<uint16_t, decltype(df)>(), bits, reinterpret_cast<uint16_t*>(res + i), m);
        return Bf16BitsToF32(df, bits);
      } else {
        StoreRow(df, sum, res + i, m);
        return sum;
      }
    });
    NormalizeRow<kNativeBf16>(df, static_cast<const X*>(res), InverseRms(ss, job), job, y);
  }
}

// Rows [begin, end) of the job (row = token · heads + head). Only the kernels
// that store bf16 have a build with the conversion instruction.
inline void RmsNormRows(const RmsNormJob& job, size_t begin, size_t end) {
  if (job.x.bf16) {
    if (job.y.bf16) {
      if (job.native_bf16) return RmsNormRowsT<bf16, bf16, true>(job, begin, end);
      return RmsNormRowsT<bf16, bf16, false>(job, begin, end);
    }
    // bf16 x, fp32 y: bf16 is still stored to the residual, or rounded to
    // before the weight (HF's order).
    if (job.native_bf16 && (job.residual.data || job.round_before_weight)) {
      return RmsNormRowsT<bf16, float, true>(job, begin, end);
    }
    return RmsNormRowsT<bf16, float, false>(job, begin, end);
  }
  if (job.y.bf16) {
    if (job.native_bf16) return RmsNormRowsT<float, bf16, true>(job, begin, end);
    return RmsNormRowsT<float, bf16, false>(job, begin, end);
  }
  return RmsNormRowsT<float, float, false>(job, begin, end);
}

}  // namespace HWY_NAMESPACE
}  // namespace detail
}  // namespace tilekit
HWY_AFTER_NAMESPACE();

#endif  // TILEKIT_OPS_RMS_NORM_INL_H_

// Per-target row softmax (ops/softmax.h). Its pieces (RowMax, ExpSum, MulRow)
// are the row steps of an attention's softmax too.

#ifndef TILEKIT_OPS_SOFTMAX_JOB_H_
#define TILEKIT_OPS_SOFTMAX_JOB_H_
#include <cstddef>
namespace tilekit {
namespace detail {
struct SoftmaxJob {
  const float* x = nullptr;
  const float* mask = nullptr;  // null: none
  float* y = nullptr;
  size_t n = 0, x_ld = 0, mask_ld = 0, y_ld = 0;
  float scale = 1.f;
};
}  // namespace detail
}  // namespace tilekit
#endif  // TILEKIT_OPS_SOFTMAX_JOB_H_

#if defined(TILEKIT_OPS_SOFTMAX_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TILEKIT_OPS_SOFTMAX_INL_H_
#undef TILEKIT_OPS_SOFTMAX_INL_H_
#else
#define TILEKIT_OPS_SOFTMAX_INL_H_
#endif

#include <hwy/contrib/math/math-inl.h>
#include <hwy/highway.h>

#include <cmath>
#include <limits>

#include "tilekit/simd/exp-inl.h"
#include "tilekit/simd/fold-inl.h"
#include "tilekit/simd/load_store-inl.h"

HWY_BEFORE_NAMESPACE();
namespace tilekit {
namespace detail {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// x·scale (+ mask) for the m elements at i.
template <class DF>
HWY_INLINE hn::Vec<DF> ScaledLogits(DF df, const float* x, const float* mask, hn::Vec<DF> scale, size_t i, size_t m) {
  const auto v = LoadPartial(df, x + i, m);
  return mask ? hn::MulAdd(v, scale, LoadPartial(df, mask + i, m)) : hn::Mul(v, scale);
}

// max of x·scale (+ mask) over n elements. A NaN may or may not win,
// depending on the target's Max; ExpSum propagates it either way.
template <class DF>
HWY_INLINE float RowMax(DF df, const float* x, const float* mask, float scale, size_t n) {
  const auto vs = hn::Set(df, scale);
  const auto neg_inf = hn::Set(df, -std::numeric_limits<float>::infinity());
  const auto max = FoldRow(
      df, n, neg_inf,
      [&](hn::Vec<DF> acc, size_t i, size_t m) HWY_ATTR {
        const auto a = ScaledLogits(df, x, mask, vs, i, m);
        return hn::Max(acc, m == hn::Lanes(df) ? a : hn::IfThenElse(hn::FirstN(df, m), a, neg_inf));
      },
      [](hn::Vec<DF> a, hn::Vec<DF> b) HWY_ATTR { return hn::Max(a, b); });
  // Not hn::MaxOfLanes: on EMU128 (the scalar path in clang builds) it starts
  // from LowestValue, -FLT_MAX, so a fully masked row's max came out finite,
  // missed the -Inf test and gave exp(-Inf)/0 = NaN (ops_fuzz).
  HWY_ALIGN float lanes[hn::MaxLanes(df)];
  hn::Store(max, df, lanes);
  float m = -std::numeric_limits<float>::infinity();
  for (size_t i = 0; i < hn::Lanes(df); ++i) m = lanes[i] > m ? lanes[i] : m;
  return m;
}

// y = exp(x·scale (+ mask) - max) over n elements; returns their sum. A NaN
// argument (a NaN input, or +Inf - +Inf) is kept as NaN (ExpKeepNaN), so the
// sum, and then the row, is NaN. max must not be -Inf (a fully masked row: the
// caller writes zeros).
template <class DF>
HWY_INLINE float ExpSum(DF df, const float* x, const float* mask, float scale, float max, float* y, size_t n) {
  const auto vs = hn::Set(df, scale), vmax = hn::Set(df, max);
  const auto sum = FoldRow(
      df, n, hn::Zero(df),
      [&](hn::Vec<DF> acc, size_t i, size_t m) HWY_ATTR {
        const auto d = hn::Sub(ScaledLogits(df, x, mask, vs, i, m), vmax);
        auto e = ExpKeepNaN(df, d);
        if (m != hn::Lanes(df)) e = hn::IfThenElseZero(hn::FirstN(df, m), e);
        StorePartial(df, e, y + i, m);
        return hn::Add(acc, e);
      },
      [](hn::Vec<DF> a, hn::Vec<DF> b) HWY_ATTR { return hn::Add(a, b); });
  return hn::GetLane(hn::SumOfLanes(df, sum));
}

// y *= factor over n elements.
template <class DF>
HWY_INLINE void MulRow(DF df, float* y, float factor, size_t n) {
  const size_t N = hn::Lanes(df);
  const auto vf = hn::Set(df, factor);
  for (size_t i = 0; i < n; i += N) {
    const size_t m = HWY_MIN(N, n - i);
    StorePartial(df, hn::Mul(LoadPartial(df, y + i, m), vf), y + i, m);
  }
}

// Rows [begin, end) of the job.
inline void SoftmaxRows(const SoftmaxJob& job, size_t begin, size_t end) {
  const hn::ScalableTag<float> df;
  for (size_t r = begin; r < end; ++r) {
    const float* x = job.x + r * job.x_ld;
    const float* mask = job.mask ? job.mask + r * job.mask_ld : nullptr;
    float* y = job.y + r * job.y_ld;
    const float max = RowMax(df, x, mask, job.scale, job.n);
    if (max == -std::numeric_limits<float>::infinity()) {
      // Fully masked, unless a NaN lost to -Inf in the target's Max.
      bool nan = false;
      for (size_t i = 0; i < job.n; ++i) nan |= std::isnan(x[i] * job.scale + (mask ? mask[i] : 0.f));
      for (size_t i = 0; i < job.n; ++i) y[i] = nan ? std::numeric_limits<float>::quiet_NaN() : 0.f;
      continue;
    }
    const float sum = ExpSum(df, x, mask, job.scale, max, y, job.n);
    MulRow(df, y, 1.0f / sum, job.n);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace detail
}  // namespace tilekit
HWY_AFTER_NAMESPACE();

#endif  // TILEKIT_OPS_SOFTMAX_INL_H_

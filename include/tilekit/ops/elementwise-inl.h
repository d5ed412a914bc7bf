// Per-target element-wise rows (ops/elementwise.h).

// The job a call hands the kernel: target-independent, defined once.
#ifndef TILEKIT_OPS_ELEMENTWISE_JOB_H_
#define TILEKIT_OPS_ELEMENTWISE_JOB_H_
#include <cstddef>
namespace tilekit {
namespace detail {
enum class ElementwiseOp { kAdd, kMul, kScale, kSoftcap };
struct ElementwiseJob {
  ElementwiseOp op = ElementwiseOp::kAdd;
  const float* a = nullptr;
  const float* b = nullptr;  // add, mul
  float* y = nullptr;
  size_t n = 0, a_ld = 0, b_ld = 0, y_ld = 0;
  float value = 0.f;  // scale: s; softcap: c
};
}  // namespace detail
}  // namespace tilekit
#endif  // TILEKIT_OPS_ELEMENTWISE_JOB_H_

#if defined(TILEKIT_OPS_ELEMENTWISE_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TILEKIT_OPS_ELEMENTWISE_INL_H_
#undef TILEKIT_OPS_ELEMENTWISE_INL_H_
#else
#define TILEKIT_OPS_ELEMENTWISE_INL_H_
#endif

#include <hwy/contrib/math/math-inl.h>
#include <hwy/highway.h>

#include "tilekit/simd/load_store-inl.h"
#include "tilekit/simd/tanh-inl.h"

HWY_BEFORE_NAMESPACE();
namespace tilekit {
namespace detail {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// One row through `f` (the m elements at i → their results): full vectors,
// then the tail with partial loads and stores, so nothing past n is touched.
template <class DF, class F>
HWY_INLINE void MapRow(DF df, size_t n, float* y, const F& f) {
  const size_t N = hn::Lanes(df);
  size_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(f(i, N), df, y + i);
  if (i < n) StorePartial(df, f(i, n - i), y + i, n - i);
}

template <ElementwiseOp kOp>
HWY_NOINLINE void ElementwiseRowsT(const ElementwiseJob& job, size_t begin, size_t end) {
  const hn::ScalableTag<float> df;
  const auto value = hn::Set(df, job.value);
  for (size_t r = begin; r < end; ++r) {
    const float* a = job.a + r * job.a_ld;
    const float* b = job.b ? job.b + r * job.b_ld : nullptr;
    MapRow(df, job.n, job.y + r * job.y_ld, [&](size_t i, size_t m) HWY_ATTR {
      const auto x = LoadPartial(df, a + i, m);
      if constexpr (kOp == ElementwiseOp::kAdd) return hn::Add(x, LoadPartial(df, b + i, m));
      if constexpr (kOp == ElementwiseOp::kMul) return hn::Mul(x, LoadPartial(df, b + i, m));
      if constexpr (kOp == ElementwiseOp::kScale) return hn::Mul(x, value);
      if constexpr (kOp == ElementwiseOp::kSoftcap) return Softcap(df, x, value);
    });
  }
}

// Rows [begin, end) of the job.
inline void ElementwiseRows(const ElementwiseJob& job, size_t begin, size_t end) {
  switch (job.op) {
    case ElementwiseOp::kAdd: return ElementwiseRowsT<ElementwiseOp::kAdd>(job, begin, end);
    case ElementwiseOp::kMul: return ElementwiseRowsT<ElementwiseOp::kMul>(job, begin, end);
    case ElementwiseOp::kScale: return ElementwiseRowsT<ElementwiseOp::kScale>(job, begin, end);
    case ElementwiseOp::kSoftcap: return ElementwiseRowsT<ElementwiseOp::kSoftcap>(job, begin, end);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace detail
}  // namespace tilekit
HWY_AFTER_NAMESPACE();

#endif  // TILEKIT_OPS_ELEMENTWISE_INL_H_

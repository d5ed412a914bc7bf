// Per-target reduction of a row into several independent accumulators.
#if defined(TILEKIT_SIMD_FOLD_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TILEKIT_SIMD_FOLD_INL_H_
#undef TILEKIT_SIMD_FOLD_INL_H_
#else
#define TILEKIT_SIMD_FOLD_INL_H_
#endif

#include <hwy/highway.h>

HWY_BEFORE_NAMESPACE();
namespace tilekit {
namespace detail {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Folds acc = step(acc, i, m) over a row of n elements, m = Lanes(df) except
// for a last partial vector (the step must keep its unused lanes neutral),
// into four accumulators merged at the end with `merge`. Four independent
// chains hide the latency of the step's last operation (4 cycles for an FMA or
// an add on current cores), so a row streams at load speed. The order is fixed
// for a given n and path: results do not depend on how rows are split.
template <class DF, class Step, class Merge>
HWY_INLINE hn::Vec<DF> FoldRow(DF df, size_t n, hn::Vec<DF> init, const Step& step, const Merge& merge) {
  const size_t N = hn::Lanes(df);
  auto a0 = init, a1 = init, a2 = init, a3 = init;
  size_t i = 0;
  for (; i + 4 * N <= n; i += 4 * N) {
    a0 = step(a0, i, N);
    a1 = step(a1, i + N, N);
    a2 = step(a2, i + 2 * N, N);
    a3 = step(a3, i + 3 * N, N);
  }
  for (; i < n; i += N) a0 = step(a0, i, HWY_MIN(N, n - i));
  return merge(merge(a0, a1), merge(a2, a3));
}

}  // namespace HWY_NAMESPACE
}  // namespace detail
}  // namespace tilekit
HWY_AFTER_NAMESPACE();

#endif  // TILEKIT_SIMD_FOLD_INL_H_

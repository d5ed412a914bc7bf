// Per-target tanh for any input, and the softcap built on it: the epilogue's
// GELU (tanh form), the softcap op and attention's logit softcap share them.
#if defined(TILEKIT_SIMD_TANH_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TILEKIT_SIMD_TANH_INL_H_
#undef TILEKIT_SIMD_TANH_INL_H_
#else
#define TILEKIT_SIMD_TANH_INL_H_
#endif

#include <hwy/contrib/math/math-inl.h>
#include <hwy/highway.h>

HWY_BEFORE_NAMESPACE();
namespace tilekit {
namespace detail {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// tanh(x): ±1 for ±Inf, NaN for NaN. Highway's Tanh goes through Exp's
// float-to-int conversion, undefined for ±Inf and NaN on the emulated targets
// (EMU128, the scalar path; simd/exp-inl.h), so x is capped at ±20 (tanh is
// ±1 in fp32 from ~9 on) and a NaN kept apart.
template <class DF, class V>
HWY_INLINE V TanhKeepNaN(DF df, V x) {
  const auto nan = hn::IsNaN(x);
  const V limit = hn::Set(df, 20.f);
  const V capped = hn::Min(hn::Max(hn::IfThenZeroElse(nan, x), hn::Neg(limit)), limit);
  return hn::IfThenElse(nan, x, hn::Tanh(df, capped));
}

// c·tanh(x / c): ±Inf gives ±c, NaN stays NaN.
template <class DF, class V>
HWY_INLINE V Softcap(DF df, V x, V cap) {
  return hn::Mul(cap, TanhKeepNaN(df, hn::Div(x, cap)));
}

}  // namespace HWY_NAMESPACE
}  // namespace detail
}  // namespace tilekit
HWY_AFTER_NAMESPACE();

#endif  // TILEKIT_SIMD_TANH_INL_H_

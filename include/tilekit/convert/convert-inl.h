// Per-target fp32 <-> bf16 array conversion. Compiled once per Highway target.
#if defined(TILEKIT_CONVERT_CONVERT_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TILEKIT_CONVERT_CONVERT_INL_H_
#undef TILEKIT_CONVERT_CONVERT_INL_H_
#else
#define TILEKIT_CONVERT_CONVERT_INL_H_
#endif

#include <hwy/highway.h>

#include "tilekit/base/bf16.h"
#include "tilekit/simd/bf16-inl.h"

HWY_BEFORE_NAMESPACE();
namespace tilekit {
namespace detail {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

template <bool kNativeBf16>
HWY_NOINLINE void ConvertF32ToBf16T(const float* HWY_RESTRICT in, uint16_t* HWY_RESTRICT out, size_t n) {
  const hn::ScalableTag<float> df;
  const hn::Rebind<uint16_t, decltype(df)> du16;
  const size_t lanes = hn::Lanes(df);
  size_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    hn::StoreU(ToBf16Bits<kNativeBf16>(df, hn::LoadU(df, in + i)), du16, out + i);
  }
  for (; i < n; ++i) out[i] = f32_to_bf16(in[i]).bits;  // fewer than one vector
}

// native_bf16: the path has the conversion instruction (cpu::isa_converts_bf16).
inline void ConvertF32ToBf16(const float* HWY_RESTRICT in, uint16_t* HWY_RESTRICT out, size_t n, bool native_bf16) {
  if (native_bf16) return ConvertF32ToBf16T<true>(in, out, n);
  ConvertF32ToBf16T<false>(in, out, n);
}

inline void ConvertBf16ToF32(const uint16_t* HWY_RESTRICT in, float* HWY_RESTRICT out, size_t n) {
  const hn::ScalableTag<float> df;
  const hn::RebindToUnsigned<decltype(df)> du32;
  const hn::Rebind<uint16_t, decltype(df)> du16;
  const size_t lanes = hn::Lanes(df);
  size_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    const auto wide = hn::PromoteTo(du32, hn::LoadU(du16, in + i));
    hn::StoreU(hn::BitCast(df, hn::ShiftLeft<16>(wide)), df, out + i);
  }
  for (; i < n; ++i) out[i] = bf16_to_f32(bf16{in[i]});
}

}  // namespace HWY_NAMESPACE
}  // namespace detail
}  // namespace tilekit
HWY_AFTER_NAMESPACE();

#endif  // TILEKIT_CONVERT_CONVERT_INL_H_

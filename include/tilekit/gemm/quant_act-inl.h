// Per-target: activations quantized to int8 per row and sub-group, the rule of
// gemm/quant_act.h, for the integer dot-product kernels of every architecture
// (quant_vnni.h, quant_sdot.h). One pass for a sub-group's max |a|, one for
// q = round(a / scale): division and rounding to nearest even are exact IEEE
// operations, so every target writes the same bytes.
#if defined(TILEKIT_GEMM_QUANT_ACT_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TILEKIT_GEMM_QUANT_ACT_INL_H_
#undef TILEKIT_GEMM_QUANT_ACT_INL_H_
#else
#define TILEKIT_GEMM_QUANT_ACT_INL_H_
#endif

#include <hwy/highway.h>

#include <cstddef>
#include <cstdint>
#include <limits>

#include "tilekit/base/bf16.h"
#include "tilekit/gemm/quant_act.h"
#include "tilekit/simd/load_store-inl.h"

HWY_BEFORE_NAMESPACE();
namespace tilekit {
namespace detail {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

template <typename TA>
HWY_INLINE void QuantizeActRows(const TA* HWY_RESTRICT a, size_t lda, size_t rows, size_t k, const Int8Rows& out) {
  const hn::ScalableTag<float> df;
  const hn::RebindToSigned<decltype(df)> di;
  const hn::Rebind<int8_t, decltype(df)> d8;
  const size_t N = hn::Lanes(df), sg = out.sg;
  const auto lim = hn::Set(df, 127.f), neg_lim = hn::Set(df, -127.f);
  for (size_t r = 0; r < rows; ++r) {
    const TA* row = a + r * lda;
    int8_t* q = out.q + r * out.q_stride;
    for (size_t j = 0; j < out.subgroups; ++j) {
      const size_t k0 = j * sg, real = k0 < k ? HWY_MIN(sg, k - k0) : 0;
      auto amax = hn::Zero(df);
      bool finite = true;
      for (size_t i = 0; i < real; i += N) {
        const auto v = LoadRowF32(df, row + k0 + i, HWY_MIN(N, real - i));
        finite = finite && hn::AllTrue(df, hn::IsFinite(v));
        amax = hn::Max(amax, hn::Abs(v));
      }
      const float s = finite ? hn::GetLane(hn::MaxOfLanes(df, amax)) / 127.f : std::numeric_limits<float>::quiet_NaN();
      const auto sv = hn::Set(df, s);
      auto sum = hn::Zero(di);
      for (size_t i = 0; i < sg; i += N) {
        const size_t n = HWY_MIN(N, sg - i);
        auto qi = hn::Zero(di);
        if (s != 0.f && finite && i < real) {
          const auto v = hn::Div(LoadRowF32(df, row + k0 + i, HWY_MIN(n, real - i)), sv);
          qi = hn::ConvertTo(di, hn::Round(hn::Min(hn::Max(v, neg_lim), lim)));
        }
        sum = hn::Add(sum, qi);
        StorePartial(d8, hn::DemoteTo(d8, qi), q + k0 + i, n);
      }
      out.scale[r * out.meta_stride + j] = s;
      if (out.sum) out.sum[r * out.meta_stride + j] = hn::GetLane(hn::SumOfLanes(di, sum));
    }
  }
}

// Rows [0, rows) of A (fp32 or bf16, stride lda, K values) into `out`.
inline void QuantizeActInt8(const void* a, bool a_bf16, size_t lda, size_t rows, size_t k, const Int8Rows& out) {
  if (a_bf16) return QuantizeActRows(static_cast<const bf16*>(a), lda, rows, k, out);
  QuantizeActRows(static_cast<const float*>(a), lda, rows, k, out);
}

}  // namespace HWY_NAMESPACE
}  // namespace detail
}  // namespace tilekit
HWY_AFTER_NAMESPACE();

#endif  // TILEKIT_GEMM_QUANT_ACT_INL_H_

// Per-target store of one finished attention row: the kernel's (or the
// merge's) unnormalised accumulator divided by the row's sum, written as fp32
// or bf16. The driver (attention-impl.h) calls it per row, with the row's LSE
// computed beside it; on the paths with BF16 the bf16 rounding is one
// instruction (ToBf16Bits<true>), with the bits of the portable rounding.
#if defined(TILEKIT_ATTENTION_STORE_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TILEKIT_ATTENTION_STORE_INL_H_
#undef TILEKIT_ATTENTION_STORE_INL_H_
#else
#define TILEKIT_ATTENTION_STORE_INL_H_
#endif

#include <hwy/highway.h>

#include "tilekit/base/bf16.h"
#include "tilekit/simd/load_store-inl.h"

HWY_BEFORE_NAMESPACE();
namespace tilekit {
namespace detail {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// out[c] = acc[c] · (1 / l), or 0 where nothing was attended (l = 0: acc is
// not read). One multiply by the reciprocal, as the scalar code before it did
// (same bits in fp32, so in bf16 too).
template <typename TO>
HWY_INLINE void AttnStoreRowT(const float* HWY_RESTRICT acc, float l, size_t dv, TO* HWY_RESTRICT out,
                              bool native_bf16) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  const bool empty = l == 0.f;
  const auto inv = hn::Set(df, empty ? 0.f : 1.f / l);
  for (size_t c = 0; c < dv; c += N) {
    const size_t n = HWY_MIN(N, dv - c);
    const auto x = empty ? hn::Zero(df) : hn::Mul(LoadPartial(df, acc + c, n), inv);
    StoreRow(df, x, out + c, n, native_bf16);
  }
}

// The exported row store: `out` is fp32 or bf16 (out_bf16); native_bf16: the
// path rounds to bf16 in one instruction (cpu::isa_converts_bf16).
inline void AttnStoreRow(const float* HWY_RESTRICT acc, float l, size_t dv, void* HWY_RESTRICT out, bool out_bf16,
                         bool native_bf16) {
  if (out_bf16) return AttnStoreRowT(acc, l, dv, static_cast<bf16*>(out), native_bf16);
  AttnStoreRowT(acc, l, dv, static_cast<float*>(out), false);
}

}  // namespace HWY_NAMESPACE
}  // namespace detail
}  // namespace tilekit
HWY_AFTER_NAMESPACE();

#endif  // TILEKIT_ATTENTION_STORE_INL_H_

// Per-target loads and stores of one row segment of up to a vector, fp32 or
// bf16 in memory and fp32 in registers: the edges of every kernel's rows.
// Highway 1.0.3's MaskedLoad reads the whole vector on some targets (NEON,
// scalar), which could run past the end of a user buffer, so a partial vector
// goes through a stack copy: only at the edges, never in an inner loop.
#if defined(TILEKIT_SIMD_LOAD_STORE_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TILEKIT_SIMD_LOAD_STORE_INL_H_
#undef TILEKIT_SIMD_LOAD_STORE_INL_H_
#else
#define TILEKIT_SIMD_LOAD_STORE_INL_H_
#endif

#include <hwy/highway.h>

#include <cstring>

#include "tilekit/base/bf16.h"
#include "tilekit/simd/bf16-inl.h"

HWY_BEFORE_NAMESPACE();
namespace tilekit {
namespace detail {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

template <class D, typename T = hn::TFromD<D>>
HWY_INLINE hn::Vec<D> LoadPartial(D d, const T* p, size_t n) {
  if (n == hn::Lanes(d)) return hn::LoadU(d, p);
  HWY_ALIGN T buf[HWY_MAX_BYTES / sizeof(T)] = {};
  std::memcpy(buf, p, n * sizeof(T));
  return hn::Load(d, buf);
}
template <class D, typename T = hn::TFromD<D>>
HWY_INLINE void StorePartial(D d, hn::Vec<D> v, T* p, size_t n) {
  if (n == hn::Lanes(d)) return hn::StoreU(v, d, p);
  HWY_ALIGN T buf[HWY_MAX_BYTES / sizeof(T)];
  hn::Store(v, d, buf);
  std::memcpy(p, buf, n * sizeof(T));
}

// Reads n lanes of an fp32 or bf16 row as fp32 (bf16 widens exactly: its bits
// become the top half of the fp32 lane).
template <class DF>
HWY_INLINE hn::Vec<DF> LoadRowF32(DF df, const float* p, size_t n) { return LoadPartial(df, p, n); }
template <class DF>
HWY_INLINE hn::Vec<DF> LoadRowF32(DF df, const bf16* p, size_t n) {
  const hn::Rebind<uint16_t, DF> du16;
  const auto bits = LoadPartial(du16, reinterpret_cast<const uint16_t*>(p), n);
  return hn::BitCast(df, hn::ShiftLeft<16>(hn::PromoteTo(hn::RebindToUnsigned<DF>(), bits)));
}
// Stores n lanes to an fp32 or bf16 row (bf16 rounded to nearest even; with
// kNativeBf16 by the CPU's conversion instruction, see ToBf16Bits).
template <bool kNativeBf16 = false, class DF>
HWY_INLINE void StoreRow(DF df, hn::Vec<DF> v, float* p, size_t n) { StorePartial(df, v, p, n); }
template <bool kNativeBf16 = false, class DF>
HWY_INLINE void StoreRow(DF df, hn::Vec<DF> v, bf16* p, size_t n) {
  StorePartial(hn::Rebind<uint16_t, DF>(), ToBf16Bits<kNativeBf16>(df, v), reinterpret_cast<uint16_t*>(p), n);
}
// The same with the instruction chosen at run time (native_bf16: the path has
// it; see ToBf16Bits). fp32 rows ignore the flag.
template <class DF>
HWY_INLINE void StoreRow(DF df, hn::Vec<DF> v, float* p, size_t n, bool /*native_bf16*/) {
  StorePartial(df, v, p, n);
}
template <class DF>
HWY_INLINE void StoreRow(DF df, hn::Vec<DF> v, bf16* p, size_t n, bool native_bf16) {
  StorePartial(hn::Rebind<uint16_t, DF>(), ToBf16Bits(df, v, native_bf16), reinterpret_cast<uint16_t*>(p), n);
}

}  // namespace HWY_NAMESPACE
}  // namespace detail
}  // namespace tilekit
HWY_AFTER_NAMESPACE();

#endif  // TILEKIT_SIMD_LOAD_STORE_INL_H_

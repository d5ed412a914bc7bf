// Per-target pieces of pack_weights (gemm/packed_weights-impl.h). Compiled
// once per Highway target.
#if defined(TILEKIT_GEMM_PACK_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TILEKIT_GEMM_PACK_INL_H_
#undef TILEKIT_GEMM_PACK_INL_H_
#else
#define TILEKIT_GEMM_PACK_INL_H_
#endif

#include <hwy/highway.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

HWY_BEFORE_NAMESPACE();
namespace tilekit {
namespace detail {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Copies `bytes` (a multiple of 4) with non-temporal stores where `dst` is
// vector-aligned: packed panels are written once and read by a later GEMM, and
// writing around the cache spares each line its read for ownership. Packing
// an fp32 [K][N] source (rows copied whole) went from 8-10 to 21-23 GB/s on
// one AVX-512 thread, 0.82-0.88 of a memcpy of the same bytes
// (docs/performance-history.md, "Streaming the packed rows"). The caller
// issues hwy::FlushStream() before the bytes are published to another
// thread. Targets without non-temporal stores (NEON) store normally.
inline void StreamCopy(const void* HWY_RESTRICT src, void* HWY_RESTRICT dst, size_t bytes) {
  const hn::ScalableTag<uint32_t> d;
  const size_t lanes = hn::Lanes(d), n = bytes / 4;
  const uint32_t* in = static_cast<const uint32_t*>(src);
  uint32_t* out = static_cast<uint32_t*>(dst);
  size_t i = 0;
  if (reinterpret_cast<uintptr_t>(out) % (lanes * 4) == 0) {
    for (; i + lanes <= n; i += lanes) hn::Stream(hn::LoadU(d, in + i), d, out + i);
  }
  if (i < n) std::memcpy(out + i, in + i, (n - i) * 4);
}

}  // namespace HWY_NAMESPACE
}  // namespace detail
}  // namespace tilekit
HWY_AFTER_NAMESPACE();

#endif  // TILEKIT_GEMM_PACK_INL_H_

// Per-target: the vector path's M = 1 kernel (the decode step), several
// weight panels streamed at once.
#if defined(TILEKIT_GEMM_GEMV_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TILEKIT_GEMM_GEMV_INL_H_
#undef TILEKIT_GEMM_GEMV_INL_H_
#else
#define TILEKIT_GEMM_GEMV_INL_H_
#endif

#include <hwy/cache_control.h>
#include <hwy/highway.h>

#include <cstddef>
#include <utility>

#include "tilekit/cpu/features.h"
#include "tilekit/gemm/operands-inl.h"
#include "tilekit/gemm/prefetch-inl.h"
#include "tilekit/gemm/store-inl.h"

HWY_BEFORE_NAMESPACE();
namespace tilekit {
namespace detail {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// M = 1, the decode step: the weights are the whole cost, and one core reads
// memory faster from several sequential streams than from one, so one A row
// meets up to kGemvPanels panels at once, each panel its own stream (panels sit
// panel_bytes apart) prefetched kStreamAhead bytes ahead. Per element the
// products are summed in k order, exactly as MicroKernel<1> would.
// 8 streams measured faster than 4 (1.10x -> 1.2-1.4x oneDNN's, 1 thread);
// AVX2's 16 registers hold the accumulators of 4.
#if HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_SCALAR || HWY_TARGET == HWY_EMU128
constexpr size_t kGemvPanels = 4;
#else
constexpr size_t kGemvPanels = 8;
#endif

// kStream: prefetch each stream kStreamAhead bytes ahead, for weights read
// from memory. Weights that fit in L2 (GemvStreams) are read without: there
// the prefetches only take load slots (1 × 256 × 256 fp32 ran at 0.5-0.6× of
// Eigen's speed with them, warm).
#define TILEKIT_GEMV_FMA(P)                                                           \
  if constexpr (kPanels > P) {                                                        \
    const unsigned char* panel = b + P * panel_bytes;                                 \
    if constexpr (kStream) {                                                          \
      hwy::Prefetch(panel + k * row_bytes + kStreamAhead);                            \
      hwy::Prefetch(panel + k * row_bytes + kStreamAhead + 64);                       \
    }                                                                                 \
    hn::Vec<decltype(df)> b0, b1;                                                     \
    LoadB(df, reinterpret_cast<const TB*>(panel), k, b0, b1);                         \
    c##P##0 = hn::MulAdd(av, b0, c##P##0);                                            \
    c##P##1 = hn::MulAdd(av, b1, c##P##1);                                            \
  }
#define TILEKIT_GEMV_STORE(P)                                                         \
  if constexpr (kPanels > P) {                                                        \
    hn::Store(c##P##0, df, row);                                                      \
    hn::Store(c##P##1, df, row + N);                                                  \
    StoreTile<TC>(row, 2 * N, outs[P], 1);                                            \
  }

template <size_t kPanels, bool kStream, typename TB, typename TC>
HWY_NOINLINE void GemvPanels(size_t K, const float* HWY_RESTRICT a, size_t a_step, const unsigned char* b,
                             size_t panel_bytes, size_t row_bytes, const TileOut* outs) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  auto c00 = hn::Zero(df), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
  auto c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00, c70 = c00, c71 = c00;
  for (size_t k = 0; k < K; ++k) {
    const auto av = hn::Set(df, a[k * a_step]);
    TILEKIT_GEMV_FMA(0) TILEKIT_GEMV_FMA(1) TILEKIT_GEMV_FMA(2) TILEKIT_GEMV_FMA(3)
    TILEKIT_GEMV_FMA(4) TILEKIT_GEMV_FMA(5) TILEKIT_GEMV_FMA(6) TILEKIT_GEMV_FMA(7)
  }
  HWY_ALIGN float row[2 * HWY_MAX_BYTES / sizeof(float)];
  TILEKIT_GEMV_STORE(0) TILEKIT_GEMV_STORE(1) TILEKIT_GEMV_STORE(2) TILEKIT_GEMV_STORE(3)
  TILEKIT_GEMV_STORE(4) TILEKIT_GEMV_STORE(5) TILEKIT_GEMV_STORE(6) TILEKIT_GEMV_STORE(7)
}
#undef TILEKIT_GEMV_FMA
#undef TILEKIT_GEMV_STORE
static_assert(kGemvPanels <= 8, "GemvPanels declares 8 accumulator pairs");

template <typename TB, typename TC, size_t... kCounts>
HWY_INLINE void RunGemv(size_t panels, bool stream, size_t K, const float* a, size_t a_step, const unsigned char* b,
                        size_t panel_bytes, size_t row_bytes, const TileOut* outs, std::index_sequence<kCounts...>) {
  using Kernel = void (*)(size_t, const float*, size_t, const unsigned char*, size_t, size_t, const TileOut*);
  static constexpr Kernel kStreaming[] = {&GemvPanels<kCounts + 1, true, TB, TC>...};
  static constexpr Kernel kCached[] = {&GemvPanels<kCounts + 1, false, TB, TC>...};
  (stream ? kStreaming : kCached)[panels - 1](K, a, a_step, b, panel_bytes, row_bytes, outs);
}

// Whether a GEMV share of `bytes` of weights streams them from memory (and
// prefetches): more than half of L2, which a previous call cannot have left
// there.
HWY_INLINE bool GemvStreams(size_t bytes) {
  const size_t l2 = cpu::features().l2 ? cpu::features().l2 : (size_t{1} << 20);
  return bytes > l2 / 2;
}

}  // namespace HWY_NAMESPACE
}  // namespace detail
}  // namespace tilekit
HWY_AFTER_NAMESPACE();

#endif  // TILEKIT_GEMM_GEMV_INL_H_

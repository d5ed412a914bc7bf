// Per-target: the register-tile micro-kernel of the vector path, C tile
// (mr rows × one panel) += A rows · panel over one K block.
//
// Register tile mr × nr, nr = 2 vectors. Each k step loads two B vectors and
// broadcasts mr A values into 2·mr FMAs. Two FMA ports × 4 cycles latency need
// >= 8 independent accumulators; 2·mr of them (24 with mr = 12) also hide the
// loads. Register budget: 2·mr accumulators + 2 B + 1 broadcast <= 32 vectors
// (AVX-512, NEON, SVE) -> mr = 12; AVX2 has 16 -> mr = 6.
//
// The kernel walks one K block (kc) in registers. When K has several blocks,
// a block's accumulators go to fp32 partial sums in the workspace and the next
// block starts from them (kFirstK / kLastK); storing and reloading an fp32 is
// exact, so every element sums its products in k order whatever the blocking,
// tile height or thread count (bitwise-identical results). The last block runs
// the epilogue on the registers.
#if defined(TILEKIT_GEMM_MICROKERNEL_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TILEKIT_GEMM_MICROKERNEL_INL_H_
#undef TILEKIT_GEMM_MICROKERNEL_INL_H_
#else
#define TILEKIT_GEMM_MICROKERNEL_INL_H_
#endif

#include <hwy/cache_control.h>
#include <hwy/highway.h>

#include <cstddef>
#include <cstdint>
#include <utility>

#include "tilekit/gemm/operands-inl.h"
#include "tilekit/gemm/prefetch-inl.h"
#include "tilekit/gemm/store-inl.h"
#include "tilekit/simd/load_store-inl.h"

HWY_BEFORE_NAMESPACE();
namespace tilekit {
namespace detail {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

#if HWY_TARGET == HWY_AVX2
constexpr size_t kGemmMR = 6;
#elif HWY_TARGET == HWY_SCALAR || HWY_TARGET == HWY_EMU128
constexpr size_t kGemmMR = 4;
#else
constexpr size_t kGemmMR = 12;
#endif

inline size_t GemmPanelLanes() { return hn::Lanes(hn::ScalableTag<float>()); }
inline size_t GemmMR() { return kGemmMR; }

// Where a row's A values are: packed panels ([k][kGemmMR], rows adjacent) or the
// caller's matrix (row stride lda).
template <bool kPackedA>
HWY_INLINE const float* AAt(const float* HWY_RESTRICT a, size_t lda, size_t row, size_t k) {
  return kPackedA ? a + k * kGemmMR + row : a + row * lda + k;
}

// c0 += *a · b0 and c1 += *a · b1, one row of a k step. On AVX-512 each FMA
// broadcasts *a from memory itself ({1to16}): two fused uops per row instead
// of three (a broadcast, two FMAs), 26 + loop uops per k step of the 12-row
// tile instead of 38. The fewer uops matter because this VM's cores are
// shared: the two vCPUs' FMA loop runs only 1.3x one vCPU's in some minutes,
// and a tile loop with more uops than FMAs loses to whatever shares its core.
// With the loop's prefetches cut to where they fetch (MicroKernel), in one
// process against the loop before, two runs: 256×4096×4096 1.04-1.14x (1
// thread) and 1.06-1.15x (2 threads), 32×4096×4096 1.08x and 1.21x.
// GCC keeps a Set used twice in one register, so the form is written out.
template <class DF, class V>
HWY_INLINE void MulAddBroadcast(DF df, const float* HWY_RESTRICT a, V b0, V b1, V& c0, V& c1) {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
  (void)df;
  // {AT&T|Intel} operand order, for code built with -masm=intel too.
  asm("vfmadd231ps {%[a]%{1to16%}, %[b0], %[c0]|%[c0], %[b0], %[a]%{1to16%}}\n\t"
      "vfmadd231ps {%[a]%{1to16%}, %[b1], %[c1]|%[c1], %[b1], %[a]%{1to16%}}"
      : [c0] "+v"(c0.raw), [c1] "+v"(c1.raw)
      : [b0] "v"(b0.raw), [b1] "v"(b1.raw), [a] "m"(*a));
#else
  const auto av = hn::Set(df, *a);
  c0 = hn::MulAdd(av, b0, c0);
  c1 = hn::MulAdd(av, b1, c1);
#endif
}

// Flags of one micro-kernel call within the K loop: the first K block starts
// from zero, later ones from the partial sums they left in the workspace; the
// last one runs the epilogue into C. Storing and reloading an fp32 partial is
// exact, so the result does not depend on kc.
enum : uint32_t { kFirstK = 1, kLastK = 2 };

// Accumulator pair of row R, declared only when the tile has that row; the
// compiler keeps them in registers (Highway vectors cannot form arrays on SVE).
#define TILEKIT_ROW_LOAD(R)                                  \
  if constexpr (kMR > R) {                                   \
    c##R##0 = hn::LoadU(df, partial + R * 2 * N);             \
    c##R##1 = hn::LoadU(df, partial + R * 2 * N + N);         \
  }
#define TILEKIT_ROW_FMA(R) \
  if constexpr (kMR > R) MulAddBroadcast(df, AAt<kPackedA>(a, lda, R, k), b0, b1, c##R##0, c##R##1);
#define TILEKIT_ROW_SAVE(R, DST)                             \
  if constexpr (kMR > R) {                                   \
    hn::StoreU(c##R##0, df, DST + R * 2 * N);                 \
    hn::StoreU(c##R##1, df, DST + R * 2 * N + N);             \
  }
#define TILEKIT_ROW_STORE(R)                                  \
  if constexpr (kMR > R) {                                    \
    TC* c = static_cast<TC*>(out.seg->c) + (out.row + R) * out.seg->ldc + out.col; \
    StoreRow(df, c##R##0, c, N, native_bf16);                 \
    StoreRow(df, c##R##1, c + N, N, native_bf16);             \
  }

// C tile (kMR rows × one panel) += A rows · panel over one K block of kc.
// Step k prefetches the 128 bytes at next + k · row_bytes into L1 (unless next
// is the slice itself), and the steps pull the lines of `l2` into L2; the
// caller points them at what is read soon (see SlicePrefetch). `l2` by
// reference: passed by value, its 32 bytes were re-read from the stack right
// after being written field by field (a failed store-to-load forward on every
// call); in a 256×4096×4096 GEMM the loops around the kernel fell from 8.8% to
// 3% of the samples.
template <size_t kMR, bool kPackedA, typename TB, typename TC>
HWY_NOINLINE void MicroKernel(size_t kc, const float* HWY_RESTRICT a, size_t lda, const TB* HWY_RESTRICT panel,
                              const unsigned char* next, size_t row_bytes, const L2Lines& l2,
                              float* HWY_RESTRICT partial, uint32_t flags, const TileOut& out) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  auto c00 = hn::Zero(df), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
  auto c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00, c70 = c00, c71 = c00;
  auto c80 = c00, c81 = c00, c90 = c00, c91 = c00, c100 = c00, c101 = c00, c110 = c00, c111 = c00;
  if (!(flags & kFirstK)) {
    TILEKIT_ROW_LOAD(0) TILEKIT_ROW_LOAD(1) TILEKIT_ROW_LOAD(2) TILEKIT_ROW_LOAD(3)
    TILEKIT_ROW_LOAD(4) TILEKIT_ROW_LOAD(5) TILEKIT_ROW_LOAD(6) TILEKIT_ROW_LOAD(7)
    TILEKIT_ROW_LOAD(8) TILEKIT_ROW_LOAD(9) TILEKIT_ROW_LOAD(10) TILEKIT_ROW_LOAD(11)
  }
  // Three loops, by the prefetches due. A block's last tile pulls the next
  // slice into L1 at every step. The other tiles re-read a slice already in
  // L1 (`next` is the slice itself) and prefetch only into L2: where a line
  // of `l2` spans several steps (blocked order), in chunks of one line each,
  // its address computed once per chunk; where a line or more is due per step
  // (linear order at M <= 32), at every step: chunks of one step ran
  // 32×4096×4096 at 0.76-0.79x, their loop overhead exceeding the saving.
  // Prefetching into L1 and L2 at every step of every tile cost 1.09x the
  // time of a 2-thread 256×4096×4096 GEMM, and the useless L1 prefetches
  // 1.02-1.04x at M = 16 and 32 (5 runs): uops, not fetches (see
  // MulAddBroadcast).
  const bool to_l1 = next != reinterpret_cast<const unsigned char*>(panel);
  const size_t chunk = l2.rate >= 256 ? 1 : l2.rate ? 256 / l2.rate : HWY_MAX(kc, size_t{1});
#define TILEKIT_K_STEP                                                        \
  hn::Vec<decltype(df)> b0, b1;                                               \
  LoadB(df, panel, k, b0, b1);                                                \
  TILEKIT_ROW_FMA(0) TILEKIT_ROW_FMA(1) TILEKIT_ROW_FMA(2) TILEKIT_ROW_FMA(3)  \
  TILEKIT_ROW_FMA(4) TILEKIT_ROW_FMA(5) TILEKIT_ROW_FMA(6) TILEKIT_ROW_FMA(7)  \
  TILEKIT_ROW_FMA(8) TILEKIT_ROW_FMA(9) TILEKIT_ROW_FMA(10) TILEKIT_ROW_FMA(11)
  if (to_l1) {
    for (size_t k = 0; k < kc; ++k) {
      hwy::Prefetch(next + k * row_bytes);
      hwy::Prefetch(next + k * row_bytes + 64);
      __builtin_prefetch(l2.At(k), 0, 2);
      TILEKIT_K_STEP
    }
  } else if (chunk == 1) {
    for (size_t k = 0; k < kc; ++k) {
      __builtin_prefetch(l2.At(k), 0, 2);
      TILEKIT_K_STEP
    }
  } else {
    for (size_t k0 = 0; k0 < kc; k0 += chunk) {
      __builtin_prefetch(l2.At(k0), 0, 2);
      const size_t k1 = HWY_MIN(kc, k0 + chunk);
      for (size_t k = k0; k < k1; ++k) {
        TILEKIT_K_STEP
      }
    }
  }
#undef TILEKIT_K_STEP
  if ((flags & kLastK) && PlainStore(out, N)) {
    const bool native_bf16 = out.seg->native_bf16;
    TILEKIT_ROW_STORE(0) TILEKIT_ROW_STORE(1) TILEKIT_ROW_STORE(2) TILEKIT_ROW_STORE(3)
    TILEKIT_ROW_STORE(4) TILEKIT_ROW_STORE(5) TILEKIT_ROW_STORE(6) TILEKIT_ROW_STORE(7)
    TILEKIT_ROW_STORE(8) TILEKIT_ROW_STORE(9) TILEKIT_ROW_STORE(10) TILEKIT_ROW_STORE(11)
  } else if (flags & kLastK) {
    HWY_ALIGN float tile[kMR * 2 * HWY_MAX_BYTES / sizeof(float)];
    TILEKIT_ROW_SAVE(0, tile) TILEKIT_ROW_SAVE(1, tile) TILEKIT_ROW_SAVE(2, tile) TILEKIT_ROW_SAVE(3, tile)
    TILEKIT_ROW_SAVE(4, tile) TILEKIT_ROW_SAVE(5, tile) TILEKIT_ROW_SAVE(6, tile) TILEKIT_ROW_SAVE(7, tile)
    TILEKIT_ROW_SAVE(8, tile) TILEKIT_ROW_SAVE(9, tile) TILEKIT_ROW_SAVE(10, tile) TILEKIT_ROW_SAVE(11, tile)
    EpilogueTile<TC>(tile, 2 * N, out, kMR);
  } else {
    TILEKIT_ROW_SAVE(0, partial) TILEKIT_ROW_SAVE(1, partial) TILEKIT_ROW_SAVE(2, partial)
    TILEKIT_ROW_SAVE(3, partial) TILEKIT_ROW_SAVE(4, partial) TILEKIT_ROW_SAVE(5, partial)
    TILEKIT_ROW_SAVE(6, partial) TILEKIT_ROW_SAVE(7, partial) TILEKIT_ROW_SAVE(8, partial)
    TILEKIT_ROW_SAVE(9, partial) TILEKIT_ROW_SAVE(10, partial) TILEKIT_ROW_SAVE(11, partial)
  }
  (void)lda;
  (void)N;
}
#undef TILEKIT_ROW_LOAD
#undef TILEKIT_ROW_FMA
#undef TILEKIT_ROW_SAVE
#undef TILEKIT_ROW_STORE

static_assert(kGemmMR <= 12, "MicroKernel declares 12 accumulator rows");

template <bool kPackedA, typename TB, typename TC, size_t... kRows>
HWY_INLINE void RunTile(size_t rows, size_t kc, const float* a, size_t lda, const PanelSlice<TB>& b, float* partial,
                        uint32_t flags, const TileOut& out, std::index_sequence<kRows...>) {
  using Kernel = void (*)(size_t, const float*, size_t, const TB*, const unsigned char*, size_t, const L2Lines&, float*,
                          uint32_t, const TileOut&);
  static constexpr Kernel kKernels[] = {&MicroKernel<kRows + 1, kPackedA, TB, TC>...};
  kKernels[rows - 1](kc, a, lda, b.panel, b.next, b.row_bytes, b.l2, partial, flags, out);
}

}  // namespace HWY_NAMESPACE
}  // namespace detail
}  // namespace tilekit
HWY_AFTER_NAMESPACE();

#endif  // TILEKIT_GEMM_MICROKERNEL_INL_H_

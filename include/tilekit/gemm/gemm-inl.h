// Per-target GEMM: the register-tile micro-kernel and the loops around it for
// one thread's share of the output (rows [r0, r1) × panels [p0, p1)).
//
// Register tile mr × nr, nr = 2 vectors. Each k step loads two B vectors and
// broadcasts mr A values into 2·mr FMAs. Two FMA ports × 4 cycles latency need
// >= 8 independent accumulators; 2·mr of them (24 with mr = 12) also hide the
// loads. Register budget: 2·mr accumulators + 2 B + 1 broadcast <= 32 vectors
// (AVX-512, NEON, SVE) -> mr = 12; AVX2 has 16 -> mr = 6.
//
// The micro-kernel walks all of K in registers, so each output element is
// finished in one pass and the epilogue runs on the registers: no partial sums
// in memory, and every element sums its products in the same order whatever
// the tiling or thread count (bitwise-identical results).
#if defined(TILEKIT_GEMM_GEMM_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TILEKIT_GEMM_GEMM_INL_H_
#undef TILEKIT_GEMM_GEMM_INL_H_
#else
#define TILEKIT_GEMM_GEMM_INL_H_
#endif

#include <type_traits>

#include <hwy/cache_control.h>
#include <hwy/highway.h>

#include "tilekit/base/bf16.h"
#include "tilekit/epilogue/epilogue-inl.h"
#include "tilekit/gemm/plan.h"

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

// B row k of a panel as two fp32 vectors (columns [0, N) and [N, 2N)).
template <class DF>
HWY_INLINE void LoadB(DF df, const float* HWY_RESTRICT panel, size_t k, hn::Vec<DF>& b0, hn::Vec<DF>& b1) {
  const size_t N = hn::Lanes(df);
  b0 = hn::LoadU(df, panel + k * 2 * N);
  b1 = hn::LoadU(df, panel + k * 2 * N + N);
}
// bf16 pairs: one 32-bit lane holds column l (low half) and l + N (high half);
// a bf16 widens to fp32 by moving its bits to the top of the lane.
template <class DF>
HWY_INLINE void LoadB(DF df, const uint32_t* HWY_RESTRICT panel, size_t k, hn::Vec<DF>& b0, hn::Vec<DF>& b1) {
  const hn::RebindToUnsigned<DF> du;
  const auto pair = hn::LoadU(du, panel + k * hn::Lanes(df));
  b0 = hn::BitCast(df, hn::ShiftLeft<16>(pair));
  b1 = hn::BitCast(df, hn::And(pair, hn::Set(du, 0xFFFF0000u)));
}

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

struct TileOut {
  const SegmentPlan* seg;
  size_t row;     // first output row of the tile
  size_t col;     // first output column of the tile within the segment
  size_t cols;    // valid output columns from `col` (<= 2N, or <= N for gate/up)
};

template <typename TC>
HWY_INLINE void EpilogueRow(const float* HWY_RESTRICT acc, const TileOut& t, size_t r) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  const SegmentPlan& s = *t.seg;
  const Epilogue& ep = s.epilogue;
  const size_t row = t.row + r;
  TC* c = static_cast<TC*>(s.c) + row * s.ldc + t.col;
  const float* res = ep.residual ? ep.residual + row * ep.ld_residual + t.col : nullptr;
  const float* bias = ep.bias ? ep.bias + t.col : nullptr;
  const auto c0 = hn::LoadU(df, acc), c1 = hn::LoadU(df, acc + N);
  if (s.gate_up) {
    StoreSwiGlu(df, c0, c1, ep, OutputTile<TC>{c, nullptr, res, t.cols});
    return;
  }
  StoreWithEpilogue(df, c0, ep, OutputTile<TC>{c, bias, res, HWY_MIN(N, t.cols)});
  if (t.cols > N) {
    StoreWithEpilogue(df, c1, ep, OutputTile<TC>{c + N, bias ? bias + N : nullptr, res ? res + N : nullptr,
                                                  t.cols - N});
  }
}

// The epilogue of a finished tile (rows × 2N accumulators, row stride acc_ld), out
// of line: activations expand to a lot of code, and inlining them into every
// micro-kernel shape multiplied build time for no speed. One call per tile, not
// per row: per-row calls cost ~4% of a 256×4096×4096 GEMM, and a loop lets the
// rows' independent Div / Exp chains overlap.
template <typename TC>
HWY_NOINLINE void EpilogueTile(const float* HWY_RESTRICT acc, size_t acc_ld, const TileOut& t, size_t rows) {
  for (size_t r = 0; r < rows; ++r) EpilogueRow<TC>(acc + r * acc_ld, t, r);
}

// True when the tile's rows go straight to C: no epilogue op, all 2N columns.
HWY_INLINE bool PlainStore(const TileOut& t, size_t N) {
  return !t.seg->gate_up && t.seg->epilogue.is_identity() && t.cols == 2 * N;
}

// Finished fp32 rows (row stride acc_ld) to C, through the epilogue if any.
template <typename TC>
HWY_INLINE void StoreTile(const float* HWY_RESTRICT acc, size_t acc_ld, const TileOut& t, size_t rows) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  if (!PlainStore(t, N)) return EpilogueTile<TC>(acc, acc_ld, t, rows);
  for (size_t r = 0; r < rows; ++r) {
    TC* c = static_cast<TC*>(t.seg->c) + (t.row + r) * t.seg->ldc + t.col;
    StoreRow(df, hn::LoadU(df, acc + r * acc_ld), c, N);
    StoreRow(df, hn::LoadU(df, acc + r * acc_ld + N), c + N, N);
  }
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
    StoreRow(df, c##R##0, c, N);                              \
    StoreRow(df, c##R##1, c + N, N);                          \
  }

// Lines a tile pulls into L2 during its k steps, one per step at most (one per
// 256 / rate steps): step k asks for line v = first + k · rate / 256 of a run
// from base: contiguous (stride 0), or kL2Streams streams stride bytes apart,
// taken in turn.
constexpr size_t kL2Streams = 8;
struct L2Lines {
  const unsigned char* base;
  size_t stride, first, rate;
  // The address step k asks for.
  const unsigned char* At(size_t k) const {
    const size_t v = first + ((k * rate) >> 8);
    if (!stride) return base + v * 64;
    return base + (v % kL2Streams) * stride + (v / kL2Streams) * 64;
  }
};

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

// Where a tile's weights come from: the kc × nr slice it reads and where its
// k steps prefetch (SlicePrefetch::L1Target).
template <typename TB>
struct PanelSlice {
  const TB* panel;
  const unsigned char* next;
  size_t row_bytes;
  L2Lines l2;
};

// Keeping the weights a tile needs close by. B slices are read from L3 or
// memory once per row block; the loops ask for them ahead, in one of two
// orders:
// - linear: the loops read B front to back, a panel's K blocks one after
//   another (one panel per group, or one K block per panel). While a panel is
//   computed, the next one is pulled into L2 as kL2Streams streams over equal
//   parts of it, each K block taking its share: one core draws memory faster
//   from several sequential streams than from one. Each tile streams its slice
//   into L1 kStreamAhead bytes ahead (one tile), or the last tile pulls the next
//   slice into L1 (several: the earlier ones re-touch their own slice, an L1
//   hit).
// - blocked (large M: a group of panels per K block, so A and the partial sums
//   stay in L2): the slice two panels ahead is pulled into L2 in equal shares
//   by the tiles of the current panel, and the panel's last tile pulls the next
//   slice into L1, so the next panel's first tile finds its slice in L1 and L1
//   holds at most two slices.
// Either way a tile's L2 share is spread over its k steps, one line per step:
// asked for in a burst at the start of the tile, a few hundred prefetches fill
// the line buffers and stall the FMAs until memory answers (at M = 32 a burst
// cost 25% of the speed).
constexpr size_t kStreamAhead = 4096;
struct SlicePrefetch {
  const unsigned char* slice;
  const unsigned char* next_slice;  // the slice read after this panel's
  L2Lines l2;                       // first = 0; tile t starts at t · lines_per_tile
  size_t lines_per_tile;
  size_t last_tile;
  bool stream;

  L2Lines L2Target(size_t tile) const {
    L2Lines t = l2;
    t.first = tile * lines_per_tile;
    return t;
  }
  const unsigned char* L1Target(size_t tile) const {
    // K = 0 packs no bytes: no slice (null), nothing ahead of it.
    if (stream) return slice ? slice + kStreamAhead : slice;
    return tile == last_tile ? next_slice : slice;
  }
};
// The slice of panel pb at K offset pc (kc deep) in either order; last_panel:
// the last of the thread's share (linear) or of the group (blocked).
inline SlicePrefetch PlanSlicePrefetch(const unsigned char* b, size_t pb, size_t pc, size_t kc, size_t k,
                                       size_t row_bytes, size_t panel_bytes, size_t tiles, size_t last_panel,
                                       bool linear) {
  SlicePrefetch pf;
  pf.slice = b + pb * panel_bytes + pc * row_bytes;
  pf.stream = tiles == 1;
  pf.last_tile = tiles - 1;
  const size_t slice_lines = (kc * row_bytes + 63) / 64;
  size_t lines = 0;  // to pull into L2 during this slice
  if (linear) {
    pf.next_slice = pc + kc < k ? pf.slice + kc * row_bytes : pb < last_panel ? b + (pb + 1) * panel_bytes : pf.slice;
    if (pb < last_panel) {
      // Stream i of the next panel covers K rows [i, i + 1) · k / kL2Streams;
      // this K block takes its kc / k share of each.
      const size_t part = k * row_bytes / kL2Streams;
      pf.l2 = L2Lines{b + (pb + 1) * panel_bytes + pc * row_bytes / kL2Streams, part, 0, 0};
      lines = kL2Streams * ((slice_lines + kL2Streams - 1) / kL2Streams);
    }
  } else {
    pf.next_slice = pb < last_panel ? pf.slice + panel_bytes : pf.slice;
    if (pb + 2 <= last_panel && !pf.stream) {
      pf.l2 = L2Lines{pf.slice + 2 * panel_bytes, 0, 0, 0};
      lines = slice_lines;
    }
  }
  if (lines == 0) pf.l2 = L2Lines{pf.slice, 0, 0, 0};  // nothing ahead: re-touch the slice (an L1 hit)
  // One row tile of fp32 (128-byte rows) has two lines per k step to fetch
  // and asks for every other one (with interleaved streams: streams 0, 2, 4,
  // 6). Asking for all of them (128-byte units, the adjacent-line prefetcher
  // completing each pair) measured no faster: 1.006x at M = 10, 0.94x at M = 4.
  pf.lines_per_tile = (lines + tiles - 1) / tiles;
  pf.l2.rate = (256 * pf.lines_per_tile + kc - 1) / HWY_MAX(kc, 1);
  return pf;
}

// The epilogue reads the residual (and C when beta != 0) once, row by row at a
// large stride, straight from memory: without a hint each row's load stalls
// the store of the finished tile (it cost ~8% of a 256×4096×4096 GEMM with a
// residual). Asked for before the tile's last K block, they arrive while it
// runs.
template <typename TC>
HWY_INLINE void PrefetchEpilogueInputs(const TileOut& t, size_t rows) {
  const SegmentPlan& s = *t.seg;
  const Epilogue& ep = s.epilogue;
  const size_t row_bytes = t.cols * sizeof(float);
  if (ep.residual) {
    for (size_t r = 0; r < rows; ++r) {
      const unsigned char* p = reinterpret_cast<const unsigned char*>(ep.residual + (t.row + r) * ep.ld_residual + t.col);
      for (size_t b = 0; b < row_bytes; b += 64) hwy::Prefetch(p + b);
    }
  }
  if (ep.beta != 0.f) {
    for (size_t r = 0; r < rows; ++r) {
      const unsigned char* p = reinterpret_cast<const unsigned char*>(static_cast<const TC*>(s.c) + (t.row + r) * s.ldc + t.col);
      for (size_t b = 0; b < t.cols * sizeof(TC); b += 64) hwy::Prefetch(p + b);
    }
  }
}

template <bool kPackedA, typename TB, typename TC, size_t... kRows>
HWY_INLINE void RunTile(size_t rows, size_t kc, const float* a, size_t lda, const PanelSlice<TB>& b, float* partial,
                        uint32_t flags, const TileOut& out, std::index_sequence<kRows...>) {
  using Kernel = void (*)(size_t, const float*, size_t, const TB*, const unsigned char*, size_t, const L2Lines&, float*,
                          uint32_t, const TileOut&);
  static constexpr Kernel kKernels[] = {&MicroKernel<kRows + 1, kPackedA, TB, TC>...};
  kKernels[rows - 1](kc, a, lda, b.panel, b.next, b.row_bytes, b.l2, partial, flags, out);
}

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

#define TILEKIT_GEMV_FMA(P)                                                           \
  if constexpr (kPanels > P) {                                                        \
    const unsigned char* panel = b + P * panel_bytes;                                 \
    hwy::Prefetch(panel + k * row_bytes + kStreamAhead);                              \
    hwy::Prefetch(panel + k * row_bytes + kStreamAhead + 64);                         \
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

template <size_t kPanels, typename TB, typename TC>
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
HWY_INLINE void RunGemv(size_t panels, size_t K, const float* a, size_t a_step, const unsigned char* b,
                        size_t panel_bytes, size_t row_bytes, const TileOut* outs, std::index_sequence<kCounts...>) {
  using Kernel = void (*)(size_t, const float*, size_t, const unsigned char*, size_t, size_t, const TileOut*);
  static constexpr Kernel kKernels[] = {&GemvPanels<kCounts + 1, TB, TC>...};
  kKernels[panels - 1](K, a, a_step, b, panel_bytes, row_bytes, outs);
}

// Copies rows [r0, r0 + rows) of A, all of K, into panels of kGemmMR rows,
// k-major ([panel][K][kGemmMR]), so the micro-kernel's broadcasts read one
// contiguous stream (rows of a large-ld A map to the same L1 sets) and a K
// block of a panel is contiguous too. bf16 A is widened here: one conversion
// per element per row block, not one per use. Packed once per row block and
// reused by every panel group and K block.
// A block's rows cut into the fewest tiles of at most kGemmMR rows, heights
// differing by at most one: 256 rows are 14 × 12 + 8 × 11, not 21 × 12 + 4
// (a 4-row tile has too few accumulators to hide the FMA latency, and the
// block's last tile also pulls the next B slice into L1). The tile height does
// not change any element's arithmetic (its products are summed in k order
// whatever the tile), so results stay identical.
struct RowTiles {
  size_t count, base, extra;
  explicit RowTiles(size_t rows)
      : count((rows + kGemmMR - 1) / kGemmMR), base(count ? rows / count : 0), extra(count ? rows % count : 0) {}
  size_t begin(size_t t) const { return t * base + HWY_MIN(t, extra); }
  size_t rows(size_t t) const { return base + (t < extra ? 1 : 0); }
};

// An A element as fp32 (bf16 widened exactly).
template <typename TA>
HWY_INLINE float AsFloat(TA v) {
  if constexpr (std::is_same<TA, float>::value) {
    return v;
  } else {
    return bf16_to_f32(v);
  }
}

template <typename TA>
HWY_INLINE void PackA(const TA* a, size_t lda, size_t r0, size_t rows, size_t K, float* HWY_RESTRICT ws) {
  const RowTiles tiles(rows);
  for (size_t t = 0; t < tiles.count; ++t) {
    float* HWY_RESTRICT panel = ws + t * K * kGemmMR;
    const size_t n = tiles.rows(t);
    const TA* src = a + (r0 + tiles.begin(t)) * lda;
    for (size_t k = 0; k < K; ++k) {
      for (size_t i = 0; i < n; ++i) {
        panel[k * kGemmMR + i] = AsFloat(src[i * lda + k]);
      }
    }
  }
}

// BLIS's loops around the micro-kernel, B already packed: a block of mc rows
// (A packed once) × a group of panels (nc columns) × K blocks of kc. The
// kc × nr slice of a panel stays in L1 while the mc / mr tiles of the block
// stream past it; the tiles' partial sums stay in L2.
template <typename TA, typename TB, typename TC>
HWY_INLINE void GemmRangeT(const GemmPlan& p, size_t r0, size_t r1, size_t p0, size_t p1, float* ws) {
  const size_t lanes = GemmPanelLanes(), nr = 2 * lanes;
  constexpr size_t kBytesPerColumn = std::is_same<TB, float>::value ? 4 : 2;  // bf16 pairs: 2
  const size_t row_bytes = nr * kBytesPerColumn;
  const size_t row_blocks = (p.mc + kGemmMR - 1) / kGemmMR;
  const TA* a = static_cast<const TA*>(p.a);
  float* a_ws = ws;
  float* c_ws = p.pack_a ? ws + row_blocks * kGemmMR * p.k : ws;
  // B is read front to back (see SlicePrefetch) with one panel per group or
  // one K block per panel.
  const bool linear = p.nc_panels == 1 || p.kc >= p.k;
  for (size_t ic = r0; ic < r1; ic += p.mc) {
    const size_t rows = HWY_MIN(p.mc, r1 - ic);
    const RowTiles tiles(rows);
    if (p.pack_a) PackA(a, p.lda, ic, rows, p.k, a_ws);
    for (size_t jc = p0; jc < p1; jc += p.nc_panels) {
      const size_t jc_end = HWY_MIN(p1, jc + p.nc_panels);
      size_t pc = 0;
      do {
        const size_t kc = HWY_MIN(p.kc, p.k - pc);
        const uint32_t flags = (pc == 0 ? kFirstK : 0u) | (pc + kc >= p.k ? kLastK : 0u);
        if (rows == 1 && kc == p.k) {  // the GEMV: no K blocks, no row tiles
          // bf16 A is always packed (widened); fp32 A may be read in place.
          const float* a_row = a_ws;
          size_t a_step = kGemmMR;
          if constexpr (std::is_same<TA, float>::value) {
            if (!p.pack_a) a_row = a + ic * p.lda, a_step = 1;
          }
          for (size_t pb = jc; pb < jc_end; pb += kGemvPanels) {
            const size_t n = HWY_MIN(kGemvPanels, jc_end - pb);
            TileOut outs[kGemvPanels];
            for (size_t i = 0; i < n; ++i) {
              const PanelColumns pc = panel_columns(p, pb + i, nr);
              outs[i] = TileOut{pc.seg, ic, pc.col, pc.cols};
              PrefetchEpilogueInputs<TC>(outs[i], 1);
            }
            RunGemv<TB, TC>(n, p.k, a_row, a_step, p.b + pb * p.panel_bytes, p.panel_bytes, row_bytes, outs,
                            std::make_index_sequence<kGemvPanels>());
          }
          pc += kc;
          continue;
        }
        for (size_t pb = jc; pb < jc_end; ++pb) {
          const PanelColumns out_cols = panel_columns(p, pb, nr);
          const SlicePrefetch pf = PlanSlicePrefetch(p.b, pb, pc, kc, p.k, row_bytes, p.panel_bytes, tiles.count,
                                                     linear ? p1 - 1 : jc_end - 1, linear);
          for (size_t tile = 0; tile < tiles.count; ++tile) {
            const size_t ir = tiles.begin(tile), mr = tiles.rows(tile);
            const PanelSlice<TB> b{reinterpret_cast<const TB*>(pf.slice), pf.L1Target(tile), row_bytes,
                                   pf.L2Target(tile)};
            const TileOut out{out_cols.seg, ic + ir, out_cols.col, out_cols.cols};
            if (flags & kLastK) PrefetchEpilogueInputs<TC>(out, mr);
            // No workspace (one K block, A read in place): no partial sums,
            // and no offset from a null pointer.
            float* partial = c_ws ? c_ws + ((pb - jc) * row_blocks + tile) * kGemmMR * nr : nullptr;
            if (p.pack_a) {
              const float* a_panel = a_ws + tile * p.k * kGemmMR + pc * kGemmMR;
              RunTile<true, TB, TC>(mr, kc, a_panel, 0, b, partial, flags, out, std::make_index_sequence<kGemmMR>());
            } else if constexpr (std::is_same<TA, float>::value) {
              RunTile<false, TB, TC>(mr, kc, a + (ic + ir) * p.lda + pc, p.lda, b, partial, flags, out,
                                     std::make_index_sequence<kGemmMR>());
            }
          }
        }
        pc += kc;
      } while (pc < p.k);
    }
  }
}

// Calls fn(TA*, TB*, TC*) with null pointers of the plan's element types (A:
// float or bf16; B panels: float, or uint32_t bf16 pairs; C: float or bf16),
// so each range function instantiates its loops for the 8 combinations once.
template <typename Fn>
HWY_INLINE void WithElementTypes(const GemmPlan& p, const Fn& fn) {
  const auto with_c = [&](auto* a, auto* b) {
    if (p.c_bf16) return fn(a, b, static_cast<bf16*>(nullptr));
    return fn(a, b, static_cast<float*>(nullptr));
  };
  const auto with_b = [&](auto* a) {
    if (p.b_bf16) return with_c(a, static_cast<uint32_t*>(nullptr));
    return with_c(a, static_cast<float*>(nullptr));
  };
  if (p.a_bf16) return with_b(static_cast<bf16*>(nullptr));
  return with_b(static_cast<float*>(nullptr));
}
template <typename T>
using Pointee = std::remove_pointer_t<T>;

// Narrow weights (PanelKind::kDot, N <= kDotMaxN; see packed_weights.h): each
// output element is a dot product of an A row and a weight column, both
// contiguous along K, so vectors run along K and no lane multiplies padding
// columns. A tile of kDotMR rows × kDotNR columns keeps kDotMR · kDotNR
// accumulators; a step of 2N values of K loads 2 A vectors per row and one
// weight vector (bf16: one pair vector) per column, and each accumulator sums
// its lanes once at the end. A is read in place, one sequential stream per row:
// at N = 10 each A element meets only 10 weights, so A is the traffic and
// copying it would double it.
// Register budget: kDotMR · kDotNR accumulators + 2 · kDotMR A + 2 weights:
// 20 + 8 + 2 of 32 (AVX-512, NEON, SVE); AVX2's 16 hold 2 × 5.
#if HWY_TARGET == HWY_AVX2
constexpr size_t kDotMR = 2, kDotNR = 5;
#elif HWY_TARGET == HWY_SCALAR
constexpr size_t kDotMR = 2, kDotNR = 2;  // the epilogue tile is 2N = 2 columns wide
#else
constexpr size_t kDotMR = 4, kDotNR = 5;
#endif
inline size_t GemmDotMR() { return kDotMR; }

// Two vectors of A from row position p: values [0, N) and [N, 2N).
template <class DF>
HWY_INLINE void LoadA2(DF df, const float* HWY_RESTRICT p, hn::Vec<DF>& lo, hn::Vec<DF>& hi) {
  lo = hn::LoadU(df, p);
  hi = hn::LoadU(df, p + hn::Lanes(df));
}
template <class DF>
HWY_INLINE void LoadA2(DF df, const bf16* HWY_RESTRICT p, hn::Vec<DF>& lo, hn::Vec<DF>& hi) {
  const hn::RebindToUnsigned<DF> du;
  const hn::Rebind<uint16_t, DF> d16;
  const uint16_t* bits = reinterpret_cast<const uint16_t*>(p);
  lo = hn::BitCast(df, hn::ShiftLeft<16>(hn::PromoteTo(du, hn::LoadU(d16, bits))));
  hi = hn::BitCast(df, hn::ShiftLeft<16>(hn::PromoteTo(du, hn::LoadU(d16, bits + hn::Lanes(df)))));
}

#define TILEKIT_DOT_LOAD_A(R, ROWS, OFFSET) \
  if constexpr (kDotMR > R) LoadA2(df, ROWS[R] + OFFSET, a##R##0, a##R##1);
#define TILEKIT_DOT_FMA(R, C)                       \
  if constexpr (kDotMR > R) {                       \
    c##R##C = hn::MulAdd(a##R##0, w0, c##R##C);     \
    c##R##C = hn::MulAdd(a##R##1, w1, c##R##C);     \
  }
#define TILEKIT_DOT_COLUMN(C, STEP)                                                   \
  if constexpr (kDotNR > C) {                                                         \
    hn::Vec<decltype(df)> w0, w1;                                                     \
    LoadB(df, cols[C], STEP, w0, w1);                                                 \
    TILEKIT_DOT_FMA(0, C) TILEKIT_DOT_FMA(1, C) TILEKIT_DOT_FMA(2, C) TILEKIT_DOT_FMA(3, C) \
  }
// One step: A from ROWS[r] + OFFSET, the columns' step STEP.
#define TILEKIT_DOT_STEP(ROWS, OFFSET, STEP)                                                     \
  TILEKIT_DOT_LOAD_A(0, ROWS, OFFSET) TILEKIT_DOT_LOAD_A(1, ROWS, OFFSET)                        \
  TILEKIT_DOT_LOAD_A(2, ROWS, OFFSET) TILEKIT_DOT_LOAD_A(3, ROWS, OFFSET)                        \
  TILEKIT_DOT_COLUMN(0, STEP) TILEKIT_DOT_COLUMN(1, STEP) TILEKIT_DOT_COLUMN(2, STEP)            \
  TILEKIT_DOT_COLUMN(3, STEP) TILEKIT_DOT_COLUMN(4, STEP)
#define TILEKIT_DOT_SUM_ROW(R)                                                          \
  if constexpr (kDotMR > R) {                                                           \
    if constexpr (kDotNR > 0) sums[R * kDotNR + 0] = hn::GetLane(hn::SumOfLanes(df, c##R##0)); \
    if constexpr (kDotNR > 1) sums[R * kDotNR + 1] = hn::GetLane(hn::SumOfLanes(df, c##R##1)); \
    if constexpr (kDotNR > 2) sums[R * kDotNR + 2] = hn::GetLane(hn::SumOfLanes(df, c##R##2)); \
    if constexpr (kDotNR > 3) sums[R * kDotNR + 3] = hn::GetLane(hn::SumOfLanes(df, c##R##3)); \
    if constexpr (kDotNR > 4) sums[R * kDotNR + 4] = hn::GetLane(hn::SumOfLanes(df, c##R##4)); \
  }

// sums[r · kDotNR + c] = row r · column c over `steps` steps of 2N, then one
// more step with A from `tail` (kDotMR rows of 2N floats: the rows' last
// K mod 2N values, zero-padded; null if none) against the columns' zero padding.
// Every element sums its products in the same order whatever the tile, so
// results do not depend on the thread count.
template <typename TA, typename TB>
HWY_NOINLINE void DotTile(size_t steps, const TA* const* HWY_RESTRICT rows, const TB* const* HWY_RESTRICT cols,
                          const float* HWY_RESTRICT tail, float* HWY_RESTRICT sums) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  auto c00 = hn::Zero(df), c01 = c00, c02 = c00, c03 = c00, c04 = c00, c10 = c00, c11 = c00, c12 = c00;
  auto c13 = c00, c14 = c00, c20 = c00, c21 = c00, c22 = c00, c23 = c00, c24 = c00, c30 = c00;
  auto c31 = c00, c32 = c00, c33 = c00, c34 = c00;
  hn::Vec<decltype(df)> a00, a01, a10, a11, a20, a21, a30, a31;
  for (size_t s = 0; s < steps; ++s) {
    TILEKIT_DOT_STEP(rows, s * 2 * N, s)
  }
  if (tail) {  // the columns' step `steps` is their zero padding
    const float* tail_rows[kDotMR];
    for (size_t r = 0; r < kDotMR; ++r) tail_rows[r] = tail + r * 2 * N;
    TILEKIT_DOT_STEP(tail_rows, 0, steps)
  }
  TILEKIT_DOT_SUM_ROW(0) TILEKIT_DOT_SUM_ROW(1) TILEKIT_DOT_SUM_ROW(2) TILEKIT_DOT_SUM_ROW(3)
}
#undef TILEKIT_DOT_LOAD_A
#undef TILEKIT_DOT_FMA
#undef TILEKIT_DOT_COLUMN
#undef TILEKIT_DOT_STEP
#undef TILEKIT_DOT_SUM_ROW
static_assert(kDotMR <= 4 && kDotNR <= 5, "DotTile declares 4 × 5 accumulators");

// One thread's share of a kDot GEMM: rows [r0, r1) × columns [p0, p1) (one
// panel per column). Row and column tails repeat the last real row or column
// (the extra results are dropped), so one DotTile shape serves every tile.
template <typename TA, typename TB, typename TC>
HWY_INLINE void GemmDotRangeT(const GemmPlan& p, size_t r0, size_t r1, size_t p0, size_t p1) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  const size_t steps = p.k / (2 * N), tail = p.k - steps * 2 * N;
  const TA* a = static_cast<const TA*>(p.a);
  HWY_ALIGN float tail_a[kDotMR * 2 * HWY_MAX_BYTES / sizeof(float)];
  HWY_ALIGN float tile[kDotMR * 2 * HWY_MAX_BYTES / sizeof(float)];
  for (size_t i = r0; i < r1; i += kDotMR) {
    const size_t rows = HWY_MIN(kDotMR, r1 - i);
    const TA* row_ptr[kDotMR];
    for (size_t r = 0; r < kDotMR; ++r) row_ptr[r] = a + (i + HWY_MIN(r, rows - 1)) * p.lda;
    if (tail) {
      for (size_t r = 0; r < kDotMR; ++r) {
        for (size_t j = 0; j < 2 * N; ++j) {
          tail_a[r * 2 * N + j] = j < tail ? AsFloat(row_ptr[r][steps * 2 * N + j]) : 0.f;
        }
      }
    }
    for (size_t pb = p0; pb < p1;) {
      const SegmentPlan& seg = segment_of(p, pb);
      const size_t cols = HWY_MIN(HWY_MIN(kDotNR, p1 - pb), seg.panel_begin + seg.panels - pb);
      const TB* col_ptr[kDotNR];
      for (size_t c = 0; c < kDotNR; ++c) {
        col_ptr[c] = reinterpret_cast<const TB*>(p.b + (pb + HWY_MIN(c, cols - 1)) * p.panel_bytes);
      }
      float sums[kDotMR * kDotNR];
      DotTile<TA, TB>(steps, row_ptr, col_ptr, tail ? tail_a : nullptr, sums);
      for (size_t r = 0; r < rows; ++r) {
        for (size_t c = 0; c < 2 * N; ++c) tile[r * 2 * N + c] = c < cols ? sums[r * kDotNR + c] : 0.f;
      }
      StoreTile<TC>(tile, 2 * N, TileOut{&seg, i, pb - seg.panel_begin, cols}, rows);
      pb += cols;
    }
  }
}

// GemmRangeFn for kDot weights (no workspace).
inline void GemmDotRange(const GemmPlan& p, size_t r0, size_t r1, size_t p0, size_t p1, float*) {
  WithElementTypes(p, [&](auto* a, auto* b, auto* c) {
    GemmDotRangeT<Pointee<decltype(a)>, Pointee<decltype(b)>, Pointee<decltype(c)>>(p, r0, r1, p0, p1);
  });
}

// For the matrix-instruction kernels under arch/: runs a segment's epilogue on
// an fp32 tile they computed (rows × nr floats, row stride acc_ld, nr = two
// vectors of this target), storing into C. One epilogue implementation for
// every path.
inline void GemmEpilogueTile(const float* acc, size_t acc_ld, size_t rows, const SegmentPlan& seg, size_t row0,
                             size_t col0, size_t cols, bool c_bf16) {
  const TileOut out{&seg, row0, col0, cols};
  return c_bf16 ? StoreTile<bf16>(acc, acc_ld, out, rows) : StoreTile<float>(acc, acc_ld, out, rows);
}

// One thread's share: rows [r0, r1) × panels [p0, p1). `ws` holds the packed
// A block (mc·K floats, rounded up to whole mr panels) followed by the partial
// sums of one panel group (mc·nc floats); see workspace_floats in gemm.h.
inline void GemmRange(const GemmPlan& p, size_t r0, size_t r1, size_t p0, size_t p1, float* ws) {
  WithElementTypes(p, [&](auto* a, auto* b, auto* c) {
    GemmRangeT<Pointee<decltype(a)>, Pointee<decltype(b)>, Pointee<decltype(c)>>(p, r0, r1, p0, p1, ws);
  });
}

}  // namespace HWY_NAMESPACE
}  // namespace detail
}  // namespace tilekit
HWY_AFTER_NAMESPACE();

#endif  // TILEKIT_GEMM_GEMM_INL_H_

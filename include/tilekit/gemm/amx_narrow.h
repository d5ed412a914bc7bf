// The AMX kernel for narrow bf16 weights and its record: one matrix of N <= 16
// columns (the seed MLP's [11008 -> 10] layer, classifier heads) on the amx
// path. Such weights are packed as a single kAmx panel of nr = 16 columns:
// the VNNI pairs of gemm/amx_gemm.h, 16 columns wide, so each K step of 32 is
// one whole 1 KiB B tile (16 pair rows of 64 bytes). K is zero-padded to a
// multiple of 32.
//
// Why not the wide AMX kernel (gemm/amx_gemm.h) or the dot-product kernel: at
// N = 10 the wide kernel's 32-column panels are two thirds padding and its A
// packing costs more than the few products per A element, while the FMA dot
// kernel (gemm/dot-inl.h) spends 26 widening ops per 40 FMAs on bf16 and reached
// 0.61-0.67x oneDNN's AMX at M = 256. Here each A element meets 16 columns in
// one tdpbf16ps, so the GEMM is bound by reading A once, not by arithmetic.
//
// Loops, for one share of rows:
//   block: 1 (bf16 A) or 2 (fp32 A) row tiles of 16 rows; their C tiles stay
//          in tile registers over all of K (one column tile: nothing else
//          competes for them).
//   step:  K by 32: one B tile load, then per row tile one A tile load and one
//          tdpbf16ps. A and B alternate between two tiles each so a load does
//          not wait for the tdpbf16ps still reading the previous one.
// A: bf16 rows are tile-loaded in place (tileloadd takes any row stride); the
// K tail (K mod 32) is copied, zero-padded, so no load reads past a row. fp32
// rows are converted to bf16 (round to nearest even) a chunk of
// kNarrowChunkSteps K steps at a time into the workspace, then tile-loaded
// from there. Row tails use tiles of fewer rows (a second tile configuration),
// never padding of user data. The epilogue is the shared GemmEpilogueTile.
//
// The bound is reading A once (5.6 MB of bf16 or 11 MB of fp32 at 256 ×
// 11008, from L3 or memory), so blocks are short: each A row is a stream of
// its own, and the hardware prefetchers lost track of 64 (4 tiles: 0.58x of
// one tile for bf16 A at M = 256, one process, rounds alternating). Two tiles
// suit fp32 A, whose rows the conversion prefetches itself (kNarrowConvertAhead)
// and whose B tile then serves two A tiles.
//
// Every C element sums its K steps in the same order whatever the block and
// tile height, so results do not depend on the thread count (threads split
// rows in multiples of kNarrowShareRows).
#ifndef TILEKIT_GEMM_AMX_NARROW_H_
#define TILEKIT_GEMM_AMX_NARROW_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "tilekit/arch/amx.h"
#include "tilekit/base/bf16.h"
#include "tilekit/base/size_math.h"
#include "tilekit/cpu/dispatch.h"
#include "tilekit/gemm/amx_gemm.h"
#include "tilekit/gemm/dot.h"
#include "tilekit/gemm/exports.h"
#include "tilekit/gemm/kernel.h"
#include "tilekit/gemm/plan.h"

#if TILEKIT_ARCH_X86

namespace tilekit {
namespace arch {

// Columns of the one narrow panel: one B (and C) tile wide.
constexpr size_t kNarrowNR = kTileRows;
// B bytes per K step: 16 pair rows of 16 columns × 2 bf16.
constexpr size_t kNarrowStepBytes = kTileRows * kTileBytes;
// C tiles per block: at most 2 (tiles 0-1; A takes 4-5, B 6-7).
template <typename TA>
constexpr size_t NarrowRowTiles() {
  return sizeof(TA) == sizeof(bf16) ? 1 : 2;
}
constexpr size_t kNarrowMaxRowTiles = 2;
// K steps of fp32 A converted per chunk: 2 tiles × 8 steps × 1 KiB = 16 KiB
// of bf16, read back from L1 by the tile loads.
constexpr size_t kNarrowChunkSteps = 8;
// How far ahead in its row the conversion prefetches fp32 A (4 K steps).
// In-process A/B: 1024 × 10 × 11008 (A from memory) went from 27 to 38
// GFLOP/s with rows prefetched 1 KiB ahead; at 256 rows, 512 B with two tiles
// was as good as 1 KiB with one (62 and 60).
constexpr size_t kNarrowConvertAhead = 512;
// Bytes ahead of the B tile being loaded that are prefetched, in a share's
// first block only: it streams the weights from memory, later blocks find
// them in L2.
constexpr size_t kNarrowPrefetchAhead = 8 * kNarrowStepBytes;

// Rows per thread share: two tiles. A thread with a single tile would stream
// all the weights for 16 rows; at M = 32 (bf16, weights cold) two threads of
// one tile each measured 0.77x of one thread doing both (2.17x against 2.83x
// oneDNN, same run), and at M = 64 two threads of two tiles 1.07x.
constexpr size_t kNarrowShareRows = 2 * kTileRows;

// No blocking beyond the kernel's own: A rows stream once, B stays in L2.
inline void amx_narrow_block(GemmPlan& p, const PanelLayout&, size_t) {
  p.pack_a = !p.a_bf16;
  p.mc = p.m;
  p.kc = p.k;
  p.nc_panels = 1;
}

// Workspace: the finished C of one block (rows × 32 fp32, the width the shared
// epilogue reads, of which the first 16 are stored), then the converted A chunk.
constexpr size_t kNarrowOutFloats = kNarrowMaxRowTiles * kTileRows * 2 * kNarrowNR;
constexpr size_t kNarrowChunkFloats = kNarrowChunkSteps * kNarrowMaxRowTiles * kTileRows * kStepK / 2;
// M = 1 keeps its A row there instead, as bf16 pairs (NarrowGemv).
inline size_t amx_narrow_workspace_floats(const GemmPlan& p, const PanelLayout&, size_t) {
  const size_t a_row_floats = p.m == 1 ? round_up(p.k, kStepK) / 2 : 0;
  return kNarrowOutFloats + std::max(kNarrowChunkFloats, a_row_floats);
}

// Where one block's A tiles are for a run of K steps: tile t of step s at
// a + s·step_bytes + t·tile_bytes, rows `stride` bytes apart.
struct NarrowA {
  const unsigned char* a;
  size_t stride, tile_bytes, step_bytes;
};

// C tiles 0..kTiles-1 += A · B over `steps` K steps, B from the panel's first
// of these steps. Two steps per iteration so A and B alternate between tiles
// 4/5 and 6/7 (the intrinsics take tile numbers as literals).
#define TILEKIT_NARROW_TILE(T, A_TILE, B_TILE)                                      \
  if constexpr (kTiles > T) {                                                       \
    _tile_loadd(A_TILE, a.a + T * a.tile_bytes, a.stride);                          \
    _tile_dpbf16ps(T, A_TILE, B_TILE);                                              \
  }
#define TILEKIT_NARROW_STEP(B_TILE, A0, A1) \
  _tile_loadd(B_TILE, b, kTileBytes);       \
  TILEKIT_NARROW_TILE(0, A0, B_TILE) TILEKIT_NARROW_TILE(1, A1, B_TILE)

template <int kTiles>
TILEKIT_AMX_TARGET inline void NarrowKLoop(NarrowA a, const unsigned char* b, size_t steps, uintptr_t b_end,
                                           bool prefetch_b) {
  static_assert(kTiles >= 1 && kTiles <= static_cast<int>(kNarrowMaxRowTiles), "C tiles 0-1");
  size_t s = 0;
  for (; s + 2 <= steps; s += 2) {
    if (prefetch_b) {
      const uintptr_t ahead = reinterpret_cast<uintptr_t>(b) + kNarrowPrefetchAhead;
      for (size_t l = 0; l < 2 * kNarrowStepBytes && ahead + l < b_end; l += 64) {
        _mm_prefetch(reinterpret_cast<const char*>(ahead + l), _MM_HINT_T0);
      }
    }
    TILEKIT_NARROW_STEP(6, 4, 5)
    a.a += a.step_bytes;
    b += kNarrowStepBytes;
    TILEKIT_NARROW_STEP(7, 5, 4)
    a.a += a.step_bytes;
    b += kNarrowStepBytes;
  }
  if (s < steps) {
    TILEKIT_NARROW_STEP(6, 4, 5)
  }
}
#undef TILEKIT_NARROW_TILE
#undef TILEKIT_NARROW_STEP

// Tiles of `tile_rows` rows: C 0-1 (16 fp32 wide), A 4-5 (32 bf16), B 6-7.
inline TileConfig NarrowConfig(size_t tile_rows) {
  TileConfig cfg;
  cfg.set(0, tile_rows, kTileBytes);
  cfg.set(1, tile_rows, kTileBytes);
  cfg.set(4, tile_rows, kTileBytes);
  cfg.set(5, tile_rows, kTileBytes);
  cfg.set(6, kTileRows, kTileBytes);
  cfg.set(7, kTileRows, kTileBytes);
  return cfg;
}

template <int kTiles>
TILEKIT_AMX_TARGET inline void ZeroNarrowC() {
  _tile_zero(0);
  if constexpr (kTiles > 1) _tile_zero(1);
}

template <int kTiles>
TILEKIT_AMX_TARGET inline void StoreNarrowC(float* out) {
  constexpr size_t stride = 2 * kNarrowNR * sizeof(float);
  char* p = reinterpret_cast<char*>(out);
  _tile_stored(0, p, stride);
  if constexpr (kTiles > 1) _tile_stored(1, p + kTileRows * stride, stride);
}

// Converts K steps [s0, s0 + steps) of a block's `rows` rows (its tiles back
// to back, so row r of the block is at r · 32 within a step) into ws as
// [step][row][32] bf16, zero past K. Each row is its own stream, prefetched
// kNarrowConvertAhead bytes ahead (not past its end).
template <typename TA>
TILEKIT_AMX_TARGET inline void ConvertNarrowChunk(const TA* a, size_t lda, size_t k, size_t rows, size_t s0,
                                                  size_t steps, bf16* ws) {
  constexpr size_t kStepBytes = kStepK * sizeof(TA);
  for (size_t r = 0; r < rows; ++r) {
    const TA* src = a + r * lda;
    const uintptr_t row_end = reinterpret_cast<uintptr_t>(src + k);
    for (size_t s = 0; s < steps; ++s) {
      const size_t k0 = (s0 + s) * kStepK;
      const uintptr_t ahead = reinterpret_cast<uintptr_t>(src + k0) + kNarrowConvertAhead;
      for (size_t l = 0; l < kStepBytes && ahead + l < row_end; l += 64) {
        _mm_prefetch(reinterpret_cast<const char*>(ahead + l), _MM_HINT_T0);
      }
      _mm512_store_si512(ws + (s * rows + r) * kStepK, ARowStep(src + k0, std::min(kStepK, k - k0)));
    }
  }
}

// One block: rows [row0, row0 + kTiles · tile_rows), C left in `out` (row
// stride 2 · kNarrowNR floats). tile_rows is 16 except for a share's last
// rows (M mod 16), which run as one tile under their own configuration.
template <int kTiles, typename TA>
TILEKIT_AMX_TARGET void NarrowBlock(const GemmPlan& p, size_t row0, size_t tile_rows, bool prefetch_b, float* out,
                                    bf16* chunk) {
  const size_t k_steps = div_ceil(p.k, kStepK);
  const unsigned char* b = p.b;
  const uintptr_t b_end = reinterpret_cast<uintptr_t>(p.b) + p.panel_bytes;  // prefetch no further
  const TA* a = static_cast<const TA*>(p.a) + row0 * p.lda;
  const size_t chunk_tile = tile_rows * kTileBytes;
  ZeroNarrowC<kTiles>();
  size_t s = 0;
  if constexpr (sizeof(TA) == sizeof(bf16)) {
    // Whole steps in place; the K tail through the chunk.
    const size_t whole = p.k / kStepK;
    const size_t stride = p.lda * sizeof(bf16);
    NarrowKLoop<kTiles>(NarrowA{reinterpret_cast<const unsigned char*>(a), stride, tile_rows * stride,
                                kStepK * sizeof(bf16)},
                        b, whole, b_end, prefetch_b);
    s = whole;
  }
  for (; s < k_steps; s += kNarrowChunkSteps) {
    const size_t steps = std::min(kNarrowChunkSteps, k_steps - s);
    ConvertNarrowChunk(a, p.lda, p.k, kTiles * tile_rows, s, steps, chunk);
    tile_load_barrier();
    NarrowKLoop<kTiles>(NarrowA{reinterpret_cast<const unsigned char*>(chunk), kTileBytes, chunk_tile,
                                kTiles * chunk_tile},
                        b + s * kNarrowStepBytes, steps, b_end, prefetch_b);
  }
  StoreNarrowC<kTiles>(out);
}

template <typename TA>
TILEKIT_AMX_TARGET void NarrowRange(const GemmPlan& p, size_t r0, size_t r1, float* ws) {
  constexpr size_t kRowTiles = NarrowRowTiles<TA>();
  float* out = ws;
  bf16* chunk = reinterpret_cast<bf16*>(ws + kNarrowOutFloats);
  // Columns 16-31 of `out` are read by the epilogue (two vectors per row) but
  // never stored: give them a defined value.
  std::memset(out, 0, kNarrowOutFloats * sizeof(float));
  const auto epilogue_tile = TILEKIT_DISPATCH_ON(p.isa, ::tilekit::detail::GemmEpilogueTile);
  const SegmentPlan& seg = p.segments[0];
  bool prefetch_b = true;  // the first block meets the weights cold
  size_t r = r0;
  if (r1 - r0 >= kTileRows) {
    load_tile_config(NarrowConfig(kTileRows));
    for (size_t full = (r1 - r0) / kTileRows; full;) {
      const size_t tiles = std::min(kRowTiles, full);
      if (tiles == 2) {
        NarrowBlock<2, TA>(p, r, kTileRows, prefetch_b, out, chunk);
      } else {
        NarrowBlock<1, TA>(p, r, kTileRows, prefetch_b, out, chunk);
      }
      epilogue_tile(out, 2 * kNarrowNR, tiles * kTileRows, seg, r, 0, seg.n, p.c_bf16);
      r += tiles * kTileRows;
      full -= tiles;
      prefetch_b = false;
    }
  }
  if (r < r1) {
    load_tile_config(NarrowConfig(r1 - r));
    NarrowBlock<1, TA>(p, r, r1 - r, prefetch_b, out, chunk);
    epilogue_tile(out, 2 * kNarrowNR, r1 - r, seg, r, 0, seg.n, p.c_bf16);
  }
}

// M = 1: one-row tiles leave AMX waiting on the B tile loads (6.9 GB/s of
// weights at K = 11008, against 12.4 for the dot kernel of the other paths),
// so a vdpbf16ps GEMV reads the same panel: each 64-byte pair row is 16
// columns × one K pair, met by one broadcast A pair. K is cut into
// kNarrowGemvStreams equal parts walked side by side, each its own memory
// stream and accumulator (one core reads memory faster from several streams),
// summed in a fixed order at the end. A is rounded to bf16 as the tiles would.
constexpr size_t kNarrowGemvStreams = 8;

template <typename TA>
TILEKIT_AMX_TARGET void NarrowGemv(const GemmPlan& p, float* ws) {
  const size_t k_pad = round_up(p.k, kStepK), pairs = k_pad / 2;
  float* out = ws;
  const uint32_t* a_pairs = reinterpret_cast<const uint32_t*>(ws + kNarrowOutFloats);
  ARowToBf16(static_cast<const TA*>(p.a), p.k, reinterpret_cast<bf16*>(ws + kNarrowOutFloats));
  const uintptr_t b_end = reinterpret_cast<uintptr_t>(p.b) + p.panel_bytes;  // prefetch no further
  const size_t per_stream = div_ceil(pairs, kNarrowGemvStreams);
  __m512 acc[kNarrowGemvStreams];
  for (size_t g = 0; g < kNarrowGemvStreams; ++g) acc[g] = _mm512_setzero_ps();
  for (size_t i = 0; i < per_stream; ++i) {
#pragma GCC unroll 8
    for (size_t g = 0; g < kNarrowGemvStreams; ++g) {
      const size_t q = g * per_stream + i;
      if (q >= pairs) continue;  // the last stream is the shorter one
      const unsigned char* row = p.b + q * kTileBytes;
      const uintptr_t ahead = reinterpret_cast<uintptr_t>(row) + kAmxStreamAhead;
      if (ahead < b_end) _mm_prefetch(reinterpret_cast<const char*>(ahead), _MM_HINT_T0);
      const __m512bh a = reinterpret_cast<__m512bh>(_mm512_set1_epi32(static_cast<int>(a_pairs[q])));
      acc[g] = _mm512_dpbf16_ps(acc[g], reinterpret_cast<__m512bh>(_mm512_loadu_si512(row)), a);
    }
  }
  static_assert(kNarrowGemvStreams == 8, "the sum below adds 8 accumulators");
  const __m512 sum = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])),
                                   _mm512_add_ps(_mm512_add_ps(acc[4], acc[5]), _mm512_add_ps(acc[6], acc[7])));
  std::memset(out, 0, 2 * kNarrowNR * sizeof(float));
  _mm512_storeu_ps(out, sum);
  TILEKIT_DISPATCH_ON(p.isa, ::tilekit::detail::GemmEpilogueTile)(out, 2 * kNarrowNR, 1, p.segments[0], 0, 0,
                                                                  p.segments[0].n, p.c_bf16);
}

// One thread's share: rows [r0, r1) of the one panel (the GemmRangeFn contract).
TILEKIT_AMX_TARGET inline void amx_narrow_range_fn(const GemmPlan& p, size_t r0, size_t r1, size_t p0, size_t p1,
                                                   float* ws) {
  if (p0 >= p1) return;
  if (p.m == 1) return p.a_bf16 ? NarrowGemv<bf16>(p, ws) : NarrowGemv<float>(p, ws);
  return p.a_bf16 ? NarrowRange<bf16>(p, r0, r1, ws) : NarrowRange<float>(p, r0, r1, ws);
}

// bf16 weights that are one narrow matrix (as the dot-product kernel would
// take them on other paths).
inline bool amx_narrow_layout(Isa isa, WeightType type, const ::tilekit::detail::PackShape& shape, PanelLayout* l) {
  if (type != WeightType::kBf16 || ::tilekit::detail::vector_lanes(isa) != 16 ||
      !::tilekit::detail::is_narrow(shape, kAmxNR)) {
    return false;
  }
  l->kind = PanelKind::kAmx;
  l->lanes = 16;
  l->nr = kNarrowNR;
  l->kr = 2;
  l->k_align = kStepK;
  l->type = type;
  l->a_bf16 = true;
  return true;
}

inline size_t amx_narrow_mr(Isa) { return kNarrowShareRows; }
inline ::tilekit::detail::GemmRangeFn amx_narrow_range(Isa, const GemmPlan&) { return &amx_narrow_range_fn; }

inline constexpr ::tilekit::detail::GemmKernel kAmxNarrowGemm{
    "amx_narrow",      &amx_path,        &amx_narrow_layout, &amx_offset, &amx_narrow_mr, &amx_narrow_block,
    &amx_narrow_workspace_floats, &amx_narrow_range, /*rows_first=*/true};

}  // namespace arch
}  // namespace tilekit

#endif  // TILEKIT_ARCH_X86
#endif  // TILEKIT_GEMM_AMX_NARROW_H_

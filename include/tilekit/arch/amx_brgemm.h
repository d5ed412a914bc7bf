// The AMX micro-kernel and the batch-reduce GEMM built on it: the one
// tile-level contract of the AMX GEMM (gemm/amx_gemm.h), exposed as amx_brgemm for
// flash attention (Q·Kᵀ and P·V blocks: head_dim and KV blocks of 32s).
//
//   amx_brgemm: C[m][n] += Σᵢ Aᵢ[m][k] · Bᵢ[k][n]     (m, n <= 32; k % 32 == 0)
//
// Aᵢ: bf16, row-major, m rows of k values, row stride ldaᵢ elements (any ld >= k).
// Bᵢ: bf16 in the kAmx panel layout (gemm/amx_gemm.h): k/2 rows of VNNI
//     pairs, each 128 bytes = 32 columns × 2 bf16, element (kk, j) at
//     Bᵢ[(kk/2)·64 + 2j + kk%2]. A weight panel of PackedWeights, offset by
//     pc·32 elements for K rows from pc, is such a B. Columns >= n are not read.
// C:  fp32, row-major, row stride ldc elements; read, accumulated, written back.
// Accumulation is fp32 (tdpbf16ps: bf16 products are exact in fp32; denormal
// inputs and outputs are flushed to zero by the hardware).
//
// Register blocking: C is up to 2 × 2 tiles of 16 × 16 fp32 (m <= 32, n <= 32),
// all four live across the whole batch; A takes one tile per row tile and B one
// per column tile, so each K step of 32 does 4 tdpbf16ps (4 × 16 cycles) for 4
// tile loads, which the tiles' ~16 cycles of slack per load can overlap.
#ifndef TILEKIT_ARCH_AMX_BRGEMM_H_
#define TILEKIT_ARCH_AMX_BRGEMM_H_

#include <cstddef>
#include <cstdint>

#include "tilekit/arch/amx.h"
#include "tilekit/base/bf16.h"
#include "tilekit/base/status.h"
#include "tilekit/cpu/isa.h"

namespace tilekit {
namespace arch {

// Largest m and n of one call: 2 × 2 tiles of 16 × 16.
constexpr size_t kBrgemmMaxBlock = 32;

// One batch element: an A block (row-major, lda elements per row) and the B
// block it multiplies (kAmx panel layout).
struct BrgemmItem {
  const bf16* a = nullptr;
  size_t lda = 0;
  const bf16* b = nullptr;
};

#if TILEKIT_ARCH_X86

// One VNNI pair row of B (two K rows of 32 columns), and the bytes of B per K
// step: 16 pair rows.
constexpr size_t kBPairRowBytes = 2 * kTileBytes;
constexpr size_t kBStepBytes = kTileRows * kBPairRowBytes;

// Where the A tiles of one K loop are. Row tile 1 starts row_tile_bytes after
// row tile 0; each K step advances both by step_bytes.
struct ATiles {
  const unsigned char* a;
  size_t stride;          // bytes between the rows of a tile
  size_t row_tile_bytes;  // from row tile 0 to row tile 1
  size_t step_bytes;      // from one K step to the next
};

// What to pull into L2 while a K loop runs (p null: nothing): per K step,
// `bytes` split over `streams` regions `stride` bytes apart, each read front to
// back. The GEMM uses it for the next panel's B slice, so the next slice
// arrives from memory while this one is computed and a tile load never waits
// for DRAM. Several regions at once, because one core draws memory faster from
// several sequential streams than from one: a whole 256 KB panel (M <= 32)
// prefetched as one stream came at 7.6-9.0 GB/s, as 8 at 12.8-13.9 GB/s.
struct L2Prefetch {
  const unsigned char* p = nullptr;
  size_t bytes = 0;
  size_t streams = 1, stride = 0;
};

// C tiles (already loaded or zeroed) += A · B over `steps` K steps of 32.
// kRows / kCols: row / column tiles of C in use (1 or 2 each). B columns 0-15
// are the first 64 bytes of each 128-byte pair row, columns 16-31 the next 64.
// Load order: each B tile has one tdpbf16ps (16 cycles) between its last use
// and its reload, each A tile two, so the loads that come from L2 are the A
// tiles (the GEMM keeps the B slice in L1). Software prefetch of A into L1
// measured slower than none: the hardware streams the contiguous A block.
template <int kRows, int kCols>
TILEKIT_AMX_TARGET inline void TileKLoop(ATiles a, const unsigned char* b, size_t steps, L2Prefetch next) {
  for (size_t s = 0; s < steps; ++s) {
    const size_t per_stream = next.bytes / next.streams;
    for (size_t i = 0; next.p && i < next.streams; ++i) {
      for (size_t l = 0; l < per_stream; l += 64) {
        _mm_prefetch(reinterpret_cast<const char*>(next.p + i * next.stride + l), _MM_HINT_T1);
      }
    }
    next.p = next.p ? next.p + per_stream : nullptr;
    _tile_loadd(4, a.a, a.stride);
    _tile_loadd(6, b, kBPairRowBytes);
    _tile_dpbf16ps(0, 4, 6);
    if constexpr (kCols == 2) {
      _tile_loadd(7, b + kTileBytes, kBPairRowBytes);
      _tile_dpbf16ps(1, 4, 7);
    }
    if constexpr (kRows == 2) {
      _tile_loadd(5, a.a + a.row_tile_bytes, a.stride);
      _tile_dpbf16ps(2, 5, 6);
      if constexpr (kCols == 2) _tile_dpbf16ps(3, 5, 7);
    }
    a.a += a.step_bytes;
    b += kBStepBytes;
  }
}

// C tiles <-> memory (fp32, row stride `stride` bytes, row tile 1 at +16 rows).
template <int kRows, int kCols>
TILEKIT_AMX_TARGET inline void ZeroCTiles() {
  _tile_zero(0);
  if constexpr (kCols == 2) _tile_zero(1);
  if constexpr (kRows == 2) {
    _tile_zero(2);
    if constexpr (kCols == 2) _tile_zero(3);
  }
}
template <int kRows, int kCols>
TILEKIT_AMX_TARGET inline void LoadCTiles(const float* c, size_t stride) {
  const char* p = reinterpret_cast<const char*>(c);
  _tile_loadd(0, p, stride);
  if constexpr (kCols == 2) _tile_loadd(1, p + kTileBytes, stride);
  if constexpr (kRows == 2) {
    _tile_loadd(2, p + kTileRows * stride, stride);
    if constexpr (kCols == 2) _tile_loadd(3, p + kTileRows * stride + kTileBytes, stride);
  }
}
template <int kRows, int kCols>
TILEKIT_AMX_TARGET inline void StoreCTiles(float* c, size_t stride) {
  char* p = reinterpret_cast<char*>(c);
  _tile_stored(0, p, stride);
  if constexpr (kCols == 2) _tile_stored(1, p + kTileBytes, stride);
  if constexpr (kRows == 2) {
    _tile_stored(2, p + kTileRows * stride, stride);
    if constexpr (kCols == 2) _tile_stored(3, p + kTileRows * stride + kTileBytes, stride);
  }
}

namespace detail {

template <int kRows, int kCols>
TILEKIT_AMX_TARGET void BrgemmTiles(size_t k, const BrgemmItem* batch, size_t count, float* c, size_t ldc) {
  LoadCTiles<kRows, kCols>(c, ldc * sizeof(float));
  for (size_t i = 0; i < count; ++i) {
    const size_t stride = batch[i].lda * sizeof(bf16);
    const ATiles a{reinterpret_cast<const unsigned char*>(batch[i].a), stride, kTileRows * stride, kTileBytes};
    TileKLoop<kRows, kCols>(a, reinterpret_cast<const unsigned char*>(batch[i].b), k / kStepK, L2Prefetch());
  }
  StoreCTiles<kRows, kCols>(c, ldc * sizeof(float));
}

// Tiles shaped to the block: rows and bytes per row cut at m and n, so no tile
// load or store touches memory outside A, B or C.
inline TileConfig BrgemmConfig(size_t m, size_t n) {
  TileConfig cfg;
  const size_t rows[2] = {m < kTileRows ? m : kTileRows, m > kTileRows ? m - kTileRows : 0};
  const size_t cols[2] = {n < kTileRows ? n : kTileRows, n > kTileRows ? n - kTileRows : 0};
  for (int i = 0; i < 2; ++i) {
    if (rows[i]) cfg.set(kTileA + i, rows[i], kTileBytes);
    if (cols[i]) cfg.set(kTileB + i, kTileRows, cols[i] * sizeof(float));
    for (int j = 0; j < 2; ++j) {
      if (rows[i] && cols[j]) cfg.set(kTileC + 2 * i + j, rows[i], cols[j] * sizeof(float));
    }
  }
  return cfg;
}

}  // namespace detail
#endif  // TILEKIT_ARCH_X86

// C[m][n] += Σᵢ batch[i].a · batch[i].b (see the top of this file). Returns
// kUnsupported off the amx path (AMX absent, refused by the OS, or capped by
// TILEKIT_MAX_ISA / set_max_isa), and an argument error for m or n outside
// [1, 32], k not a multiple of 32, lda < k or a null pointer. count = 0 or k = 0
// leaves C as it is.
inline Status amx_brgemm(size_t m, size_t n, size_t k, const BrgemmItem* batch, size_t count, float* c, size_t ldc) {
  if (cpu::active_isa() != Isa::kAmx) {
    return fail(Status::kUnsupported, "amx_brgemm: the active path is %s, not amx", isa_name(cpu::active_isa()));
  }
  if (m == 0 || m > kBrgemmMaxBlock || n == 0 || n > kBrgemmMaxBlock) {
    return fail(Status::kInvalidArgument, "amx_brgemm: block is %zu x %zu, must be 1..32 x 1..32", m, n);
  }
  if (k % 32 != 0) return fail(Status::kInvalidArgument, "amx_brgemm: k=%zu is not a multiple of 32", k);
  if (!c || (count && !batch)) return fail(Status::kNullPointer, "amx_brgemm: %s is null", c ? "batch" : "C");
  if (ldc < n) return fail(Status::kBadLeadingDim, "amx_brgemm: ldc=%zu < n=%zu", ldc, n);
  for (size_t i = 0; i < count && k; ++i) {
    if (!batch[i].a || !batch[i].b) return fail(Status::kNullPointer, "amx_brgemm: batch[%zu] has a null block", i);
    if (batch[i].lda < k) {
      return fail(Status::kBadLeadingDim, "amx_brgemm: batch[%zu] has lda=%zu < k=%zu", i, batch[i].lda, k);
    }
  }
  if (count == 0 || k == 0) return Status::kOk;
#if TILEKIT_ARCH_X86
  const TileConfig cfg = detail::BrgemmConfig(m, n);
  load_tile_config(cfg);
  const bool two_rows = m > kTileRows, two_cols = n > kTileRows;
  if (two_rows) {
    two_cols ? detail::BrgemmTiles<2, 2>(k, batch, count, c, ldc) : detail::BrgemmTiles<2, 1>(k, batch, count, c, ldc);
  } else {
    two_cols ? detail::BrgemmTiles<1, 2>(k, batch, count, c, ldc) : detail::BrgemmTiles<1, 1>(k, batch, count, c, ldc);
  }
#endif
  return Status::kOk;
}

}  // namespace arch
}  // namespace tilekit

#endif  // TILEKIT_ARCH_AMX_BRGEMM_H_

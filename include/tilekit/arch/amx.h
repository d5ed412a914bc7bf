// AMX tile state as tilekit's kernels use it: the tile configuration they
// load, and the per-thread lifetime of the tile registers. x86-64 only; the OS
// grant (arch_prctl) is requested once by cpu/features.h (cpu::features().amx()).
//
// A thread's tiles are configured at the start of every tilekit AMX call, not
// once per thread: another library on the same thread may have reconfigured or
// released them in between, and ldtilecfg costs little next to one K loop.
// What happens once per thread is the release: a thread that used tiles runs
// tilerelease when it ends, so no tile state outlives it. Callers that keep
// their own tiles live across a tilekit call must reload their configuration
// afterwards (the same contract as oneDNN's AMX kernels).
#ifndef TILEKIT_ARCH_AMX_H_
#define TILEKIT_ARCH_AMX_H_

#include "tilekit/cpu/features.h"

#if TILEKIT_ARCH_X86

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

// Functions that use AMX or AVX-512 intrinsics are compiled for those ISAs one
// by one, so the rest of a translation unit keeps the user's -march; they are
// called only when cpu::active_isa() is amx.
#define TILEKIT_AMX_TARGET \
  __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))

namespace tilekit {
namespace arch {

// Tile numbers of the 2 × 2 register blocking every tilekit AMX kernel uses:
// four fp32 C tiles (row tile i, column tile j at kTileC + 2i + j), two A tiles
// (one per row tile) and two B tiles (one per column tile). Palette 1 has eight.
// The intrinsics take these as literals (GCC pastes the number into the asm):
// C 0-3, A 4-5, B 6-7.
constexpr int kTileC = 0, kTileA = 4, kTileB = 6;

// A tile holds at most 16 rows of 64 bytes: 16 fp32 C columns, or 32 bf16 A
// values of K (16 VNNI pairs of B rows).
constexpr size_t kTileRows = 16;
constexpr size_t kTileBytes = 64;
constexpr size_t kStepK = 32;  // K consumed by one tdpbf16ps

// The 64-byte operand of ldtilecfg. Unused tiles stay zero (unconfigured).
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};  // bytes per row
  uint8_t rows[16] = {};

  void set(int tile, size_t tile_rows, size_t bytes_per_row) {
    rows[tile] = static_cast<uint8_t>(tile_rows);
    colsb[tile] = static_cast<uint16_t>(bytes_per_row);
  }
};
static_assert(sizeof(TileConfig) == 64, "ldtilecfg reads 64 bytes");

namespace detail {

TILEKIT_AMX_TARGET inline void release_tiles() { _tile_release(); }

// One per thread that ran an AMX kernel: releases the tile state at thread exit.
struct ThreadTiles {
  bool used = false;
  ~ThreadTiles() {
    if (used) release_tiles();
  }
};

}  // namespace detail

// Configures this thread's tiles for the instructions that follow, and arranges
// their release when the thread ends. The asm operand is the whole object (GCC
// 12's _tile_loadconfig declares only 8 bytes of it read, so stores to the rest
// of a configuration built at run time could be dropped), and the memory
// clobber orders every earlier store before the tile loads that follow: GCC's
// _tile_loadd has no memory operand, so without it the compiler may sink the
// caller's stores to A, B or C past the loads that read them.
TILEKIT_AMX_TARGET inline void load_tile_config(const TileConfig& cfg) {
  static thread_local detail::ThreadTiles tiles;
  tiles.used = true;
  __asm__ volatile("ldtilecfg %0" ::"m"(cfg) : "memory");
}

// Orders the stores before it (e.g. packing an A block) before later tile loads.
inline void tile_load_barrier() { __asm__ volatile("" ::: "memory"); }

}  // namespace arch
}  // namespace tilekit

#endif  // TILEKIT_ARCH_X86
#endif  // TILEKIT_ARCH_AMX_H_

// The contract of the Arm BFMMLA micro-kernel, shared by its NEON and SVE
// builds (arm_bfmmla_neon.h, arm_bfmmla_sve.h), the GEMM driver
// (arm_bf16_gemm.h) and the batch-reduce GEMM (arm_bf16_brgemm.h).
//
// BFMMLA multiplies a 2 × 4 bf16 block of A by a 4 × 2 bf16 block of B into a
// 2 × 2 fp32 tile, per 128-bit segment (one on NEON, VL/128 on SVE). So:
//   kr = 4   K advances in blocks of 4; packed A and B are zero-padded to it.
//   B        a kArmBfmmla panel (gemm/packed_weights.h): per k-block, nr
//            columns as nr/2 column pairs of 8 bf16; a B vector holds VL/128
//            consecutive pairs, so one k-block of a panel is exactly 4 vectors
//            and nr = 8·VL/128 = 2 × the fp32 lanes (8 on NEON).
//   A        packed by PackA (arm_bfmmla.h): per k-block, row pairs of 8 bf16
//            (row 2i's 4 k, then row 2i+1's 4 k), the quadword BFMMLA's A
//            operand holds, broadcast to every segment on SVE.
//   mr = 8   4 row pairs × 4 B vectors = 16 accumulators, each a 2 × 2 tile
//            per segment. With 4 B registers and 1 A register that is 21 of
//            the 32 vector registers, and 16 independent BFMMLAs per k-block
//            cover its latency (4-6 cycles) at up to 2 per cycle. Their 8
//            loads (4 B, 4 A) per k-block are not the bottleneck on cores with
//            2-3 load ports, so a taller tile (mr = 12 fits in 29 registers)
//            would add register pressure, not speed.
#ifndef TILEKIT_ARCH_ARM_BFMMLA_TILE_H_
#define TILEKIT_ARCH_ARM_BFMMLA_TILE_H_

#include <cstddef>
#include <cstdint>

namespace tilekit {
namespace arch {

constexpr size_t kBfmmlaKR = 4;
constexpr size_t kBfmmlaMR = 8;
constexpr size_t kBfmmlaMaxRowPairs = kBfmmlaMR / 2;
// bf16 elements of one packed A row pair per k-block.
constexpr size_t kBfmmlaPairElems = 2 * kBfmmlaKR;

// C (rows × nr fp32, row stride ldc) = [C +] A · B over `kblocks` k-blocks, A
// packed for ceil(rows / 2) row pairs (the tile function's row-pair count),
// B a panel slice. Only rows [0, rows) of C are read or written: a tile with an
// odd row count never touches the row past it.
using BfmmlaTileFn = void (*)(size_t kblocks, const uint16_t* a, const uint16_t* b, float* c, size_t ldc,
                              size_t rows, bool accumulate);

// One build of the micro-kernel: tile[i] computes i + 1 row pairs.
struct BfmmlaKernel {
  BfmmlaTileFn tile[kBfmmlaMaxRowPairs];
  size_t nr;  // panel columns this build reads: 2 × its fp32 lanes
};

}  // namespace arch
}  // namespace tilekit

#endif  // TILEKIT_ARCH_ARM_BFMMLA_TILE_H_

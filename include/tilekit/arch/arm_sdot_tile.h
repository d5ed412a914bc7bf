// The contract of the Arm int8 dot-product micro-kernel (SDOT), shared by its
// NEON and SVE builds (arm_sdot_neon.h, arm_sdot_sve.h) and the quantized GEMM
// loops (gemm/quant_sdot.h).
//
// SDOT adds to each 32-bit lane of an accumulator the dot product of 4 int8
// of one operand with 4 int8 of the other; its indexed form takes the second
// operand's 4 bytes from one 32-bit lane of each 128-bit segment (one segment
// on NEON, VL/128 on SVE). So:
//   kr = 4   K advances in steps of 4 values.
//   B        a K block of a quantized panel (gemm/quant.h), moved by MoveSlice
//            to the dot product's order: per step of 4 K, each of the nr
//            columns' 4 values in one 32-bit lane, columns in order, so a step
//            is 2 vectors (nr = 2 × the 32-bit lanes: 8 on NEON, VL/16 on
//            SVE). Signed: stored int8 values lose their zero point 128 (XOR
//            0x80), int4 nibbles are widened to bytes minus 8. After each
//            sub-group's sg / 4 steps, its nr fp32 weight scales, so the
//            kernel reads the slice front to back.
//   A        int8, quantized per row and sub-group (gemm/quant_act.h), in
//            tiles of 4 rows: per step of 4 K, the 4 rows' 4 values (16
//            bytes, one segment, repeated in every segment on SVE), so row r
//            is lane r of the indexed SDOT; per sub-group, the 4 rows' scales
//            (one segment too). Rows past M are zeros with scale 0.
//   mr = 4   4 rows × 2 vectors of int32 sums (one sub-group) and as many
//            fp32 results (the whole K block): 16 registers, with 1 A and 2 B
//            19 of the 32. A step is 8 independent SDOTs for 3 loads: on
//            cores with two vector pipes, 4 SDOTs in flight per pipe cover a
//            latency of up to 4 cycles. The indexed SDOT takes its row from a
//            16-byte segment, so tiles grow 4 rows at a time, and 8 rows would
//            need 32 accumulators (or the fp32 results in L1 between
//            sub-groups, as the x86 kernel keeps them: not measured on Arm
//            hardware, which this project has not had).
// Every sum of a sub-group is exact in int32 and converts to fp32 exactly
// (|Σ| <= 256 · 128 · 127 < 2^23; GGUF int8 values may be -128), then is
// scaled in fp32: c += (float(Σ) · w_scale) · a_scale, fused, one sub-group at
// a time in K order: the arithmetic of the x86 kernel (gemm/quant_vnni.h), so
// the two give the same bits.
#ifndef TILEKIT_ARCH_ARM_SDOT_TILE_H_
#define TILEKIT_ARCH_ARM_SDOT_TILE_H_

#include <cstddef>
#include <cstdint>

namespace tilekit {
namespace arch {

constexpr size_t kSdotKR = 4;
constexpr size_t kSdotMR = 4;
// Bytes of one A step of a tile (4 rows × 4 K).
constexpr size_t kSdotAStep = kSdotMR * kSdotKR;

// One tile over one K block: `subgroups` sub-groups of sg values. b: the
// moved slice from the block's first sub-group; a: the tile's A from the
// block's first step; a_scale: the tile's 4 row scales per sub-group from the
// block's first; c: kRows rows × nr fp32 results (row stride nr), read unless
// `first` (the first K block: they start at zero) and written back.
struct SdotTileArgs {
  const int8_t* b;
  const int8_t* a;
  const float* a_scale;
  size_t subgroups, sg;
  float* c;
  bool first;
};
using SdotTileFn = void (*)(const SdotTileArgs& t);

// Rows [k0, k1) of a quantized panel (whole sub-groups of sg values, within
// the layout's groups of g) moved to the B order above, into `out`:
// (k1 - k0) · nr bytes of values and nr fp32 scales per sub-group.
using SdotMoveFn = void (*)(const uint8_t* panel, size_t g, size_t sg, size_t k0, size_t k1, int8_t* out);

// One build of the micro-kernel: tile[i] computes i + 1 rows of a tile.
struct SdotKernel {
  SdotTileFn tile[kSdotMR];
  SdotMoveFn move_int8, move_int4;
  size_t nr;  // panel columns this build reads: 2 × its 32-bit lanes
};

// Bytes of a moved slice of k values in sub-groups of sg, for panels of nr.
inline size_t sdot_slice_bytes(size_t k, size_t sg, size_t nr) { return k * nr + k / sg * nr * sizeof(float); }

}  // namespace arch
}  // namespace tilekit

#endif  // TILEKIT_ARCH_ARM_SDOT_TILE_H_

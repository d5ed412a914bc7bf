// Activations quantized to int8 for the integer dot-product kernels of
// quantized weights (gemm/quant_vnni.h on x86, gemm/quant_sdot.h on Arm): the
// rule PanelLayout::a_int8_min_rows documents, in one place for both.
//
// For calls of M >= kInt8ActMinRows rows, each row of A is cut into
// sub-groups of sg K values (int8_act_subgroup: the weights' group, or a
// divisor of it up to 256) and quantized dynamically and symmetrically,
// scale = max|a| / 127 and q = round(a / scale) to nearest even, as a division
// (so the rule is exactly the documented one). The kernels sum q_a · q_w of a
// sub-group exactly in int32, then scale it by the weight's and the row's
// scales in fp32. A NaN or infinite value makes its sub-group's scale NaN, so
// the row's outputs are NaN, as fp32 arithmetic would make them.
//
// The quantizer itself is per-target code (gemm/quant_act-inl.h, exported in
// gemm/exports.h); this header is target-independent (no Highway).
#ifndef TILEKIT_GEMM_QUANT_ACT_H_
#define TILEKIT_GEMM_QUANT_ACT_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "tilekit/base/size_math.h"
#include "tilekit/cpu/features.h"
#include "tilekit/gemm/packed_weights.h"
#include "tilekit/gemm/plan.h"

namespace tilekit {
namespace detail {

// From this many rows, quantizing A and moving each weight slice to the dot
// product's order cost less than the integer products save; fewer rows
// (decode) keep the weight-only kernels, which read the weights once as they
// are.
constexpr size_t kInt8ActMinRows = 8;
// Fewer rows: the weight-only GEMV of gemm/quant-inl.h streams the weights
// once, tiles of up to 4 rows sharing each widened weight, on every path.
constexpr size_t kQuantGemvMaxRows = kInt8ActMinRows - 1;
// K values per int32 sum and activation scale: at most 256, so every sum
// (|q_a| <= 127, stored weights < 256 with their zero point) stays below
// 255 · 127 · 256 < 2^24 and converts to fp32 exactly.
constexpr size_t kInt8ActMaxSubgroup = 256;

// The sub-group of weights of group g: g itself, or for one group of all of K
// the largest multiple of 4 up to 256 that divides it.
inline size_t int8_act_subgroup(size_t g) {
  if (g <= kInt8ActMaxSubgroup) return g;
  size_t sg = kInt8ActMaxSubgroup;
  while (g % sg) sg -= 4;  // g is a multiple of 8: ends at 8 at worst
  return sg;
}

// A kernel record's layout: it quantizes A by this rule from kInt8ActMinRows.
inline void set_int8_act(PanelLayout* l) {
  l->a_int8_min_rows = static_cast<uint32_t>(kInt8ActMinRows);
  l->a_group = static_cast<uint32_t>(int8_act_subgroup(l->group));
}

// Where QuantizeActInt8 writes rows [0, rows) of A, each padded with zeros to
// subgroups · sg values: row r's int8 values at q + r · q_stride, its scale
// and the sum of its int8 values per sub-group j at [r · meta_stride + j]
// (sum may be null: kernels with signed weights need no zero-point term).
struct Int8Rows {
  int8_t* q;
  size_t q_stride;
  float* scale;
  int32_t* sum;
  size_t meta_stride;
  size_t sg, subgroups;
};

// Blocking of the integer kernels for M >= kInt8ActMinRows: K blocks of whole
// sub-groups, at most kc_max values (the moved weight slice stays in L1); rows
// in blocks whose int8 A (mc × Kp bytes) fills half of L2, a multiple of the
// tile height mr. Each row block moves every weight slice once, so the blocks
// are of equal size, the fewest that fit (128 rows were 126 + 2, the second
// block moving all the weights again for two rows).
inline void int8_act_block(GemmPlan& p, const PanelLayout& l, size_t mr, size_t kc_max) {
  const size_t l2 = cpu::features().l2 ? cpu::features().l2 : (size_t{1} << 20);
  const size_t kp = l.padded_k(p.k), sg = l.a_group;
  p.pack_a = true;
  p.nc_panels = 1;
  p.kc = std::min(kp, std::max(sg, kc_max / sg * sg));
  const size_t mc_max = std::max(mr, l2 / 2 / std::max<size_t>(kp, 1) / mr * mr);
  p.mc = round_up(div_ceil(p.m, div_ceil(p.m, mc_max)), mr);
}

}  // namespace detail
}  // namespace tilekit

#endif  // TILEKIT_GEMM_QUANT_ACT_H_

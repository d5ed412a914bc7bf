// The quantized kernel's record: int8 and int4 weights (WeightType::kInt8,
// kInt4) on every path, written once with Highway (gemm/quant-inl.h).
//
// Layout (PanelKind::kQuant): panels of nr = 2·lanes columns, as the vector
// kernel's, so a panel's outputs are the two vectors its epilogue stores. K
// is cut into groups of g rows (PackOptions::group; 0: one group of all of K,
// rounded up to 8), zero-padded to whole groups. Each group stores its g rows,
// then the nr fp32 scales of its columns:
//   int8: a row is nr bytes, byte c = q(k, c) + 128
//   int4: a row is nr / 2 bytes, byte c = (q(k, c) + 8) | (q(k, c + nr/2) + 8) << 4
// so a row's values widen to two vectors of columns with one zero-extending
// load (int8: twice; int4: once, then a mask and a shift), the way the decode
// step reads them. Stored values are offset binary (zero point z = 128 or 8):
// the kernels sum a·(q + z) and subtract z·Σa once per group, which is also
// the form integer dot products (u8 × s8) take.
//
// Weight w(k, c) = scale(group of k, c) · q(k, c). Padding rows and columns
// hold q = 0; padding columns have scale 0.
#ifndef TILEKIT_GEMM_QUANT_H_
#define TILEKIT_GEMM_QUANT_H_

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "tilekit/base/bf16.h"
#include "tilekit/base/fp16.h"
#include "tilekit/base/size_math.h"
#include "tilekit/cpu/dispatch.h"
#include "tilekit/cpu/features.h"
#include "tilekit/gemm/exports.h"
#include "tilekit/gemm/kernel.h"
#include "tilekit/gemm/quant_act.h"
#include "tilekit/gemm/vector.h"

namespace tilekit {
namespace detail {

// Zero point and largest magnitude of the stored values.
inline int quant_zero(WeightType t) { return t == WeightType::kInt8 ? 128 : 8; }
inline int quant_max(WeightType t) { return t == WeightType::kInt8 ? 127 : 7; }

// Bytes of one packed row (nr columns) and of one group (g rows + nr scales).
inline size_t quant_row_bytes(const PanelLayout& l) { return l.nr * l.bits() / 8; }
inline size_t quant_group_bytes(const PanelLayout& l) {
  return l.group * quant_row_bytes(l) + l.nr * sizeof(float);
}

inline bool quant_layout(Isa isa, WeightType type, const PackShape& shape, PanelLayout* l) {
  if (!is_quantized(type)) return false;
  l->kind = PanelKind::kQuant;
  l->lanes = static_cast<uint32_t>(vector_lanes(isa));
  l->nr = 2 * l->lanes;
  l->type = type;
  // One group of all of K (int8 per column): K rounded to whole 8-row words.
  const size_t g = shape.group ? shape.group : std::max<size_t>(8, round_up(shape.k, 8));
  l->group = static_cast<uint32_t>(std::min<size_t>(g, UINT32_MAX));
  l->k_align = l->group;
  return true;
}

// The element offset of packed_offset: bytes for int8, nibbles for int4 (two
// per byte, the low one first).
inline size_t quant_offset(const PanelLayout& l, size_t k, size_t c) {
  const size_t row = (k / l.group) * quant_group_bytes(l) + (k % l.group) * quant_row_bytes(l);
  if (l.type == WeightType::kInt8) return row + c;
  const size_t half = l.nr / 2;
  return 2 * row + 2 * (c % half) + (c >= half);
}

// --- Packing: quantize fp32 / bf16 sources, or copy GGUF blocks. ----------

// One packed row from the values q[c] of its nr columns (offset binary, as in
// the layout above).
inline void quant_store_row(const PanelLayout& l, const int* q, unsigned char* row) {
  if (l.type == WeightType::kInt8) {
    for (size_t c = 0; c < l.nr; ++c) row[c] = static_cast<unsigned char>(q[c] + 128);
    return;
  }
  const size_t half = l.nr / 2;
  for (size_t c = 0; c < half; ++c) {
    row[c] = static_cast<unsigned char>(static_cast<unsigned>(q[c] + 8) | static_cast<unsigned>(q[c + half] + 8) << 4);
  }
}

// Value k of a GGUF row: its block's scale and its quantized value q.
inline void gguf_value(const WeightSource& w, size_t row, size_t k, float* scale, int* q) {
  const unsigned char* block = static_cast<const unsigned char*>(w.data) + row * w.ld +
                               (k / kGgufBlockValues) * gguf_block_bytes(w.type);
  uint16_t d;
  std::memcpy(&d, block, 2);
  *scale = f16_to_f32(d);
  const size_t j = k % kGgufBlockValues;
  if (w.type == SourceType::kGgufQ8_0) {
    *q = static_cast<int8_t>(block[2 + j]);
  } else {
    const unsigned char b = block[2 + j % 16];
    *q = static_cast<int>(j < 16 ? b & 0xF : b >> 4) - 8;
  }
}

inline float source_value(const WeightSource& w, size_t col, size_t k) {
  const size_t at = w.layout == SourceLayout::kNK ? col * w.ld + k : k * w.ld + col;
  return w.type == SourceType::kBf16 ? bf16_to_f32(static_cast<const bf16*>(w.data)[at])
                                     : static_cast<const float*>(w.data)[at];
}

// Panels [p0, p1): per group, the columns' scales (GGUF: the block's; else
// max |w| / qmax), then the values rounded to nearest (q = w / scale).
// False on a NaN or infinite weight to quantize.
inline bool quant_pack(const PackJob& job, size_t p0, size_t p1) {
  const PanelLayout& l = *job.layout;
  const size_t nr = l.nr, g = l.group, k = job.k, groups = l.padded_k(k) / g;
  const size_t row_bytes = quant_row_bytes(l), group_bytes = quant_group_bytes(l);
  const float qmax = static_cast<float>(quant_max(l.type));
  float scale[128];
  bool finite = true;
  for (size_t pb = p0; pb < p1; ++pb) {
    size_t s = 0;
    while (pb >= job.segments[s].panel_begin + job.segments[s].panels) ++s;
    const PackedSegment& seg = job.segments[s];
    ColumnSource cols[128];
    for (size_t c = 0; c < nr; ++c) cols[c] = column_source(job.parts, s, seg, nr, pb - seg.panel_begin, c);
    unsigned char* panel = job.buffer + pb * job.panel_bytes;
    for (size_t gi = 0; gi < groups; ++gi) {
      unsigned char* group = panel + gi * group_bytes;
      const size_t k0 = gi * g, k1 = std::min(k, k0 + g);
      for (size_t c = 0; c < nr; ++c) {
        const WeightSource& w = *cols[c].src;
        scale[c] = 0.f;
        if (cols[c].col >= w.n || k0 >= k1) continue;
        if (w.type == SourceType::kGgufQ8_0 || w.type == SourceType::kGgufQ4_0) {
          int q;
          gguf_value(w, cols[c].col, k0, &scale[c], &q);  // g = 32: one block per group
          continue;
        }
        float amax = 0.f;
        for (size_t kk = k0; kk < k1; ++kk) {
          const float v = source_value(w, cols[c].col, kk);
          if (!std::isfinite(v)) finite = false;
          amax = std::max(amax, std::fabs(v));
        }
        scale[c] = amax / qmax;
      }
      for (size_t kk = k0; kk < k0 + g; ++kk) {
        int q[128];
        for (size_t c = 0; c < nr; ++c) {
          const WeightSource& w = *cols[c].src;
          q[c] = 0;
          if (kk >= k1 || cols[c].col >= w.n) continue;
          if (w.type == SourceType::kGgufQ8_0 || w.type == SourceType::kGgufQ4_0) {
            float d;
            gguf_value(w, cols[c].col, kk, &d, &q[c]);
          } else if (scale[c] != 0.f) {
            const float v = source_value(w, cols[c].col, kk);
            q[c] = std::isfinite(v) ? static_cast<int>(std::nearbyint(std::max(-qmax, std::min(qmax, v / scale[c]))))
                                    : 0;
          }
        }
        quant_store_row(l, q, group + (kk - k0) * row_bytes);
      }
      std::memcpy(group + g * row_bytes, scale, nr * sizeof(float));
    }
  }
  return finite;
}

// --- Planning and dispatch. ------------------------------------------------

inline size_t quant_mr(Isa isa) { return vector_mr(isa); }

// M <= kQuantGemvMaxRows streams the panels once (QuantGemv). More rows dequantize a K block of
// a panel to fp32 once per row block (in L1: kc × nr floats fill half of it)
// and run the vector kernel's register tile over it; kc is whole groups (or,
// with one group of all of K, any multiple of 8).
inline void quant_block(GemmPlan& p, const PanelLayout& l, size_t mr) {
  const cpu::Features& f = cpu::features();
  const size_t l1 = f.l1d ? f.l1d : (size_t{32} << 10);
  const size_t l2 = f.l2 ? f.l2 : (size_t{1} << 20);
  const size_t g = l.group, kp = l.padded_k(p.k);
  p.nc_panels = 1;
  if (p.m <= kQuantGemvMaxRows) {
    p.pack_a = false;
    p.mc = p.m;
    p.kc = kp;
    return;
  }
  const size_t kc_fit = std::max<size_t>(8, l1 / 2 / (l.nr * sizeof(float)) / 8 * 8);
  p.kc = g >= kp ? std::min(kp, kc_fit) : std::max(g, kc_fit / g * g);
  p.pack_a = true;
  // K = 0 has no A to block (the tiles store the epilogue of zero): one row
  // of a K of 1 stands in, so the division is defined.
  p.mc = std::min(round_up(p.m, mr), std::max(mr, l2 / 4 / (std::max<size_t>(kp, 1) * sizeof(float)) / mr * mr));
}

// M <= kQuantGemvMaxRows: A as fp32 rows padded to whole groups, and one sum
// of each row per group. More
// rows: the packed A block (mc × Kp), the partial sums of one panel (mc × nr)
// and the dequantized slice (kc × nr).
inline size_t quant_workspace_floats(const GemmPlan& p, const PanelLayout& l, size_t mr) {
  const size_t kp = l.padded_k(p.k);
  if (p.m <= kQuantGemvMaxRows) return p.m * (kp + kp / l.group);
  const size_t mc = round_up(p.mc, mr);
  return round_up(mc * (kp + l.nr), 16) + p.kc * l.nr;
}

HWY_EXPORT(QuantRange);
inline GemmRangeFn quant_range(Isa isa, const GemmPlan&) { return &TILEKIT_DISPATCH_ON(isa, QuantRange); }

inline constexpr GemmKernel kQuantGemm{"quant",     &any_path,    &quant_layout,
                                       &quant_offset, &quant_mr,  &quant_block,
                                       &quant_workspace_floats, &quant_range, /*rows_first=*/false,
                                       &quant_pack};

}  // namespace detail
}  // namespace tilekit

#endif  // TILEKIT_GEMM_QUANT_H_

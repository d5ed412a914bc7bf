// Weights packed once, at model load, into the panel layout the GEMM
// micro-kernels stream. The layout's only per-path parameter is the vector
// width (lanes), which the pack call reads from the active path. This header
// declares; gemm/packed_weights-impl.h defines (the kernels translation unit).
//
// Layout. Columns are grouped in panels of nr = 2·lanes; a panel stores its K
// rows contiguously, so a micro-kernel reads one panel front to back:
//   fp32: float[K][nr]      element (k, c) at panel + k·nr + c
//   bf16: uint32[K][lanes]  lane l holds column l (low half) and column
//                           lanes + l (high half): widening is one shift and one
//                           mask, no shuffles
// Columns past N in the last panel are zero (tilekit's own buffer: user data is
// never padded). A gate/up pair puts gate columns in the low vector and the
// matching up columns in the high vector of each panel, so SwiGLU combines two
// registers of the same tile.
//
// Several matrices sharing one input (Q, K, V) are packed as segments of one
// object; no panel straddles two segments.
//
// Narrow weights (one matrix of N <= kDotMaxN columns, where panels of nr
// would be at least a quarter padding: the seed MLP's [11008 -> 10] layer,
// classifier heads) are packed in their own kind (kDot), on every path: one
// "panel" per column, its K values contiguous, read by a dot-product kernel
// whose vectors run along K, so no multiply is spent on padding columns. K is
// zero-padded to a multiple of 2·lanes (one kernel step); a bf16 step is one
// vector of uint32 whose lane l holds k0 + l (low half) and k0 + lanes + l
// (high half), as in the vector panels above:
//   fp32: float[N][Kp]         element (k, c) at column c + k
//   bf16: uint16[N][Kp]        element (k, c) at column c + k0 + 2·(r % lanes)
//                              + (r >= lanes), k0 = k - r, r = k mod 2·lanes
//
// The AMX path packs bf16 weights in its own kind (kAmx): panels of nr = 32
// columns in VNNI pairs, the B tiles of tdpbf16ps:
//   bf16: uint16[K/2][32][2]  element (k, c) at panel + (k/2)·64 + 2c + k%2
// so columns 0-15 of 16 consecutive pairs are one 16 × 64-byte tile (row
// stride 128 bytes) and columns 16-31 the next. Narrow bf16 weights on the
// AMX path (where other paths use kDot) are one kAmx panel of nr = 16: each
// K step of 32 is one whole 1 KiB B tile (row stride 64 bytes), read by
// arch/amx_narrow.h. K is zero-padded to a multiple
// of 32: a K step of the kernel always loads 16 whole pairs, so the last step
// never reads past its panel (the next panel's Inf or NaN times A's zero
// padding would be NaN; past the last panel lies the end of the buffer).
#ifndef TILEKIT_GEMM_PACKED_WEIGHTS_H_
#define TILEKIT_GEMM_PACKED_WEIGHTS_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "tilekit/base/aligned_buffer.h"
#include "tilekit/base/bf16.h"
#include "tilekit/base/matrix.h"
#include "tilekit/base/status.h"
#include "tilekit/base/api.h"
#include "tilekit/cpu/isa.h"
#include "tilekit/threading/executor.h"

namespace tilekit {

enum class WeightType { kF32, kBf16 };
inline const char* weight_type_name(WeightType t) { return t == WeightType::kF32 ? "f32" : "bf16"; }

// Where unpacked weights come from. kKN: row-major [K][N] (x·W); kNK: PyTorch
// Linear's weight, row-major [N][K] (x·Wᵀ).
enum class SourceLayout { kKN, kNK };

struct WeightSource {
  const float* data = nullptr;
  size_t k = 0, n = 0;
  size_t ld = 0;  // row stride of the source as stored; 0 = packed rows
  SourceLayout layout = SourceLayout::kKN;

  float at(size_t kk, size_t nn) const {
    return layout == SourceLayout::kKN ? data[kk * ld + nn] : data[nn * ld + kk];
  }
};
inline WeightSource weights_kn(const float* data, size_t k, size_t n, size_t ld = 0) {
  return WeightSource{data, k, n, ld ? ld : n, SourceLayout::kKN};
}
inline WeightSource weights_nk(const float* data, size_t n, size_t k, size_t ld = 0) {
  return WeightSource{data, k, n, ld ? ld : k, SourceLayout::kNK};
}

// Who reads the panels. kVector: the portable Highway micro-kernel (the layout
// above). The matrix-instruction kernels under arch/ read their own layouts;
// each adds its kind here, its case in packed_offset() and its choice in
// active_panel_layout().
//   kAmx: arch/amx_gemm.h (VNNI pairs, above); nr = 16: arch/amx_narrow.h.
//   kArmBfmmla: Arm BFMMLA (arch/arm_bfmmla.h), bf16 only. BFMMLA multiplies
//     2 rows × 4 k of A by 4 k × 2 columns of B, so a panel stores K in blocks
//     of kr = 4 (zero-padded), and within a block column pairs, each pair as
//     column 2j's 4 k then column 2j+1's 4 k: one 128-bit quadword per pair.
//   kDot: narrow weights on any path (above), read by GemmDotRange
//     (gemm-inl.h); nr = 1, one column per panel.
enum class PanelKind : uint8_t { kVector, kAmx, kArmBfmmla, kDot };
inline const char* panel_kind_name(PanelKind k) {
  switch (k) {
    case PanelKind::kVector: return "vector";
    case PanelKind::kAmx: return "amx";
    case PanelKind::kArmBfmmla: return "arm_bfmmla";
    case PanelKind::kDot: return "dot";
  }
  return "?";
}

// The per-path parameters of the layout. Weights are usable by any path whose
// layout is equal (avx512, avx512_bf16 and amx share lanes = 16 for fp32).
struct PanelLayout {
  PanelKind kind = PanelKind::kVector;
  uint32_t lanes = 0;    // fp32 lanes per vector of the path that reads it
  uint32_t nr = 0;       // columns per panel
  uint32_t k_align = 1;  // K is zero-padded to a multiple of this (kAmx: 32, whole K steps)
  WeightType type = WeightType::kF32;
  size_t element_bytes() const { return type == WeightType::kF32 ? 4 : 2; }
  size_t padded_k(size_t k) const { return (k + k_align - 1) / k_align * k_align; }
  // Whether the kernel reading this layout multiplies in bf16, so an fp32 A is
  // rounded to bf16 (to nearest even) before its products: AMX and BFMMLA have
  // no fp32 input.
  bool rounds_a_to_bf16() const { return kind == PanelKind::kAmx || kind == PanelKind::kArmBfmmla; }
  bool operator==(const PanelLayout& o) const {
    return kind == o.kind && lanes == o.lanes && nr == o.nr && k_align == o.k_align && type == o.type;
  }
};

// Element offset, within a panel, of row k and panel column c.
inline size_t packed_offset(const PanelLayout& l, size_t k, size_t c) {
  switch (l.kind) {
    case PanelKind::kVector:
      // bf16: 32-bit lane (c mod lanes) holds column c in its low half when
      // c < lanes, in its high half otherwise.
      return l.type == WeightType::kF32 ? k * l.nr + c : k * l.nr + 2 * (c % l.lanes) + (c >= l.lanes);
    case PanelKind::kAmx:
      return (k / 2) * l.nr * 2 + c * 2 + k % 2;
    case PanelKind::kArmBfmmla:
      return (k / 4) * 4 * l.nr + (c / 2) * 8 + (c % 2) * 4 + k % 4;
    case PanelKind::kDot: {
      const size_t r = k % (2 * l.lanes);
      return l.type == WeightType::kF32 ? k : k - r + 2 * (r % l.lanes) + (r >= l.lanes);
    }
  }
  return 0;
}

struct PackedSegment {
  size_t n = 0;            // output columns of this segment
  size_t col_offset = 0;   // first output column when outputs are concatenated
  size_t panel_begin = 0;  // first panel in the packed buffer
  size_t panels = 0;
  bool gate_up = false;    // SwiGLU pair: each panel = gate cols | up cols
};

class PackedWeights {
 public:
  size_t k() const { return k_; }
  size_t n() const { return n_; }  // output columns, all segments together
  WeightType type() const { return layout_.type; }
  const PanelLayout& layout() const { return layout_; }
  Isa packed_for() const { return isa_; }
  size_t bytes() const { return buffer_.size(); }
  size_t panels() const { return panels_; }
  size_t panel_bytes() const { return layout_.padded_k(k_) * layout_.nr * layout_.element_bytes(); }
  const std::vector<PackedSegment>& segments() const { return segments_; }
  bool empty() const { return segments_.empty(); }
  bool has_gate_up() const {
    for (const PackedSegment& s : segments_) if (s.gate_up) return true;
    return false;
  }
  const unsigned char* panel(size_t p) const { return buffer_.as<unsigned char>() + p * panel_bytes(); }

 private:
  friend struct PackAccess;
  size_t k_ = 0, n_ = 0, panels_ = 0;
  PanelLayout layout_;
  Isa isa_ = Isa::kScalar;
  std::vector<PackedSegment> segments_;
  AlignedBuffer buffer_;
};

enum class PackKind {
  kSeparate,  // each source is its own segment (Q, K, V)
  kGateUp,    // exactly two sources, gate then up, same shape: one SwiGLU segment
};

// Widest N packed as dot-product columns (kDot), when the path's own panels
// would be at least a quarter padding. Above 16 columns a panel kernel's
// broadcast of A feeds enough columns to win again.
constexpr size_t kDotMaxN = 16;

// The layout the active path's kernels read. bf16 weights on the amx path get
// the AMX layout (fp32 weights stay on the vector kernel: AMX has no fp32
// multiply). Its epilogue runs on the AVX-512 target's 16-lane vectors (a panel
// = 2 vectors); a build without that target keeps the vector layout.
TILEKIT_API PanelLayout active_panel_layout(WeightType type);

// The layout pack_weights gives these weights on the active path: the path's
// panels (active_panel_layout), or for one narrow matrix dot-product columns
// (bf16 on the amx path: a single 16-column AMX panel).
TILEKIT_API PanelLayout packing_layout(WeightType type, size_t n, size_t segments, PackKind kind);

// How pack_weights runs. The fill is split over the executor's threads by
// panels (each panel written by one task), so the packed bytes do not depend
// on the thread count. Packing different weights from several threads at
// once is safe: a call touches only its own sources and output.
struct PackOptions {
  Executor* executor = nullptr;     // null: pack on the calling thread
  PageHint hint = PageHint::kHuge;  // back the packed buffer with huge pages where the OS allows
};

// Bytes pack_weights will allocate for these sources on the active path.
TILEKIT_API Status packed_weights_size(const WeightSource* parts, size_t count, WeightType type, PackKind kind,
                                       size_t* bytes);

// Packs for the active path. On error *out is left as it was.
TILEKIT_API Status pack_weights(const WeightSource* parts, size_t count, WeightType type, PackKind kind,
                                PackedWeights* out, const PackOptions& options = {});
TILEKIT_API Status pack_weights(const WeightSource& w, WeightType type, PackedWeights* out,
                                const PackOptions& options = {});
// SwiGLU's gate and up projections, packed so one GEMM yields silu(x·Wg)·(x·Wu).
TILEKIT_API Status pack_weights_gate_up(const WeightSource& gate, const WeightSource& up, WeightType type,
                                        PackedWeights* out, const PackOptions& options = {});

}  // namespace tilekit

#endif  // TILEKIT_GEMM_PACKED_WEIGHTS_H_

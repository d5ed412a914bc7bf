// Weights packed once, at model load, into the panel layout of the GEMM kernel
// that will read them. This header declares; gemm/packed_weights-impl.h
// defines (compiled once per program, by gemm/implementation.h).
//
// Every layout groups output columns in panels of nr; a panel stores its K
// rows (zero-padded to k_align) front to back, so a kernel reads one panel as
// one stream. Columns past N in the last panel are zero (tilekit's own buffer:
// user data is never padded). A gate/up pair puts gate columns in the first
// half of each panel and the matching up columns in the second, so SwiGLU
// combines two registers of the same tile. Several matrices sharing one input
// (Q, K, V) are packed as segments of one object; no panel straddles two
// segments.
//
// Which kernel packs (and later reads) a weight is decided once, at packing,
// from the path, the weight type and the shape, by the kernel records of
// gemm/kernels.h; each record's header documents its layout (gemm/vector.h,
// gemm/dot.h, gemm/amx_gemm.h, gemm/amx_narrow.h, gemm/arm_bfmmla_gemm.h).
// packed_offset() gives any layout's element offsets.
#ifndef TILEKIT_GEMM_PACKED_WEIGHTS_H_
#define TILEKIT_GEMM_PACKED_WEIGHTS_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "tilekit/base/aligned_buffer.h"
#include "tilekit/base/bf16.h"
#include "tilekit/base/matrix.h"
#include "tilekit/base/size_math.h"
#include "tilekit/base/status.h"
#include "tilekit/base/api.h"
#include "tilekit/cpu/isa.h"
#include "tilekit/threading/executor.h"

namespace tilekit {

// How packed weights are stored. kInt8 and kInt4 are quantized symmetrically,
// w ≈ q · s, with one fp32 scale per output column and group of K values
// (PackOptions::group): q in [-127, 127] (kInt8) or [-8, 7] (kInt4; weights
// quantized here use [-7, 7], GGUF's Q4_0 blocks the whole range).
enum class WeightType { kF32, kBf16, kInt8, kInt4 };
inline const char* weight_type_name(WeightType t) {
  switch (t) {
    case WeightType::kF32: return "f32";
    case WeightType::kBf16: return "bf16";
    case WeightType::kInt8: return "int8";
    case WeightType::kInt4: return "int4";
  }
  return "unknown";
}
constexpr bool is_quantized(WeightType t) { return t == WeightType::kInt8 || t == WeightType::kInt4; }

// Where unpacked weights come from. kKN: row-major [K][N] (x·W); kNK: PyTorch
// Linear's weight, row-major [N][K] (x·Wᵀ).
enum class SourceLayout { kKN, kNK };

// The element type of a source. The GGUF types are llama.cpp's quantized
// blocks, read as a file stores them: each row of K values (a [N][K] source)
// is K / 32 blocks of a little-endian IEEE half scale d and 32 values:
//   kGgufQ8_0: 34 bytes, int8 q[32], w = d · q;
//   kGgufQ4_0: 18 bytes, uint8 qs[16], value j in the low nibble of qs[j] and
//              value j + 16 in its high nibble, w = d · (nibble - 8).
// They pack into kInt8 / kInt4 weights of group 32 with no dequantization on
// the way: the packed weights multiply exactly as the file's values do.
enum class SourceType : uint8_t { kF32, kBf16, kGgufQ8_0, kGgufQ4_0 };
inline const char* source_type_name(SourceType t) {
  switch (t) {
    case SourceType::kF32: return "f32";
    case SourceType::kBf16: return "bf16";
    case SourceType::kGgufQ8_0: return "GGUF Q8_0";
    case SourceType::kGgufQ4_0: return "GGUF Q4_0";
  }
  return "unknown";
}
constexpr size_t kGgufBlockValues = 32;
inline size_t gguf_block_bytes(SourceType t) {
  return t == SourceType::kGgufQ8_0 ? 34 : t == SourceType::kGgufQ4_0 ? 18 : 0;
}

struct WeightSource {
  const void* data = nullptr;
  size_t k = 0, n = 0;
  // Row stride as stored: elements for fp32 and bf16, bytes for GGUF rows
  // (0 = packed rows).
  size_t ld = 0;
  SourceLayout layout = SourceLayout::kKN;
  SourceType type = SourceType::kF32;
};
inline WeightSource weights_kn(const float* data, size_t k, size_t n, size_t ld = 0) {
  return WeightSource{data, k, n, ld ? ld : n, SourceLayout::kKN, SourceType::kF32};
}
inline WeightSource weights_nk(const float* data, size_t n, size_t k, size_t ld = 0) {
  return WeightSource{data, k, n, ld ? ld : k, SourceLayout::kNK, SourceType::kF32};
}
inline WeightSource weights_kn(const bf16* data, size_t k, size_t n, size_t ld = 0) {
  return WeightSource{data, k, n, ld ? ld : n, SourceLayout::kKN, SourceType::kBf16};
}
inline WeightSource weights_nk(const bf16* data, size_t n, size_t k, size_t ld = 0) {
  return WeightSource{data, k, n, ld ? ld : k, SourceLayout::kNK, SourceType::kBf16};
}
// A null source (nothing to read: K = 0 or N = 0, or a test of refusals) is fp32.
inline WeightSource weights_kn(std::nullptr_t, size_t k, size_t n, size_t ld = 0) {
  return weights_kn(static_cast<const float*>(nullptr), k, n, ld);
}
inline WeightSource weights_nk(std::nullptr_t, size_t n, size_t k, size_t ld = 0) {
  return weights_nk(static_cast<const float*>(nullptr), n, k, ld);
}
// A GGUF tensor of N rows of K values (ggml's ne0 = K, ne1 = N: a Linear's
// [out][in] weight), `type` kGgufQ8_0 or kGgufQ4_0, rows `row_bytes` apart
// (0 = packed: K / 32 blocks).
inline WeightSource weights_gguf(const void* blocks, SourceType type, size_t n, size_t k, size_t row_bytes = 0) {
  return WeightSource{blocks, k, n, row_bytes ? row_bytes : k / kGgufBlockValues * gguf_block_bytes(type),
                      SourceLayout::kNK, type};
}

// The layout family, which says how a panel's bytes are arranged:
//   kVector: the portable register-tile kernel (Highway, every path);
//   kAmx: AMX tiles, bf16 in VNNI pairs (nr = 32; one narrow matrix: nr = 16);
//   kArmBfmmla: Arm BFMMLA blocks of kr = 4, bf16;
//   kDot: narrow weights on any path: one column per panel, K contiguous;
//   kQuant: int8 / int4 values in rows of nr columns, each group of K rows
//     followed by its nr fp32 scales (gemm/quant.h).
enum class PanelKind : uint8_t { kVector, kAmx, kArmBfmmla, kDot, kQuant };
inline const char* panel_kind_name(PanelKind k) {
  switch (k) {
    case PanelKind::kVector: return "vector";
    case PanelKind::kAmx: return "amx";
    case PanelKind::kArmBfmmla: return "arm_bfmmla";
    case PanelKind::kDot: return "dot";
    case PanelKind::kQuant: return "quant";
  }
  return "?";
}

// A packed layout: its family, the kernel that packed it (an index into the
// kernel records of gemm/kernels.h, which reads it), and its parameters.
// Weights are usable by any path whose packing layout is equal (avx512,
// avx512_bf16 and amx share fp32 panels of lanes = 16).
struct PanelLayout {
  PanelKind kind = PanelKind::kVector;
  uint8_t kernel = 0;    // which kernel record (gemm/kernels.h)
  uint32_t lanes = 0;    // fp32 lanes per vector of the path that reads it
  uint32_t nr = 0;       // columns per panel
  uint32_t kr = 1;       // K rows per packed block (BFMMLA: 4; VNNI pairs: 2)
  uint32_t k_align = 1;  // K is zero-padded to a multiple of this
  WeightType type = WeightType::kF32;
  // Quantized weights: K values per scale (K is padded to a multiple of it).
  // Each group of a panel stores its values, then its nr fp32 scales.
  uint32_t group = 0;
  // Whether the kernel multiplies in bf16, so an fp32 A is rounded to bf16 (to
  // nearest even) before its products: AMX and BFMMLA have no fp32 input.
  bool a_bf16 = false;
  // Kernels with integer dot products quantize A, for calls of M >= this many
  // rows (0: never), to int8 per row and group of a_group K values:
  // dynamically and symmetrically, scale = max|a| / 127, q = round(a / scale);
  // the products are then exact in int32 and scaled in fp32.
  uint32_t a_int8_min_rows = 0;
  uint32_t a_group = 0;
  // Bits per stored weight.
  size_t bits() const {
    return type == WeightType::kF32 ? 32 : type == WeightType::kBf16 ? 16 : type == WeightType::kInt8 ? 8 : 4;
  }
  size_t element_bytes() const { return bits() / 8; }  // 0 for kInt4: see panel_bytes
  size_t padded_k(size_t k) const { return round_up(k, k_align); }
  // Bytes of one panel of K rows, scales included.
  size_t panel_bytes(size_t k) const {
    const size_t values = padded_k(k) * nr * bits() / 8;
    return group ? values + padded_k(k) / group * nr * sizeof(float) : values;
  }
  bool rounds_a_to_bf16() const { return a_bf16; }
  bool operator==(const PanelLayout& o) const {
    return kind == o.kind && kernel == o.kernel && lanes == o.lanes && nr == o.nr && kr == o.kr &&
           k_align == o.k_align && type == o.type && group == o.group && a_bf16 == o.a_bf16 &&
           a_int8_min_rows == o.a_int8_min_rows && a_group == o.a_group;
  }
};

// Element offset, within a panel, of row k and panel column c. Every layout's
// offset separates into a row part and a column part:
//   packed_offset(l, k, c) = packed_offset(l, k, 0) + packed_offset(l, 0, c).
TILEKIT_API size_t packed_offset(const PanelLayout& l, size_t k, size_t c);

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
  size_t group() const { return layout_.group; }  // quantized: K values per scale
  const PanelLayout& layout() const { return layout_; }
  Isa packed_for() const { return isa_; }
  size_t bytes() const { return buffer_.size(); }
  size_t panels() const { return panels_; }
  size_t panel_bytes() const { return layout_.panel_bytes(k_); }
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

// The layout the active path reads for `type` weights that are not narrow:
// the first kernel record of gemm/kernels.h that takes them on this path
// (bf16 on amx: AMX tiles; bf16 on neon_bf16 / sve_bf16: BFMMLA; otherwise
// the vector kernel's panels).
TILEKIT_API PanelLayout active_panel_layout(WeightType type);

// The layout pack_weights gives these weights on the active path: that of the
// first kernel record that takes them, given the path, the type and the shape
// (one narrow matrix: dot-product columns, or on the amx path a single
// 16-column AMX panel).
TILEKIT_API PanelLayout packing_layout(WeightType type, size_t n, size_t segments, PackKind kind);

// How pack_weights runs. The fill is split over the executor's threads by
// panels (each panel written by one task), so the packed bytes do not depend
// on the thread count. Packing different weights from several threads at
// once is safe: a call touches only its own sources and output.
struct PackOptions {
  Executor* executor = nullptr;     // null: pack on the calling thread
  PageHint hint = PageHint::kHuge;  // back the packed buffer with huge pages where the OS allows
  // kInt8 / kInt4 weights: K values per scale, 32, 64 or 128; or 0 for one
  // scale per column over all of K (kInt8 only). GGUF blocks come in 32s.
  size_t group = 32;
};

// Bytes pack_weights will allocate for these sources on the active path.
TILEKIT_API Status packed_weights_size(const WeightSource* parts, size_t count, WeightType type, PackKind kind,
                                       size_t* bytes, const PackOptions& options = {});

// The layout pack_weights would give these sources on the active path (every
// check pack_weights makes, without packing).
TILEKIT_API Status packing_layout(const WeightSource* parts, size_t count, WeightType type, PackKind kind,
                                  const PackOptions& options, PanelLayout* layout);

// Packs for the active path, quantizing fp32 / bf16 sources for kInt8 and kInt4
// (round to nearest; a NaN or infinite weight is refused). On error *out is
// left as it was.
TILEKIT_API Status pack_weights(const WeightSource* parts, size_t count, WeightType type, PackKind kind,
                                PackedWeights* out, const PackOptions& options = {});
TILEKIT_API Status pack_weights(const WeightSource& w, WeightType type, PackedWeights* out,
                                const PackOptions& options = {});
// SwiGLU's gate and up projections, packed so one GEMM yields silu(x·Wg)·(x·Wu).
TILEKIT_API Status pack_weights_gate_up(const WeightSource& gate, const WeightSource& up, WeightType type,
                                        PackedWeights* out, const PackOptions& options = {});

}  // namespace tilekit

#endif  // TILEKIT_GEMM_PACKED_WEIGHTS_H_

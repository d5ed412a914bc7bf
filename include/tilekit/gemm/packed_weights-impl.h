// Definitions of gemm/packed_weights.h: the layout choice (the kernel records
// of gemm/kernels.h) and the packing itself. Compiled once per program, by
// gemm/implementation.h.
#ifndef TILEKIT_GEMM_PACKED_WEIGHTS_IMPL_H_
#define TILEKIT_GEMM_PACKED_WEIGHTS_IMPL_H_

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

#include <hwy/cache_control.h>

#include "tilekit/base/size_math.h"
#include "tilekit/cpu/dispatch.h"
#include "tilekit/gemm/exports.h"
#include "tilekit/gemm/kernels.h"
#include "tilekit/gemm/packed_weights.h"

namespace tilekit {

namespace detail {

// The quantization group of these weights on a layout: PackOptions::group for
// quantized types (0: one group of all of K), nothing for fp32 and bf16.
inline PackShape pack_shape(size_t n, size_t segments, PackKind kind, size_t k, WeightType type,
                            const PackOptions& options) {
  return PackShape{n, segments, kind, k, is_quantized(type) ? options.group : 0};
}

}  // namespace detail

TILEKIT_API PanelLayout active_panel_layout(WeightType type) {
  PanelLayout l;
  detail::choose_gemm_kernel(cpu::active_isa(), type, detail::pack_shape(0, 1, PackKind::kSeparate, 0, type, {}), &l);
  return l;
}
TILEKIT_API PanelLayout packing_layout(WeightType type, size_t n, size_t segments, PackKind kind) {
  PanelLayout l;
  detail::choose_gemm_kernel(cpu::active_isa(), type, detail::pack_shape(n, segments, kind, 0, type, {}), &l);
  return l;
}
TILEKIT_API size_t packed_offset(const PanelLayout& l, size_t k, size_t c) {
  return detail::gemm_kernel_of(l).offset(l, k, c);
}

struct PackAccess {
  // Validates the sources and computes everything but the packed bytes.
  static Status plan(const WeightSource* parts, size_t count, WeightType type, PackKind kind,
                     const PackOptions& options, PackedWeights* out, size_t* bytes) {
    if (!parts || count == 0) return fail(Status::kInvalidArgument, "pack_weights: no weight sources");
    if (kind == PackKind::kGateUp && count != 2) {
      return fail(Status::kInvalidArgument, "pack_weights: a gate/up pair needs exactly 2 sources, got %zu", count);
    }
    if (!is_quantized(type) && type != WeightType::kF32 && type != WeightType::kBf16) {
      return fail(Status::kInvalidArgument, "pack_weights: unknown weight type %d", static_cast<int>(type));
    }
    const size_t k = parts[0].k;
    for (size_t i = 0; i < count; ++i) {
      Status s = check_source(parts[i], i, k, type, options);
      if (s != Status::kOk) return s;
      // The generic fill (fp32, bf16 weights) reads one element type per call;
      // the quantized fill reads each source as its own type.
      if (!is_quantized(type) && parts[i].type != parts[0].type) {
        return fail(Status::kInvalidArgument, "pack_weights: source %zu is %s, source 0 is %s; pack %s and %s apart",
                    i, source_type_name(parts[i].type), source_type_name(parts[0].type),
                    source_type_name(parts[i].type), source_type_name(parts[0].type));
      }
    }
    if (kind == PackKind::kGateUp && parts[0].n != parts[1].n) {
      return fail(Status::kShapeMismatch, "pack_weights: gate has N=%zu, up has N=%zu", parts[0].n, parts[1].n);
    }
    PackedWeights p;
    p.k_ = k;
    const size_t segments = kind == PackKind::kGateUp ? 1 : count;
    // One read of the path: the layout and the path it is recorded under agree
    // even if set_max_isa() runs meanwhile.
    p.isa_ = cpu::active_isa();
    if (!detail::choose_gemm_kernel(p.isa_, type, detail::pack_shape(parts[0].n, segments, kind, k, type, options),
                                    &p.layout_)) {
      return fail(Status::kUnsupported, "pack_weights: no GEMM kernel takes %s weights on path %s",
                  weight_type_name(type), isa_name(p.isa_));
    }
    if (p.layout_.nr > kMaxNr) {  // no path has wider panels; the fill's tables are sized for them
      return fail(Status::kUnsupported, "pack_weights: panels of %u columns, at most %zu", unsigned{p.layout_.nr},
                  kMaxNr);
    }
    const size_t lanes = p.layout_.nr / 2;  // gate/up: half a panel each
    for (size_t s = 0; s < segments; ++s) {
      PackedSegment seg;
      seg.n = parts[s].n;
      seg.gate_up = kind == PackKind::kGateUp;
      seg.col_offset = p.n_;
      seg.panel_begin = p.panels_;
      const size_t cols_per_panel = seg.gate_up ? lanes : p.layout_.nr;
      seg.panels = div_ceil(seg.n, cols_per_panel);
      p.n_ += seg.n;
      p.panels_ += seg.panels;
      p.segments_.push_back(seg);
    }
    // K near SIZE_MAX would wrap when padded to k_align; a panel's values and
    // scales must fit, and so must all panels together.
    const PanelLayout& l = p.layout_;
    size_t values = 0;
    if (k > SIZE_MAX - l.k_align || !detail::mul_fits(l.padded_k(k), size_t{l.nr} * l.bits(), &values) ||
        !detail::mul_fits(p.panels_, l.panel_bytes(k), bytes)) {
      return fail(Status::kOverflow, "pack_weights: packed size of K=%zu, N=%zu overflows", k, p.n_);
    }
    for (size_t i = 0; i < count; ++i) {
      const Status s = check_gguf_scales(parts[i], i);
      if (s != Status::kOk) return s;
    }
    *out = std::move(p);
    return Status::kOk;
  }

  static bool is_gguf(SourceType t) { return t == SourceType::kGgufQ8_0 || t == SourceType::kGgufQ4_0; }

  // One source: its pointer, shape and stride for its element type, and what
  // the weight type can take from it.
  static Status check_source(const WeightSource& w, size_t i, size_t k, WeightType type, const PackOptions& options) {
    if (w.type != SourceType::kF32 && w.type != SourceType::kBf16 && !is_gguf(w.type)) {
      return fail(Status::kInvalidArgument, "pack_weights: source %zu has an unknown type %d", i,
                  static_cast<int>(w.type));
    }
    if (!w.data && w.k && w.n) return fail(Status::kNullPointer, "pack_weights: source %zu is null", i);
    if (w.k != k) {
      return fail(Status::kShapeMismatch, "pack_weights: source %zu has K=%zu, source 0 has K=%zu", i, w.k, k);
    }
    if (is_quantized(type)) {
      const size_t g = options.group;
      if (g != 0 && g != 32 && g != 64 && g != 128) {
        return fail(Status::kInvalidArgument, "pack_weights: group size %zu; quantized weights take 32, 64, 128 or 0 "
                    "(one scale per column over all of K)", g);
      }
      if (g == 0 && type == WeightType::kInt4) {
        return fail(Status::kInvalidArgument, "pack_weights: int4 weights need a group size (32, 64 or 128), not 0");
      }
    }
    if (!is_gguf(w.type)) {
      const size_t cols = w.layout == SourceLayout::kKN ? w.n : w.k;
      if (w.ld < cols) {
        return fail(Status::kBadLeadingDim, "pack_weights: source %zu has ld=%zu < %zu columns", i, w.ld, cols);
      }
      return Status::kOk;
    }
    // GGUF blocks: whole blocks along K, into the weight type they encode, as
    // they are (group 32), every scale a finite number.
    const bool q8 = w.type == SourceType::kGgufQ8_0;
    if ((q8 && type != WeightType::kInt8) || (!q8 && type != WeightType::kInt4)) {
      return fail(Status::kInvalidArgument, "pack_weights: source %zu is %s, which packs as %s weights, not %s", i,
                  source_type_name(w.type), q8 ? "int8" : "int4", weight_type_name(type));
    }
    if (options.group != kGgufBlockValues) {
      return fail(Status::kInvalidArgument, "pack_weights: source %zu is %s, blocks of 32: the group size must be 32, "
                  "not %zu", i, source_type_name(w.type), options.group);
    }
    if (w.layout != SourceLayout::kNK) {
      return fail(Status::kInvalidArgument, "pack_weights: source %zu: GGUF rows run along K ([N][K])", i);
    }
    if (w.k % kGgufBlockValues != 0) {
      return fail(Status::kShapeMismatch, "pack_weights: source %zu is %s with K=%zu, not a multiple of 32", i,
                  source_type_name(w.type), w.k);
    }
    const size_t block = gguf_block_bytes(w.type), row = w.k / kGgufBlockValues * block;
    if (w.ld < row) {
      return fail(Status::kBadLeadingDim, "pack_weights: source %zu has rows of %zu bytes < %zu bytes of blocks", i,
                  w.ld, row);
    }
    size_t span = 0;
    if (w.n && w.k && !detail::mul_fits(w.n - 1, w.ld, &span)) {
      return fail(Status::kOverflow, "pack_weights: source %zu of %zu rows of %zu bytes overflows", i, w.n, w.ld);
    }
    return Status::kOk;
  }

  // GGUF block scales, read before anything is written, so a bad block leaves
  // the output as it was (the fill cannot fail halfway). Only after the packed
  // size is known to fit: a K that overflows it would have the scan read far
  // past the caller's rows.
  static Status check_gguf_scales(const WeightSource& w, size_t i) {
    if (!is_gguf(w.type)) return Status::kOk;
    const size_t block = gguf_block_bytes(w.type);
    const unsigned char* bytes = static_cast<const unsigned char*>(w.data);
    for (size_t r = 0; r < w.n; ++r) {
      for (size_t b = 0; b < w.k / kGgufBlockValues; ++b) {
        uint16_t d;
        std::memcpy(&d, bytes + r * w.ld + b * block, 2);
        if (((d >> 10) & 0x1F) == 0x1F) {
          return fail(Status::kInvalidArgument, "pack_weights: source %zu, row %zu, block %zu has a %s scale", i, r,
                      b, (d & 0x3FF) ? "NaN" : "infinite");
        }
      }
    }
    return Status::kOk;
  }

  // Widest panel of any layout: nr = 2 · lanes, 128 for 2048-bit SVE.
  static constexpr size_t kMaxNr = 128;
  // 16 rows: the transposed block of a panel (16 × nr) spans as few lines as
  // the source rows it reads; 64 and 256 measured 2-3x slower at 11008 × 4096.
  static constexpr size_t kKBlock = 16;
  // Floats ahead of a block that the transpose prefetches in each source row
  // (2 blocks: 0.47-0.55 of a memcpy on one thread at 11008 × 4096, against
  // 0.34-0.40 without, 0.41-0.56 at 4 and 8 blocks).
  static constexpr size_t kPrefetchAhead = 2 * kKBlock;

  // Writes `bytes` of whole packed rows: streamed around the cache when every
  // row is whole cache lines (nr · element bytes a multiple of 64, panels
  // starting on a line), since a line written in part by a non-temporal store
  // costs more than a plain one; otherwise copied. fill_share flushes. Only
  // the fp32 [K][N] copy streams: the [N][K] transpose (through a block in L1)
  // and the bf16 rounding (through a staging row) measured 0.8x and 0.7x
  // streamed against storing in place (docs/performance-history.md
  // "Streaming the packed rows"), since they are bound by their own work, not
  // by the stores.
  static void write_rows(const PackedWeights& pw, const void* src, void* dst, size_t bytes) {
    const size_t row_bytes = pw.layout_.nr * pw.layout_.element_bytes();
    if (row_bytes % kCacheLine == 0 && pw.panel_bytes() % kCacheLine == 0) {
      TILEKIT_DISPATCH_ON(pw.isa_, detail::StreamCopy)(src, dst, bytes);
    } else {
      std::memcpy(dst, src, bytes);
    }
  }

  static void store(float* panel, size_t at, float v) { panel[at] = v; }
  static void store(uint16_t* panel, size_t at, float v) { panel[at] = f32_to_bf16(v).bits; }
  static float value(float v) { return v; }
  static float value(bf16 v) { return bf16_to_f32(v); }

  // Writes panel `pb` (global index) of pw from the sources. Every layout's
  // element offset separates into a row part and a column part,
  //   packed_offset(l, k, c) = packed_offset(l, k, 0) + packed_offset(l, 0, c),
  // (tests/gemm_test.cc checks the packed bytes against packed_offset), so both
  // are tabulated once and the inner loops are a load, a conversion and a
  // store. K goes in blocks of kKBlock rows: the block of the panel being
  // written (kKBlock × nr elements, 2 KiB in fp32 at nr = 32) stays in L1 while
  // the sources are read along their rows: along K for a [N][K] source (a
  // transpose), along N for [K][N].
  template <typename Out, typename Src>
  static void fill_panel_as(PackedWeights& pw, const WeightSource* parts, size_t pb, size_t k_begin, size_t k_end) {
    const PanelLayout& l = pw.layout_;
    const size_t k = pw.k_, nr = l.nr;
    size_t s = 0;
    while (pb >= pw.segments_[s].panel_begin + pw.segments_[s].panels) ++s;
    const PackedSegment& seg = pw.segments_[s];
    const size_t pl = pb - seg.panel_begin;
    Out* panel = reinterpret_cast<Out*>(pw.buffer_.as<unsigned char>() + pb * pw.panel_bytes());
    // Per panel column: its offset in a packed row, where its source column
    // starts and the stride from one k to the next (null: a padding column).
    size_t col_off[kMaxNr], k_stride[kMaxNr];
    const Src* col_src[kMaxNr];
    for (size_t c = 0; c < nr; ++c) {
      const detail::ColumnSource cs = detail::column_source(parts, s, seg, nr, pl, c);
      const WeightSource& w = *cs.src;
      col_off[c] = packed_offset(l, 0, c);
      const bool real = cs.col < w.n;
      const Src* data = static_cast<const Src*>(w.data);
      col_src[c] = !real ? nullptr : w.layout == SourceLayout::kNK ? data + cs.col * w.ld : data + cs.col;
      k_stride[c] = w.layout == SourceLayout::kNK ? 1 : w.ld;
    }
    const bool along_k = parts[seg.gate_up ? 0 : s].layout == SourceLayout::kNK;
    // Vector panels store row k at k · nr: the transpose needs no row table.
    const bool rows_linear = l.kind == PanelKind::kVector;
    size_t row_off[kKBlock];
    for (size_t k0 = k_begin; k0 < k_end; k0 += kKBlock) {
      const size_t k1 = std::min(k_end, k0 + kKBlock), k_real = std::min(k1, std::max(k0, k));
      for (size_t kk = k0; kk < k1; ++kk) row_off[kk - k0] = packed_offset(l, kk, 0);
      if (along_k) {
        for (size_t c = 0; c < nr; ++c) {
          const Src* src = col_src[c];
          const size_t co = col_off[c], stride = k_stride[c];
          if (!src) {
            for (size_t kk = k0; kk < k1; ++kk) store(panel, row_off[kk - k0] + co, 0.f);
            continue;
          }
          if (stride == 1 && rows_linear) {  // the common transpose: no table, no stride multiply
            // Each of the nr source rows advances one line per block: too many
            // streams, visited too sparsely, for the hardware prefetcher.
            __builtin_prefetch(src + k1 + kPrefetchAhead);
            Out* out = panel + co;
            for (size_t kk = k0; kk < k_real; ++kk) store(out, kk * nr, value(src[kk]));
          } else {
            for (size_t kk = k0; kk < k_real; ++kk) store(panel, row_off[kk - k0] + co, value(src[kk * stride]));
          }
          for (size_t kk = k_real; kk < k1; ++kk) store(panel, row_off[kk - k0] + co, 0.f);
        }
      } else {
        for (size_t kk = k0; kk < k1; ++kk) {
          const size_t ro = row_off[kk - k0];
          const bool real_k = kk < k;
          for (size_t c = 0; c < nr; ++c) {
            const Src* src = col_src[c];
            store(panel, ro + col_off[c], src && real_k ? value(src[kk * k_stride[c]]) : 0.f);
          }
        }
      }
    }
  }

  // Rows [k_begin, k_end) of panel pb.
  template <typename Src>
  static void fill_panel(PackedWeights& pw, const WeightSource* parts, size_t pb, size_t k_begin, size_t k_end) {
    if (pw.layout_.type == WeightType::kF32) {
      fill_panel_as<float, Src>(pw, parts, pb, k_begin, k_end);
    } else {
      fill_panel_as<uint16_t, Src>(pw, parts, pb, k_begin, k_end);
    }
  }

  struct FillJob {
    PackedWeights* pw;
    const WeightSource* parts;
    size_t tasks;
    std::atomic<bool> unpackable{false};
  };
  // Task t fills a contiguous share of the panels: the bytes written do not
  // depend on how many tasks there are.
  // Row kk of vector panels [p0, p1) of one separate (not gate/up) segment from
  // a [K][N] source: each panel row is nr consecutive source columns, so the
  // source row is read as one stream. fp32: a copy; bf16: lane l of the row's
  // uint32 holds column l (low half) and column lanes + l (high half).
  template <typename Src>
  static void fill_vector_row_kn(PackedWeights& pw, const WeightSource& w, const PackedSegment& seg, size_t kk,
                                 size_t p0, size_t p1) {
    const PanelLayout& l = pw.layout_;
    const size_t nr = l.nr, lanes = l.lanes;
    const Src* row = static_cast<const Src*>(w.data) + kk * w.ld;
    for (size_t pb = p0; pb < p1; ++pb) {
      const size_t col0 = (pb - seg.panel_begin) * nr, real = std::min(nr, w.n - col0);
      unsigned char* panel_row = pw.buffer_.as<unsigned char>() + pb * pw.panel_bytes() + kk * nr * l.element_bytes();
      const Src* src = row + col0;
      if (std::is_same<Src, float>::value && l.type == WeightType::kF32 && real == nr) {
        write_rows(pw, src, panel_row, nr * sizeof(float));
      } else if (l.type == WeightType::kF32) {
        float* out = reinterpret_cast<float*>(panel_row);
        for (size_t c = 0; c < real; ++c) out[c] = value(src[c]);
        for (size_t c = real; c < nr; ++c) out[c] = 0.f;
      } else if (real == nr) {
        uint32_t* out = reinterpret_cast<uint32_t*>(panel_row);
        for (size_t c = 0; c < lanes; ++c) {
          out[c] = uint32_t{f32_to_bf16(value(src[c])).bits} | uint32_t{f32_to_bf16(value(src[lanes + c])).bits} << 16;
        }
      } else {
        uint16_t* out = reinterpret_cast<uint16_t*>(panel_row);
        for (size_t c = 0; c < nr; ++c) store(out, packed_offset(l, 0, c), c < real ? value(src[c]) : 0.f);
      }
    }
  }

  static void fill_share(void* context, size_t t) {
    FillJob& job = *static_cast<FillJob*>(context);
    PackedWeights& pw = *job.pw;
    const size_t panels = pw.panels_, p0 = panels * t / job.tasks, p1 = panels * (t + 1) / job.tasks;
    const detail::GemmKernel& kernel = detail::gemm_kernel_of(pw.layout_);
    if (kernel.pack) {
      const detail::PackJob pack{&pw.layout_, pw.segments_.data(), pw.segments_.size(), pw.k_, job.parts,
                                 pw.buffer_.as<unsigned char>(), pw.panel_bytes()};
      if (!kernel.pack(pack, p0, p1)) job.unpackable.store(true);
    } else if (job.parts[0].type == SourceType::kBf16) {
      fill_share_as<bf16>(pw, job.parts, p0, p1);
    } else {
      fill_share_as<float>(pw, job.parts, p0, p1);
    }
    // Non-temporal stores are ordered before the executor reports this task
    // done (and before pack_weights returns on this thread).
    hwy::FlushStream();
  }

  template <typename Src>
  static void fill_share_as(PackedWeights& pw, const WeightSource* parts, size_t p0, size_t p1) {
    const size_t k = pw.k_, padded_k = pw.layout_.padded_k(k);
    // Each segment in the order its own source is laid out (sources of one
    // call may mix [K][N] and [N][K]; a gate/up pair is ordered by its gate).
    for (size_t s = 0; s < pw.segments_.size(); ++s) {
      const PackedSegment& seg = pw.segments_[s];
      const size_t q0 = std::max(p0, seg.panel_begin), q1 = std::min(p1, seg.panel_begin + seg.panels);
      if (q0 >= q1) continue;
      if (parts[seg.gate_up ? 0 : s].layout == SourceLayout::kNK) {
        // Each panel reads nr source rows front to back: panel by panel.
        for (size_t pb = q0; pb < q1; ++pb) fill_panel<Src>(pw, parts, pb, 0, padded_k);
        continue;
      }
      // A [K][N] source row holds a little of every panel. Panel by panel,
      // each of its rows is a cache miss one row stride (N floats) from the
      // last: 0.3-0.9 GB/s at 11008 × 4096. Vector panels of separate
      // segments go row by row across all of this share's panels instead
      // (one read stream); the other layouts (AMX pairs, BFMMLA blocks,
      // gate/up) take K blocks across the panels, which the general fill
      // handles.
      if (pw.layout_.kind == PanelKind::kVector && !seg.gate_up) {
        for (size_t kk = 0; kk < k; ++kk) fill_vector_row_kn<Src>(pw, parts[s], seg, kk, q0, q1);
        for (size_t pb = q0; pb < q1; ++pb) fill_panel<Src>(pw, parts, pb, k, padded_k);  // zero rows past K
      } else {
        for (size_t k0 = 0; k0 < padded_k; k0 += kKBlock) {
          for (size_t pb = q0; pb < q1; ++pb) fill_panel<Src>(pw, parts, pb, k0, std::min(padded_k, k0 + kKBlock));
        }
      }
    }
  }

  // Fills the panels; false when the kernel's packing found a value it cannot
  // pack (a non-finite weight to quantize).
  static bool fill(PackedWeights& pw, const WeightSource* parts, Executor* executor) {
    // K = 0: no bytes, and the sources may be null (nothing is read).
    if (pw.panel_bytes() == 0) return true;
    FillJob job{&pw, parts, 1};
    if (executor && executor->num_threads() > 1 && pw.panels_ > 1) {
      job.tasks = std::min(executor->num_threads(), pw.panels_);
      executor->run(job.tasks, &fill_share, &job);
    } else {
      fill_share(&job, 0);
    }
    return !job.unpackable.load();
  }

  static AlignedBuffer& buffer(PackedWeights& pw) { return pw.buffer_; }

  static Status allocate(PackedWeights& pw, size_t bytes, PageHint hint) {
    if (!pw.buffer_.allocate(bytes, hint)) {
      return fail(Status::kOutOfMemory, "pack_weights: cannot allocate %zu bytes", bytes);
    }
    return Status::kOk;
  }
};

TILEKIT_API Status packed_weights_size(const WeightSource* parts, size_t count, WeightType type, PackKind kind,
                                       size_t* bytes, const PackOptions& options) {
  if (!bytes) return fail(Status::kNullPointer, "packed_weights_size: bytes is null");
  PackedWeights plan;
  return PackAccess::plan(parts, count, type, kind, options, &plan, bytes);
}

TILEKIT_API Status packing_layout(const WeightSource* parts, size_t count, WeightType type, PackKind kind,
                                  const PackOptions& options, PanelLayout* layout) {
  if (!layout) return fail(Status::kNullPointer, "packing_layout: layout is null");
  PackedWeights plan;
  size_t bytes = 0;
  const Status s = PackAccess::plan(parts, count, type, kind, options, &plan, &bytes);
  if (s == Status::kOk) *layout = plan.layout();
  return s;
}

TILEKIT_API Status pack_weights(const WeightSource* parts, size_t count, WeightType type, PackKind kind,
                                PackedWeights* out, const PackOptions& options) {
  if (!out) return fail(Status::kNullPointer, "pack_weights: out is null");
  PackedWeights pw;
  size_t bytes = 0;
  Status s = PackAccess::plan(parts, count, type, kind, options, &pw, &bytes);
  if (s != Status::kOk) return s;
  // Packing again into weights of the same size (a reload, a benchmark) reuses
  // their buffer: a new one costs the OS zeroing every page before the fill
  // writes it (~30% of packing 11008 × 4096 fp32 into fresh memory). Nothing
  // can fail after this point but quantizing (a non-finite weight), so that
  // fills a buffer of its own and *out is left as it was on every error.
  if (!is_quantized(type) && PackAccess::buffer(*out).size() == bytes) {
    PackAccess::buffer(pw) = std::move(PackAccess::buffer(*out));
  } else if ((s = PackAccess::allocate(pw, bytes, options.hint)) != Status::kOk) {
    return s;
  }
  if (!PackAccess::fill(pw, parts, options.executor)) {
    return fail(Status::kInvalidArgument, "pack_weights: a source holds a NaN or infinite weight, which %s weights "
                "cannot hold", weight_type_name(type));
  }
  *out = std::move(pw);
  return Status::kOk;
}
TILEKIT_API Status pack_weights(const WeightSource& w, WeightType type, PackedWeights* out,
                                const PackOptions& options) {
  return pack_weights(&w, 1, type, PackKind::kSeparate, out, options);
}
TILEKIT_API Status pack_weights_gate_up(const WeightSource& gate, const WeightSource& up, WeightType type,
                                        PackedWeights* out, const PackOptions& options) {
  const WeightSource parts[2] = {gate, up};
  return pack_weights(parts, 2, type, PackKind::kGateUp, out, options);
}

}  // namespace tilekit

#endif  // TILEKIT_GEMM_PACKED_WEIGHTS_IMPL_H_

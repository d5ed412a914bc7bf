// Definitions of gemm/packed_weights.h: the layout choice (it asks the active
// Highway target for its vector width) and the packing itself. The kernels
// translation unit only.
#ifndef TILEKIT_GEMM_PACKED_WEIGHTS_IMPL_H_
#define TILEKIT_GEMM_PACKED_WEIGHTS_IMPL_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "tilekit/cpu/dispatch.h"
#include "tilekit/gemm/packed_weights.h"

namespace tilekit {

namespace detail {

// The layout path `isa`'s kernels read. bf16 weights on the amx path get the
// AMX layout (fp32 weights stay on the vector kernel: AMX has no fp32
// multiply). Its epilogue runs on the AVX-512 target's 16-lane vectors (a panel
// = 2 vectors); a build without that target keeps the vector layout.
inline PanelLayout panel_layout_on(Isa isa, WeightType type) {
  PanelLayout l;
  l.lanes = static_cast<uint32_t>(TILEKIT_DISPATCH_ON(isa, detail::GemmPanelLanes)());
  l.nr = 2 * l.lanes;
  l.type = type;
  if (type == WeightType::kBf16 && isa == Isa::kAmx && l.lanes == 16) {
    l.kind = PanelKind::kAmx;
    l.k_align = 32;
  }
#if TILEKIT_ARCH_ARM64
  // BFMMLA on paths with BF16 (NEON or SVE); its panels keep nr = 2·lanes, the
  // width GemmEpilogueTile stores, so lanes records the SVE vector length.
  if (type == WeightType::kBf16 && (isa == Isa::kNeonBf16 || isa == Isa::kSveBf16)) {
    l.kind = PanelKind::kArmBfmmla;
    l.k_align = 4;
  }
#endif
  return l;
}

// The layout pack_weights gives these weights on path `isa`: the path's
// panels, or for one narrow matrix dot-product columns (bf16 on the amx path:
// a single 16-column AMX panel).
inline PanelLayout packing_layout_on(Isa isa, WeightType type, size_t n, size_t segments, PackKind kind) {
  PanelLayout l = panel_layout_on(isa, type);
  const size_t padded = (n + l.nr - 1) / l.nr * l.nr;
  if (segments == 1 && kind == PackKind::kSeparate && n > 0 && n <= kDotMaxN && 4 * (padded - n) >= padded) {
    if (l.kind == PanelKind::kAmx) {  // one 16-column panel: a single B tile (arch/amx_narrow.h)
      l.nr = 16;
      return l;
    }
    const PanelLayout vector = panel_layout_on(isa, WeightType::kF32);  // lanes of the vector kernels
    l = PanelLayout();
    l.kind = PanelKind::kDot;
    l.lanes = vector.lanes;
    l.nr = 1;
    l.k_align = 2 * vector.lanes;
    l.type = type;
  }
  return l;
}

// Source column for column c (0 <= c < nr = 2·half) of panel `pl` within a
// segment: a gate/up panel holds `half` gate columns, then the same up columns.
struct ColumnSource {
  const WeightSource* src;
  size_t col;
};
inline ColumnSource column_source(const WeightSource* parts, size_t s, const PackedSegment& seg, size_t nr,
                                  size_t pl, size_t c) {
  const size_t half = nr / 2;
  if (seg.gate_up) return {&parts[c < half ? 0 : 1], pl * half + c % half};
  return {&parts[s], pl * nr + c};
}
}  // namespace detail

TILEKIT_API PanelLayout active_panel_layout(WeightType type) {
  return detail::panel_layout_on(cpu::active_isa(), type);
}
TILEKIT_API PanelLayout packing_layout(WeightType type, size_t n, size_t segments, PackKind kind) {
  return detail::packing_layout_on(cpu::active_isa(), type, n, segments, kind);
}

struct PackAccess {
  // Validates the sources and computes everything but the packed bytes.
  static Status plan(const WeightSource* parts, size_t count, WeightType type, PackKind kind,
                     PackedWeights* out, size_t* bytes) {
    if (!parts || count == 0) return fail(Status::kInvalidArgument, "pack_weights: no weight sources");
    if (kind == PackKind::kGateUp && count != 2) {
      return fail(Status::kInvalidArgument, "pack_weights: a gate/up pair needs exactly 2 sources, got %zu", count);
    }
    const size_t k = parts[0].k;
    for (size_t i = 0; i < count; ++i) {
      const WeightSource& w = parts[i];
      if (!w.data && w.k && w.n) return fail(Status::kNullPointer, "pack_weights: source %zu is null", i);
      if (w.k != k) {
        return fail(Status::kShapeMismatch, "pack_weights: source %zu has K=%zu, source 0 has K=%zu", i, w.k, k);
      }
      const size_t cols = w.layout == SourceLayout::kKN ? w.n : w.k;
      if (w.ld < cols) {
        return fail(Status::kBadLeadingDim, "pack_weights: source %zu has ld=%zu < %zu columns", i, w.ld, cols);
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
    p.layout_ = detail::packing_layout_on(p.isa_, type, parts[0].n, segments, kind);
    const size_t lanes = p.layout_.nr / 2;  // gate/up: half a panel each
    for (size_t s = 0; s < segments; ++s) {
      PackedSegment seg;
      seg.n = parts[s].n;
      seg.gate_up = kind == PackKind::kGateUp;
      seg.col_offset = p.n_;
      seg.panel_begin = p.panels_;
      const size_t cols_per_panel = seg.gate_up ? lanes : p.layout_.nr;
      seg.panels = (seg.n + cols_per_panel - 1) / cols_per_panel;
      p.n_ += seg.n;
      p.panels_ += seg.panels;
      p.segments_.push_back(seg);
    }
    // K near SIZE_MAX would wrap when padded to k_align.
    if (k > SIZE_MAX - p.layout_.k_align ||
        !detail::mul_fits(p.panels_, size_t{p.layout_.nr} * p.layout_.element_bytes(), bytes) ||
        !detail::mul_fits(*bytes, p.layout_.padded_k(k), bytes)) {
      return fail(Status::kOverflow, "pack_weights: packed size of K=%zu, N=%zu overflows", k, p.n_);
    }
    *out = std::move(p);
    return Status::kOk;
  }

  // Writes panel `pb` (global index) of pw from the sources, K in blocks of
  // kKBlock rows so that the block of the panel being written (kKBlock × nr
  // elements, 8 KiB in fp32 at nr = 32) stays in L1 while the sources are
  // read along their rows: along K for a [N][K] source, along N for [K][N].
  static void fill_panel(PackedWeights& pw, const WeightSource* parts, size_t pb) {
    constexpr size_t kKBlock = 64;
    const PanelLayout& l = pw.layout_;
    const size_t k = pw.k_, padded_k = l.padded_k(k);
    size_t s = 0;
    while (pb >= pw.segments_[s].panel_begin + pw.segments_[s].panels) ++s;
    const PackedSegment& seg = pw.segments_[s];
    const size_t pl = pb - seg.panel_begin;
    unsigned char* panel = pw.buffer_.as<unsigned char>() + pb * pw.panel_bytes();
    const auto put = [&](size_t kk, size_t c, float v) {
      const size_t at = packed_offset(l, kk, c);
      if (l.type == WeightType::kF32) {
        reinterpret_cast<float*>(panel)[at] = v;
      } else {
        reinterpret_cast<uint16_t*>(panel)[at] = f32_to_bf16(v).bits;
      }
    };
    const bool along_k = parts[seg.gate_up ? 0 : s].layout == SourceLayout::kNK;
    for (size_t k0 = 0; k0 < padded_k; k0 += kKBlock) {
      const size_t k1 = std::min(padded_k, k0 + kKBlock);
      if (along_k) {
        for (size_t c = 0; c < l.nr; ++c) {
          const detail::ColumnSource cs = detail::column_source(parts, s, seg, l.nr, pl, c);
          const bool real = cs.col < cs.src->n;
          for (size_t kk = k0; kk < k1; ++kk) put(kk, c, real && kk < k ? cs.src->at(kk, cs.col) : 0.f);
        }
      } else {
        for (size_t kk = k0; kk < k1; ++kk) {
          for (size_t c = 0; c < l.nr; ++c) {
            const detail::ColumnSource cs = detail::column_source(parts, s, seg, l.nr, pl, c);
            put(kk, c, cs.col < cs.src->n && kk < k ? cs.src->at(kk, cs.col) : 0.f);
          }
        }
      }
    }
  }

  struct FillJob {
    PackedWeights* pw;
    const WeightSource* parts;
    size_t tasks;
  };
  // Task t fills a contiguous share of the panels: the bytes written do not
  // depend on how many tasks there are.
  static void fill_share(void* context, size_t t) {
    const FillJob& job = *static_cast<const FillJob*>(context);
    const size_t panels = job.pw->panels_;
    for (size_t pb = panels * t / job.tasks; pb < panels * (t + 1) / job.tasks; ++pb) {
      fill_panel(*job.pw, job.parts, pb);
    }
  }

  static void fill(PackedWeights& pw, const WeightSource* parts, Executor* executor) {
    FillJob job{&pw, parts, 1};
    if (executor && executor->num_threads() > 1 && pw.panels_ > 1) {
      job.tasks = std::min(executor->num_threads(), pw.panels_);
      executor->run(job.tasks, &fill_share, &job);
    } else {
      fill_share(&job, 0);
    }
  }

  static Status allocate(PackedWeights& pw, size_t bytes, PageHint hint) {
    if (!pw.buffer_.allocate(bytes, hint)) {
      return fail(Status::kOutOfMemory, "pack_weights: cannot allocate %zu bytes", bytes);
    }
    return Status::kOk;
  }
};

TILEKIT_API Status packed_weights_size(const WeightSource* parts, size_t count, WeightType type, PackKind kind,
                                       size_t* bytes) {
  if (!bytes) return fail(Status::kNullPointer, "packed_weights_size: bytes is null");
  PackedWeights plan;
  return PackAccess::plan(parts, count, type, kind, &plan, bytes);
}

TILEKIT_API Status pack_weights(const WeightSource* parts, size_t count, WeightType type, PackKind kind,
                                PackedWeights* out, const PackOptions& options) {
  if (!out) return fail(Status::kNullPointer, "pack_weights: out is null");
  PackedWeights pw;
  size_t bytes = 0;
  Status s = PackAccess::plan(parts, count, type, kind, &pw, &bytes);
  if (s == Status::kOk) s = PackAccess::allocate(pw, bytes, options.hint);
  if (s != Status::kOk) return s;
  PackAccess::fill(pw, parts, options.executor);
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

// Definitions of gemm/gemm.h, the target-independent part of the GEMM:
// validation, blocking, threading. Compiled in the kernels translation unit
// (tilekit/implementation.h); the loops and the micro-kernel are per target
// (gemm-inl.h), or a matrix-instruction kernel of arch/ for its own panel
// kind (arch_gemm below).
#ifndef TILEKIT_GEMM_GEMM_IMPL_H_
#define TILEKIT_GEMM_GEMM_IMPL_H_

#include <algorithm>
#include <atomic>
#include <cstddef>

#include "tilekit/arch/amx_gemm.h"
#include "tilekit/arch/amx_narrow.h"
#include "tilekit/arch/arm_bf16_gemm.h"
#include "tilekit/base/aligned_buffer.h"
#include "tilekit/cpu/dispatch.h"
#include "tilekit/epilogue/check.h"
#include "tilekit/gemm/gemm.h"
#include "tilekit/gemm/packed_weights-impl.h"  // packing_layout_on
#include "tilekit/gemm/plan.h"

namespace tilekit {

namespace detail {

// A is copied (and widened from bf16) into mr-row panels before use, except
// for a single row tile (M <= mr: M = 1 is a GEMV; up to mr rows fit in L1's
// ways) and with fewer panels than kPackAMinPanels (N = 10: each A element meets
// so few weights that copying it first costs more than the strided
// broadcasts). Read in place, the rows of two or more tiles lie a large lda
// apart, map to the same L1 sets and evict each other: fp32 M = 16 and 32
// went from 1.25-1.38x to 1.53-1.76x oneDNN's once packed, for a copy of
// M × K floats that costs ~0.3% of streaming the weights. bf16 A is always
// packed (widened).
constexpr size_t kPackAMinPanels = 4;

struct Blocking {
  size_t mc, kc, nc_panels;
  bool a_block_in_l2;  // the packed A block fits in half of L2
};

// Cache blocking from cpuinfo's cache sizes (with fallbacks: qemu reports none).
//   kc: the kc × nr slice of a weight panel fills half of L1, leaving the rest
//       for the A panel and C tile streaming past it; K is split into equal
//       blocks so the last is not a sliver.
//   mc: the mc × kc A slice the tiles stream fills a quarter of L2 (A is
//       packed once per row block, all of K: mc × K floats of workspace).
//   nc: the partial sums of a panel group (mc × nc fp32) fill another quarter;
//       with a single K block there are no partial sums and one group is all.
inline Blocking choose_blocking(size_t m, size_t k, size_t panels, size_t nr, size_t mr, size_t b_bytes,
                                bool pack_a) {
  const cpu::Features& f = cpu::features();
  const size_t l1 = f.l1d ? f.l1d : (size_t{32} << 10);
  const size_t l2 = f.l2 ? f.l2 : (size_t{1} << 20);
  Blocking b;
  // At most one row tile (M <= mr, M = 1 above all) nothing reuses a B slice:
  // one K block streams each panel front to back with no partial sums.
  const size_t kc_max = m <= mr ? std::max<size_t>(k, 1)
                                : std::max<size_t>(16, std::min<size_t>(1024, l1 / 2 / (nr * b_bytes)));
  const size_t k_blocks = std::max<size_t>(1, (k + kc_max - 1) / kc_max);
  b.kc = (k + k_blocks - 1) / k_blocks;
  const size_t m_rounded = (m + mr - 1) / mr * mr;
  if (pack_a) {
    b.mc = std::max(mr, l2 / 4 / (std::max<size_t>(b.kc, 1) * sizeof(float)) / mr * mr);
    b.mc = std::min(b.mc, m_rounded);
  } else {
    b.mc = m;
  }
  const size_t mc_rounded = (b.mc + mr - 1) / mr * mr;
  b.nc_panels = k_blocks == 1 ? panels : std::max<size_t>(1, l2 / 4 / (mc_rounded * nr * sizeof(float)));
  b.a_block_in_l2 = pack_a && mc_rounded * k * sizeof(float) <= l2 / 2;
  return b;
}

// Floats of per-thread workspace GemmRange needs: the packed A block and the
// partial sums of one panel group (see gemm-inl.h).
inline size_t workspace_floats(const GemmPlan& p, size_t nr, size_t mr) {
  const size_t mc_rounded = (p.mc + mr - 1) / mr * mr;
  const size_t a = p.pack_a ? mc_rounded * p.k : 0;
  const size_t c = p.kc < p.k ? mc_rounded * p.nc_panels * nr : 0;
  return a + c;
}

struct ThreadShare {
  size_t r0, r1, p0, p1;
};

// Splits rows × panels into `threads` contiguous shares. Panels are split when
// there are enough of them (M = 1 and small M keep both cores streaming
// weights); rows otherwise (N = 10), or whenever there are rows enough and
// rows_first (dot-product columns with many rows: each thread reading all of
// A for half the columns would double the traffic that bounds them). Row
// shares are multiples of mr so each row is computed by the same tile shape
// whatever the thread count.
inline ThreadShare share_of(size_t task, size_t threads, size_t m, size_t panels, size_t mr, bool rows_first) {
  const size_t row_blocks = (m + mr - 1) / mr;
  if (row_blocks < threads || (!rows_first && panels >= 4 * threads)) {
    const size_t p0 = panels * task / threads, p1 = panels * (task + 1) / threads;
    return {0, m, p0, p1};
  }
  const size_t b0 = row_blocks * task / threads, b1 = row_blocks * (task + 1) / threads;
  return {b0 * mr, std::min(m, b1 * mr), 0, panels};
}

using GemmRangeFn = void (*)(const GemmPlan&, size_t, size_t, size_t, size_t, float*);

// A kernel reading its own panel kind (a matrix-instruction kernel of arch/, or
// the dot-product kernel of narrow weights): the row granularity of thread
// shares (its micro-tile height), its blocking (mc, kc, nc, pack_a: it knows
// its tiles and caches, the vector table does not), the loop over one thread's
// share (same contract as the Highway GemmRange), the floats of per-thread
// workspace it needs and how shares are cut. kVector panels use the Highway
// GemmRange.
struct ArchGemm {
  size_t mr = 0;
  void (*block)(GemmPlan&) = nullptr;
  GemmRangeFn range = nullptr;
  size_t (*workspace_floats)(const GemmPlan&) = nullptr;
  bool rows_first = false;
};

// kDot: no blocking (A rows stream once, the narrow weights stay in cache), no
// workspace.
inline void dot_block(GemmPlan& p) {
  p.pack_a = false;
  p.mc = p.m;
  p.kc = p.k;
  p.nc_panels = 0;
  for (size_t s = 0; s < p.num_segments; ++s) p.nc_panels += p.segments[s].panels;
}
inline size_t no_workspace(const GemmPlan&) { return 0; }

inline ArchGemm arch_gemm(const PanelLayout& layout, Isa isa) {
  switch (layout.kind) {
    case PanelKind::kVector: break;
    case PanelKind::kDot:
      return ArchGemm{TILEKIT_DISPATCH_ON(isa, GemmDotMR)(), &dot_block, TILEKIT_DISPATCH_ON(isa, GemmDotRange),
                      &no_workspace,
                      /*rows_first=*/true};
    case PanelKind::kAmx:
#if TILEKIT_ARCH_X86
      if (layout.nr == arch::kNarrowNR) {  // one narrow matrix: one 16-column panel, rows split
        return ArchGemm{arch::kNarrowShareRows, &arch::amx_narrow_block, &arch::amx_narrow_range,
                        &arch::amx_narrow_workspace_floats, /*rows_first=*/true};
      }
      return ArchGemm{arch::kAmxMR, &arch::amx_gemm_block, &arch::amx_gemm_range, &arch::amx_gemm_workspace_floats};
#else
      break;  // never chosen: panel_layout_on() gives kAmx only on the amx path
#endif
    case PanelKind::kArmBfmmla:
#if TILEKIT_ARCH_ARM64
      // mr: BFMMLA row tiles; blocking: the vector path's (nullptr), kc rounded to kr inside.
      return ArchGemm{arch::kBfmmlaMR, nullptr, &arch::BfmmlaGemmRange, &arch::BfmmlaWorkspaceFloats};
#else
      break;
#endif
  }
  return ArchGemm();
}

// Waking another thread and waiting for it costs microseconds, more in a
// loaded VM where the other vCPU may be busy (1 × 64 × 64: 0.3-0.5 µs on one
// thread, 1.3-4.1 µs split over two; warm 1 × 256 × 256 and 32 × 128 × 128,
// ~6 and ~13 µs alone, ran 0.53× and 0.49× as fast split over two threads with
// the limit at ~5 µs). A call is split only when each thread's share is worth
// ~20 µs, judged by a crude estimate in units of ~10 ps: one per flop
// (~100 GFLOP/s per core) or four per weight byte (~25 GB/s: warm weights of a
// small layer stream from L2/L3, cold ones are larger and split anyway).
constexpr size_t kMinSplitWorkPerThread = size_t{2} << 20;  // ~20 µs

inline bool worth_splitting(size_t m, size_t n, size_t k, size_t weight_bytes, size_t threads) {
  const double flops = 2.0 * static_cast<double>(m) * static_cast<double>(k) * static_cast<double>(n);
  const double work = std::max(flops, 4.0 * static_cast<double>(weight_bytes));
  return work >= static_cast<double>(kMinSplitWorkPerThread) * static_cast<double>(threads);
}

struct GemmJob {
  const GemmPlan* plan;
  GemmRangeFn range;
  size_t threads, panels, mr, workspace_floats;
  bool rows_first;
  std::atomic<bool> out_of_memory{false};
};

// Each thread keeps its A-packing workspace across calls: it only grows, so
// after the first call of the largest shape there is no allocation.
inline float* thread_workspace(size_t floats) {
  static thread_local AlignedBuffer buffer;
  return buffer.reserve(floats * sizeof(float)) ? buffer.as<float>() : nullptr;
}

inline void run_share(void* context, size_t task) {
  GemmJob& job = *static_cast<GemmJob*>(context);
  const GemmPlan& p = *job.plan;
  const ThreadShare s = share_of(task, job.threads, p.m, job.panels, job.mr, job.rows_first);
  if (s.r0 >= s.r1 || s.p0 >= s.p1) return;
  float* ws = job.workspace_floats ? thread_workspace(job.workspace_floats) : nullptr;
  if (job.workspace_floats && !ws) {
    job.out_of_memory.store(true);
    return;
  }
  job.range(p, s.r0, s.r1, s.p0, s.p1, ws);
}

template <typename TA, typename TC>
Status check_output(const char* gemm, const MatrixView<const TA>& a, const MatrixView<TC>& c,
                    const Epilogue& ep, const PackedSegment& seg) {
  Status s = check_view(gemm, "C", c);
  if (s != Status::kOk) return s;
  if (c.rows != a.rows || c.cols != seg.n) {
    return fail(Status::kShapeMismatch, "%s: C is %zu x %zu, expected %zu x %zu (M x N)", gemm, c.rows, c.cols,
                a.rows, seg.n);
  }
  size_t a_bytes = 0, c_bytes = 0;
  span_bytes(a, &a_bytes);
  span_bytes(c, &c_bytes);
  if (ranges_overlap(a.data, a_bytes, c.data, c_bytes)) return fail(Status::kAliasing, "%s: A overlaps C", gemm);
  if ((s = check_epilogue_operands(gemm, c, c_bytes, ep)) != Status::kOk) return s;
  if (seg.gate_up != (ep.activation == Activation::kSwiGlu)) {
    return fail(Status::kInvalidArgument,
                seg.gate_up ? "%s: weights packed as a gate/up pair need Activation::kSwiGlu"
                            : "%s: Activation::kSwiGlu needs weights packed with pack_weights_gate_up",
                gemm);
  }
  if (seg.gate_up && ep.bias) {
    return fail(Status::kInvalidArgument, "%s: bias is not supported with a gate/up pair", gemm);
  }
  return Status::kOk;
}

template <typename TA, typename TC>
Status run_gemm(const char* gemm, const MatrixView<const TA>& a, const PackedWeights& b,
                const FusedOutput<TC>* outputs, bool concatenated, const GemmOptions& opt) {
  static_assert(kIsKernelElement<TA> && kIsKernelElement<TC>, "gemm takes float or bf16 matrices");
  Status s = check_view(gemm, "A", a);
  if (s != Status::kOk) return s;
  if (b.empty()) return fail(Status::kInvalidArgument, "%s: weights are not packed", gemm);
  if (a.cols != b.k()) {
    return fail(Status::kShapeMismatch, "%s: A has K=%zu columns, weights have K=%zu rows", gemm, a.cols, b.k());
  }
  // The path, read once: the layout check, the tile height, the loops and the
  // epilogue (on every executor thread, through the plan) all use it.
  const Isa isa = cpu::active_isa();
  const PanelLayout want = packing_layout_on(isa, b.type(), b.n(), b.segments().size(),
                                            b.has_gate_up() ? PackKind::kGateUp : PackKind::kSeparate);
  if (!(b.layout() == want)) {
    return fail(Status::kWrongPacking,
                "%s: weights were packed for path %s (%s layout, nr=%u) but the active path %s reads the %s layout "
                "with nr=%u; pack them again on this path",
                gemm, isa_name(b.packed_for()), panel_kind_name(b.layout().kind), unsigned{b.layout().nr},
                isa_name(isa), panel_kind_name(want.kind), unsigned{want.nr});
  }
  const size_t segments = b.segments().size();
  if (segments > kMaxSegments) {
    return fail(Status::kInvalidArgument, "%s: %zu weight segments, at most %zu", gemm, segments, kMaxSegments);
  }
  GemmPlan plan;
  for (size_t i = 0; i < segments; ++i) {
    const PackedSegment& seg = b.segments()[i];
    const FusedOutput<TC>& o = outputs[concatenated ? 0 : i];
    SegmentPlan& sp = plan.segments[i];
    sp.panel_begin = seg.panel_begin;
    sp.panels = seg.panels;
    sp.n = seg.n;
    sp.gate_up = seg.gate_up;
    sp.ldc = o.c.ld;
    sp.epilogue = o.epilogue;
    if (concatenated) {
      // One C for all segments: segment i writes its columns at col_offset.
      PackedSegment whole = seg;
      whole.n = b.n();
      if (i == 0 && (s = check_output(gemm, a, o.c, o.epilogue, whole)) != Status::kOk) return s;
      if (seg.gate_up != (o.epilogue.activation == Activation::kSwiGlu)) {
        return check_output(gemm, a, o.c, o.epilogue, seg);
      }
      sp.c = o.c.data + seg.col_offset;
      if (sp.epilogue.bias) sp.epilogue.bias += seg.col_offset;
      if (sp.epilogue.residual) sp.epilogue.residual += seg.col_offset;
    } else {
      if ((s = check_output(gemm, a, o.c, o.epilogue, seg)) != Status::kOk) return s;
      sp.c = o.c.data;
    }
  }
  if (a.rows == 0 || b.n() == 0) return Status::kOk;

  const ArchGemm arch = arch_gemm(b.layout(), isa);
  const size_t mr = arch.mr ? arch.mr : TILEKIT_DISPATCH_ON(isa, GemmMR)();
  plan.isa = isa;
  plan.m = a.rows;
  plan.k = a.cols;
  plan.a = a.data;
  plan.lda = a.ld;
  plan.a_bf16 = kIsBf16<TA>;
  plan.b = b.panel(0);
  plan.panel_bytes = b.panel_bytes();
  plan.b_bf16 = b.type() == WeightType::kBf16;
  plan.c_bf16 = kIsBf16<TC>;
  plan.num_segments = segments;
  const size_t nr = b.layout().nr;
  if (arch.block) {
    arch.block(plan);
  } else {  // the vector path's blocking (also for arch kernels that adapt it)
    plan.pack_a = plan.a_bf16 || (a.rows > mr && b.panels() >= kPackAMinPanels);
    const Blocking blk = choose_blocking(a.rows, a.cols, b.panels(), nr, mr, b.layout().element_bytes(), plan.pack_a);
    plan.mc = blk.mc;
    plan.kc = blk.kc;
    plan.nc_panels = blk.nc_panels;
    // When every panel can re-read the packed A block from L2, one panel per
    // group makes B one stream read front to back, which the vector loops
    // prefetch best (SlicePrefetch in gemm-inl.h): fp32 M = 16 and 32 went from
    // 1.25-1.38x to 1.53-1.76x oneDNN's. With A larger than that (32 × 11008)
    // groups stay: one panel per group was slower there, 1.14-1.21x against
    // 1.44-1.50x. The Arm BFMMLA loops pack A per group and keep theirs.
    if (!arch.range && blk.a_block_in_l2) plan.nc_panels = 1;
  }

  GemmJob job;
  job.plan = &plan;
  job.range = arch.range ? arch.range : TILEKIT_DISPATCH_ON(isa, GemmRange);
  job.threads = 1;
  job.panels = b.panels();
  job.mr = mr;
  // Dot-product columns: a row split has every thread read all the weights, a
  // column split all of A. With few rows the weights are the cold stream (a
  // model's activations arrive warm), so columns are split up to M = 4N: at
  // N = 10 on 2 threads, in one process, columns were 1.46x / 1.07x rows at
  // M = 10 / 32 and 0.71x at M = 64.
  job.rows_first = arch.rows_first && a.rows > 4 * b.n();
  job.workspace_floats = arch.range ? arch.workspace_floats(plan) : workspace_floats(plan, nr, mr);
  size_t busy_shares = 1, first_busy = 0;
  if (opt.executor && opt.executor->num_threads() > 1 &&
      worth_splitting(a.rows, b.n(), a.cols, b.bytes(), opt.executor->num_threads())) {
    job.threads = opt.executor->num_threads();
    busy_shares = 0;
    for (size_t t = 0; t < job.threads; ++t) {
      const ThreadShare sh = share_of(t, job.threads, plan.m, job.panels, job.mr, job.rows_first);
      if (sh.r0 < sh.r1 && sh.p0 < sh.p1 && busy_shares++ == 0) first_busy = t;
    }
  }
  // A shape that leaves all the work to one share (one panel and one row
  // block: narrow weights at M <= 32 on AMX) runs it on the calling thread:
  // waking a worker only to wait for it cost 0.67x at 32 × 10 × 11008.
  if (busy_shares > 1) {
    opt.executor->run(job.threads, &run_share, &job);
  } else {
    run_share(&job, first_busy);
  }
  if (job.out_of_memory.load()) {
    // The only error found after work starts: other shares may have written C.
    return fail(Status::kOutOfMemory, "%s: cannot allocate a %zu-byte workspace; C is incomplete", gemm,
                job.workspace_floats * sizeof(float));
  }
  return Status::kOk;
}


template <typename TA, typename TC>
Status gemm(MatrixView<const TA> a, const PackedWeights& b, MatrixView<TC> c, const Epilogue& epilogue,
            const GemmOptions& options) {
  const FusedOutput<TC> out{c, epilogue};
  return run_gemm("gemm", a, b, &out, /*concatenated=*/true, options);
}

template <typename TA, typename TC>
Status gemm_fused(MatrixView<const TA> a, const PackedWeights& b, const FusedOutput<TC>* outputs,
                  size_t num_outputs, const GemmOptions& options) {
  if (!outputs) return fail(Status::kNullPointer, "gemm_fused: outputs is null");
  if (num_outputs != b.segments().size()) {
    return fail(Status::kShapeMismatch, "gemm_fused: %zu outputs for %zu weight segments", num_outputs,
                b.segments().size());
  }
  return run_gemm("gemm_fused", a, b, outputs, /*concatenated=*/false, options);
}

}  // namespace detail

TILEKIT_API Status gemm(MatrixView<const float> a, const PackedWeights& b, MatrixView<float> c,
                        const Epilogue& epilogue, const GemmOptions& options) {
  return detail::gemm(a, b, c, epilogue, options);
}
TILEKIT_API Status gemm(MatrixView<const float> a, const PackedWeights& b, MatrixView<bf16> c,
                        const Epilogue& epilogue, const GemmOptions& options) {
  return detail::gemm(a, b, c, epilogue, options);
}
TILEKIT_API Status gemm(MatrixView<const bf16> a, const PackedWeights& b, MatrixView<float> c,
                        const Epilogue& epilogue, const GemmOptions& options) {
  return detail::gemm(a, b, c, epilogue, options);
}
TILEKIT_API Status gemm(MatrixView<const bf16> a, const PackedWeights& b, MatrixView<bf16> c,
                        const Epilogue& epilogue, const GemmOptions& options) {
  return detail::gemm(a, b, c, epilogue, options);
}

TILEKIT_API Status gemm_fused(MatrixView<const float> a, const PackedWeights& b, const FusedOutput<float>* outputs,
                              size_t num_outputs, const GemmOptions& options) {
  return detail::gemm_fused(a, b, outputs, num_outputs, options);
}
TILEKIT_API Status gemm_fused(MatrixView<const float> a, const PackedWeights& b, const FusedOutput<bf16>* outputs,
                              size_t num_outputs, const GemmOptions& options) {
  return detail::gemm_fused(a, b, outputs, num_outputs, options);
}
TILEKIT_API Status gemm_fused(MatrixView<const bf16> a, const PackedWeights& b, const FusedOutput<float>* outputs,
                              size_t num_outputs, const GemmOptions& options) {
  return detail::gemm_fused(a, b, outputs, num_outputs, options);
}
TILEKIT_API Status gemm_fused(MatrixView<const bf16> a, const PackedWeights& b, const FusedOutput<bf16>* outputs,
                              size_t num_outputs, const GemmOptions& options) {
  return detail::gemm_fused(a, b, outputs, num_outputs, options);
}

}  // namespace tilekit

#endif  // TILEKIT_GEMM_GEMM_IMPL_H_

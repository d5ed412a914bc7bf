// Definitions of gemm/gemm.h, the target-independent part of the GEMM:
// validation, the plan, threading. The kernel record of the weights' layout
// (gemm/kernels.h) decides the tile height, blocking, workspace and loops.
// Compiled once per program, by gemm/implementation.h.
#ifndef TILEKIT_GEMM_GEMM_IMPL_H_
#define TILEKIT_GEMM_GEMM_IMPL_H_

#include <algorithm>
#include <atomic>
#include <cstddef>

#include "tilekit/base/size_math.h"
#include "tilekit/cpu/dispatch.h"
#include "tilekit/epilogue/check.h"
#include "tilekit/gemm/epilogue_functor.h"
#include "tilekit/gemm/gemm.h"
#include "tilekit/gemm/kernels.h"
#include "tilekit/gemm/packed_weights-impl.h"
#include "tilekit/gemm/plan.h"
#include "tilekit/threading/split.h"
#include "tilekit/threading/workspace.h"

namespace tilekit {

namespace detail {

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
  const size_t row_blocks = div_ceil(m, mr);
  if (row_blocks < threads || (!rows_first && panels >= 4 * threads)) {
    const size_t p0 = panels * task / threads, p1 = panels * (task + 1) / threads;
    return {0, m, p0, p1};
  }
  const size_t b0 = row_blocks * task / threads, b1 = row_blocks * (task + 1) / threads;
  return {b0 * mr, std::min(m, b1 * mr), 0, panels};
}

struct GemmJob {
  const GemmPlan* plan;
  GemmRangeFn range;
  size_t threads, panels, mr, workspace_floats;
  bool rows_first;
  std::atomic<bool> out_of_memory{false};
};

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
  if (seg.gate_up != is_gated(ep.activation)) {
    return fail(Status::kInvalidArgument,
                seg.gate_up ? "%s: weights packed as a gate/up pair need Activation::kSwiGlu or kGeGlu"
                            : "%s: Activation::kSwiGlu / kGeGlu needs weights packed with pack_weights_gate_up",
                gemm);
  }
  if (seg.gate_up && ep.bias) {
    return fail(Status::kInvalidArgument, "%s: bias is not supported with a gate/up pair", gemm);
  }
  return Status::kOk;
}

// An engine's functor takes the activation's place, one vector at a time: no
// activation of its own, no gate/up pair (whose store pairs two vectors).
inline Status check_functor(const char* gemm, const Epilogue& ep, bool gate_up) {
  if (ep.activation != Activation::kNone) {
    return fail(Status::kInvalidArgument, "%s: the epilogue functor is the activation; the Epilogue has %s",
                gemm, activation_name(ep.activation));
  }
  if (gate_up) return fail(Status::kInvalidArgument, "%s: an epilogue functor cannot store a gate/up pair", gemm);
  return Status::kOk;
}

template <typename TA, typename TC>
Status run_gemm(const char* gemm, const MatrixView<const TA>& a, const PackedWeights& b,
                const FusedOutput<TC>* outputs, bool concatenated, const GemmOptions& opt,
                const FunctorEpilogue* functor = nullptr) {
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
  PanelLayout want;
  const PackShape shape{b.n(), b.segments().size(), b.has_gate_up() ? PackKind::kGateUp : PackKind::kSeparate,
                        b.k(), b.group()};
  const bool packable = choose_gemm_kernel(isa, b.type(), shape, &want);
  if (!packable) {
    return fail(Status::kWrongPacking, "%s: weights were packed for path %s (%s layout, nr=%u); the active path %s "
                "has no kernel for %s weights", gemm, isa_name(b.packed_for()), panel_kind_name(b.layout().kind),
                unsigned{b.layout().nr}, isa_name(isa), weight_type_name(b.type()));
  }
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
    sp.native_bf16 = kIsBf16<TC> && cpu::isa_converts_bf16(isa);
    if (functor) {
      if ((s = check_functor(gemm, o.epilogue, seg.gate_up)) != Status::kOk) return s;
      sp.functor_tile = functor->tile_for(isa);
      sp.functor_params = functor->params;
    }
    if (concatenated) {
      // One C for all segments: segment i writes its columns at col_offset.
      PackedSegment whole = seg;
      whole.n = b.n();
      if (i == 0 && (s = check_output(gemm, a, o.c, o.epilogue, whole)) != Status::kOk) return s;
      if (seg.gate_up != is_gated(o.epilogue.activation)) {
        return check_output(gemm, a, o.c, o.epilogue, seg);
      }
      sp.c = o.c.data + seg.col_offset;
      sp.c_col = seg.col_offset;
      if (sp.epilogue.bias) sp.epilogue.bias += seg.col_offset;
      if (sp.epilogue.residual) sp.epilogue.residual += seg.col_offset;
    } else {
      if ((s = check_output(gemm, a, o.c, o.epilogue, seg)) != Status::kOk) return s;
      sp.c = o.c.data;
    }
  }
  if (a.rows == 0 || b.n() == 0) return Status::kOk;

  const GemmKernel& kernel = gemm_kernel_of(b.layout());
  const size_t mr = kernel.mr(isa);
  plan.isa = isa;
  plan.m = a.rows;
  plan.k = a.cols;
  plan.a = a.data;
  plan.lda = a.ld;
  plan.a_bf16 = kIsBf16<TA>;
  plan.b = b.panel(0);
  plan.panel_bytes = b.panel_bytes();
  plan.b_bf16 = b.type() == WeightType::kBf16;
  plan.b_type = b.type();
  plan.group = b.group();
  plan.nr = b.layout().nr;
  plan.c_bf16 = kIsBf16<TC>;
  plan.num_segments = segments;
  kernel.block(plan, b.layout(), mr);

  GemmJob job;
  job.plan = &plan;
  job.range = kernel.range(isa, plan);
  job.threads = 1;
  job.panels = b.panels();
  job.mr = mr;
  // Kernels of few panels (narrow weights): a row split has every thread read
  // all the weights, a column split all of A. With few rows the weights are
  // the cold stream (a model's activations arrive warm), so columns are split
  // up to M = 4N: at N = 10 on 2 threads, in one process, columns were 1.46x /
  // 1.07x rows at M = 10 / 32 and 0.71x at M = 64.
  job.rows_first = kernel.rows_first && a.rows > 4 * b.n();
  job.workspace_floats = kernel.workspace_floats(plan, b.layout(), mr);
  size_t busy_shares = 1, first_busy = 0;
  const Work work{2.0 * static_cast<double>(a.rows) * static_cast<double>(a.cols) * static_cast<double>(b.n()),
                  static_cast<double>(b.bytes())};
  const size_t tasks = opt.executor ? worth_tasks(opt.executor, work, opt.executor->num_threads()) : 1;
  if (tasks > 1) {
    job.threads = tasks;
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


// functor: an engine's epilogue functor (gemm/epilogue_functor.h), or null.
template <typename TA, typename TC>
Status gemm(MatrixView<const TA> a, const PackedWeights& b, MatrixView<TC> c, const Epilogue& epilogue,
            const GemmOptions& options, const FunctorEpilogue* functor = nullptr) {
  const FusedOutput<TC> out{c, epilogue};
  return run_gemm(functor ? functor->name : "gemm", a, b, &out, /*concatenated=*/true, options, functor);
}

template <typename TA, typename TC>
Status gemm_fused(MatrixView<const TA> a, const PackedWeights& b, const FusedOutput<TC>* outputs,
                  size_t num_outputs, const GemmOptions& options, const FunctorEpilogue* functor = nullptr) {
  const char* name = functor ? functor->name : "gemm_fused";
  if (!outputs) return fail(Status::kNullPointer, "%s: outputs is null", name);
  if (num_outputs != b.segments().size()) {
    return fail(Status::kShapeMismatch, "%s: %zu outputs for %zu weight segments", name, num_outputs,
                b.segments().size());
  }
  return run_gemm(name, a, b, outputs, /*concatenated=*/false, options, functor);
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

// The entry points of gemm/epilogue_functor.h, which an engine's
// TILEKIT_DEFINE_GEMM_EPILOGUE calls.
#define TILEKIT_GEMM_FUNCTOR_ENTRIES_(TA, TC)                                                                      \
  TILEKIT_API Status detail::gemm_functor(MatrixView<const TA> a, const PackedWeights& b, MatrixView<TC> c,       \
                                          const Epilogue& epilogue, const detail::FunctorEpilogue& f,             \
                                          const GemmOptions& options) {                                           \
    return detail::gemm(a, b, c, epilogue, options, &f);                                                          \
  }                                                                                                               \
  TILEKIT_API Status detail::gemm_fused_functor(MatrixView<const TA> a, const PackedWeights& b,                   \
                                                const FusedOutput<TC>* outputs, size_t num_outputs,               \
                                                const detail::FunctorEpilogue& f, const GemmOptions& options) {   \
    return detail::gemm_fused(a, b, outputs, num_outputs, options, &f);                                           \
  }
TILEKIT_GEMM_FUNCTOR_ENTRIES_(float, float)
TILEKIT_GEMM_FUNCTOR_ENTRIES_(float, bf16)
TILEKIT_GEMM_FUNCTOR_ENTRIES_(bf16, float)
TILEKIT_GEMM_FUNCTOR_ENTRIES_(bf16, bf16)
#undef TILEKIT_GEMM_FUNCTOR_ENTRIES_

}  // namespace tilekit

#endif  // TILEKIT_GEMM_GEMM_IMPL_H_

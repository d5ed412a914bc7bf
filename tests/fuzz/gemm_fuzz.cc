// gemm and gemm_fused from arbitrary bytes: weights packed on one path (every
// source layout, QKV segments, gate/up pairs) and run on another (set_max_isa),
// fp32/bf16 A and C, leading dimensions, every epilogue op (alpha, beta, bias,
// each activation, residual incl. in place, clamp), the built-in executor, and
// a corruption of the call (bad ld, overlap, wrong shape, null, size_t
// overflow, SwiGLU misuse, wrong output count).
//
// Differential: an accepted call is checked element by element against the
// fp64 reference with the error bound of its arithmetic (tests/gemm_reference.h:
// bf16 inputs are rounded on both sides; fp32 sums differ by order only, within
// (K+2)·eps·Σ|a||b|), and padding between rows must stay as it was. A rejected
// call must return an error and leave every output byte as it was.
#include "../gemm_reference.h"
#include "fuzz.h"

namespace tilekit {
namespace {

using fuzz::Snapshot;

enum class Corruption {
  kNone, kALd, kCLd, kResidualLd, kAOverlapsC, kBiasOverlapsC, kResidualOverlapsC, kCRows, kCCols, kAK,
  kNullA, kNullC, kHugeM, kHugeLd, kSwiGluMismatch, kFusedCount, kCount
};

struct Call {
  Isa pack_path, run_path;
  WeightType type;
  bool a_bf16, c_bf16, gate_up, nk, fused, threads;
  size_t m, k, segments, n[3], pad_a, pad_c, pad_r;
  Epilogue ep;  // bias / residual as flags (non-null) until the buffers exist
  bool in_place_residual;
  Corruption corruption;
};

Call Decode(FuzzedDataProvider& in) {
  Call c{};
  c.pack_path = fuzz::PickPath(in);
  c.run_path = in.ConsumeIntegralInRange<int>(0, 3) == 0 ? fuzz::PickPath(in) : c.pack_path;
  c.type = in.ConsumeBool() ? WeightType::kBf16 : WeightType::kF32;
  c.a_bf16 = in.ConsumeBool();
  c.c_bf16 = in.ConsumeBool();
  c.nk = in.ConsumeBool();
  c.threads = in.ConsumeIntegralInRange<int>(0, 3) == 0;
  c.m = fuzz::Dim(in, 40);
  c.k = fuzz::Dim(in, in.ConsumeIntegralInRange<int>(0, 7) == 0 ? 300 : 48);
  c.ep.activation = static_cast<Activation>(in.ConsumeIntegralInRange<int>(0, 6));
  c.gate_up = is_gated(c.ep.activation);
  c.segments = c.gate_up ? 1 : in.ConsumeIntegralInRange<size_t>(1, 3);
  for (size_t s = 0; s < c.segments; ++s) c.n[s] = fuzz::Dim(in, 70);
  c.fused = in.ConsumeBool();
  c.pad_a = in.ConsumeIntegralInRange<size_t>(0, 3);
  c.pad_c = in.ConsumeIntegralInRange<size_t>(0, 3);
  c.pad_r = in.ConsumeIntegralInRange<size_t>(0, 3);
  c.ep.alpha = fuzz::Pick(in, {1.f, 0.5f, -1.5f, 0.f, 3.f});
  c.ep.beta = fuzz::Pick(in, {0.f, 0.f, 1.f, 0.25f, -2.f});
  const uint8_t ops = in.ConsumeIntegral<uint8_t>();
  if ((ops & 1) && !c.gate_up) c.ep.bias = reinterpret_cast<const float*>(1);
  if (ops & 2) c.ep.residual = reinterpret_cast<const float*>(1);
  c.in_place_residual = (ops & 4) && !c.c_bf16;
  if (ops & 8) c.ep.clamp_min = fuzz::Pick(in, {-0.5f, -2.f, 0.f}), c.ep.clamp_max = fuzz::Pick(in, {0.75f, 2.f, 0.f});
  c.corruption = in.ConsumeIntegralInRange<int>(0, 2) == 0
                     ? static_cast<Corruption>(in.ConsumeIntegralInRange<int>(1, static_cast<int>(Corruption::kCount) - 1))
                     : Corruption::kNone;
  return c;
}

// Weights: one K × Ntot row-major matrix; source s is its columns
// [off_s, off_s + n_s) (gate/up: gate = [0, n), up = [n, 2n)), given to the
// packer as [K][N] views or as [N][K] copies.
struct Weights {
  size_t k = 0, ntot = 0;
  std::vector<float> kn;                  // K × ntot, rounded to bf16 when the weights are bf16
  std::vector<std::vector<float>> nk;     // per source, [n_s][k + 1]
  WeightSource src[3];
  size_t off[3] = {};
};

template <typename TA, typename TC>
void Run(const Call& call, fuzz::Values& values) {
  const size_t sources = call.gate_up ? 2 : call.segments;
  size_t n_src[3];
  for (size_t s = 0; s < sources; ++s) n_src[s] = call.gate_up ? call.n[0] : call.n[s];
  Weights w;
  w.k = call.k;
  for (size_t s = 0; s < sources; ++s) w.off[s] = w.ntot, w.ntot += n_src[s];
  w.kn.resize(w.k * w.ntot + 1);  // + 1: never empty, so column offsets into it are defined
  values.fill(w.kn, call.type == WeightType::kBf16);
  w.nk.resize(sources);
  for (size_t s = 0; s < sources; ++s) {
    if (call.nk) {
      w.nk[s].assign(n_src[s] * (w.k + 1), 0.f);
      for (size_t j = 0; j < n_src[s]; ++j)
        for (size_t kk = 0; kk < w.k; ++kk) w.nk[s][j * (w.k + 1) + kk] = w.kn[kk * w.ntot + w.off[s] + j];
      w.src[s] = weights_nk(w.nk[s].data(), n_src[s], w.k, w.k + 1);
    } else {
      w.src[s] = weights_kn(w.kn.data() + w.off[s], w.k, n_src[s], w.ntot);
    }
  }

  // Pack on one path (the packing itself is checked in pack_fuzz).
  fuzz::Force(call.pack_path);
  PackedWeights pw;
  const PackKind kind = call.gate_up ? PackKind::kGateUp : PackKind::kSeparate;
  if (pack_weights(w.src, sources, call.type, kind, &pw) != Status::kOk) return;  // e.g. K = 0 with N = 0
  fuzz::Force(call.run_path);
  const bool layout_ok = pw.layout() == packing_layout(call.type, pw.n(), pw.segments().size(), kind);

  // Inputs and outputs. One C (M × N of every segment) for gemm, one per
  // segment for gemm_fused.
  const size_t m = call.m, k = call.k;
  const size_t lda = k + call.pad_a;
  std::vector<float> a_f32(m * lda + 1);
  values.fill(a_f32, kIsBf16<TA>);
  std::vector<TA> a(a_f32.size());
  for (size_t i = 0; i < a.size(); ++i) {
    if constexpr (kIsBf16<TA>) a[i] = f32_to_bf16(a_f32[i]); else a[i] = a_f32[i];
  }
  const size_t outs = call.fused ? pw.segments().size() : 1;
  struct Out {
    size_t n, ldc, col;
    std::vector<float> c_old;  // fp32 image of C before the call (bf16-exact for bf16 C)
    std::vector<TC> c;
    std::vector<float> bias, residual;
    Epilogue ep;
  };
  std::vector<Out> out(outs);
  for (size_t o = 0; o < outs; ++o) {
    Out& x = out[o];
    x.n = call.fused ? pw.segments()[o].n : pw.n();
    x.col = call.fused ? pw.segments()[o].col_offset : 0;
    x.ldc = x.n + call.pad_c;
    x.c_old.resize(m * x.ldc + 1);
    values.fill(x.c_old, kIsBf16<TC>);
    x.c.resize(x.c_old.size());
    for (size_t i = 0; i < x.c.size(); ++i) {
      if constexpr (kIsBf16<TC>) x.c[i] = f32_to_bf16(x.c_old[i]); else x.c[i] = x.c_old[i];
    }
    x.ep = call.ep;
    if (call.ep.bias) {
      x.bias.resize(x.n + 1);
      values.fill(x.bias);
      x.ep.bias = x.bias.data();
    }
    if (call.ep.residual) {
      if (call.in_place_residual) {
        x.residual = x.c_old;  // what the reference reads: C's values before the call
        x.ep.residual = reinterpret_cast<const float*>(x.c.data());
        x.ep.ld_residual = x.ldc;
      } else {
        const size_t ldr = x.n + call.pad_r;
        x.residual.resize(m * ldr + 1);
        values.fill(x.residual);
        x.ep.residual = x.residual.data();
        x.ep.ld_residual = ldr;
      }
    }
  }

  // The views, then one corruption of them.
  MatrixView<const TA> av{a.data(), m, k, lda};
  std::vector<FusedOutput<TC>> views(outs);
  for (size_t o = 0; o < outs; ++o) views[o] = {MatrixView<TC>{out[o].c.data(), m, out[o].n, out[o].ldc}, out[o].ep};
  size_t num_outputs = outs;
  MatrixView<TC>& c0 = views[0].c;
  Epilogue& e0 = views[0].epilogue;
  bool must_fail = true;
  switch (call.corruption) {
    case Corruption::kNone: must_fail = false; break;
    case Corruption::kALd:
      if (k == 0) return;
      av.ld = k - 1;
      break;
    case Corruption::kCLd:
      if (c0.cols == 0) return;
      c0.ld = c0.cols - 1;
      break;
    case Corruption::kResidualLd:
      if (!e0.residual || c0.cols == 0) return;
      e0.ld_residual = c0.cols - 1;
      break;
    case Corruption::kAOverlapsC:  // A's first row is C's first row
      if (m == 0 || k == 0 || c0.cols == 0) return;
      av.data = reinterpret_cast<const TA*>(c0.data);
      av.rows = 1;
      av.ld = k;
      c0.rows = 1;
      break;
    case Corruption::kBiasOverlapsC:
      if (!e0.bias || m == 0 || c0.cols == 0 || kIsBf16<TC>) return;
      e0.bias = reinterpret_cast<const float*>(c0.data) + (m - 1) * c0.ld;
      break;
    case Corruption::kResidualOverlapsC:  // overlapping but not the exact in-place view
      if (!e0.residual || m < 2 || c0.cols == 0) return;
      e0.residual = reinterpret_cast<const float*>(c0.data) + 1;
      e0.ld_residual = c0.ld;
      if (kIsBf16<TC>) e0.residual = reinterpret_cast<const float*>(c0.data);  // bf16 C: never in place
      break;
    case Corruption::kCRows: c0.rows += 1; break;
    case Corruption::kCCols: c0.cols += 1, c0.ld = std::max(c0.ld, c0.cols); break;
    case Corruption::kAK: av.cols += 1, av.ld = std::max(av.ld, av.cols); break;
    case Corruption::kNullA:
      if (m == 0 || k == 0) return;
      av.data = nullptr;
      break;
    case Corruption::kNullC:
      if (m == 0 || c0.cols == 0) return;
      c0.data = nullptr;
      break;
    case Corruption::kHugeM:  // every view's span overflows size_t
      if (k == 0 || c0.cols == 0) return;
      av.rows = c0.rows = SIZE_MAX - 1;
      break;
    case Corruption::kHugeLd:
      if (m < 2 || k == 0) return;
      av.ld = SIZE_MAX / 2;
      break;
    case Corruption::kSwiGluMismatch:  // SwiGLU on plain weights, or another activation on a gate/up pair
      for (auto& v : views) v.epilogue.activation = call.gate_up ? Activation::kGeluErf : Activation::kSwiGlu;
      break;
    case Corruption::kFusedCount:
      if (!call.fused) return;
      num_outputs = outs + 1;
      break;
    case Corruption::kCount: return;
  }
  if (!layout_ok) must_fail = true;

  std::vector<Snapshot> before;
  for (const Out& x : out) before.emplace_back(x.c.data(), x.c.size() * sizeof(TC));
  static ThreadPool pool(2);
  GemmOptions opt;
  opt.executor = call.threads ? &pool : nullptr;
  const Status s = call.fused ? gemm_fused(av, pw, views.data(), num_outputs, opt)
                              : gemm(av, pw, views[0].c, views[0].epilogue, opt);
  if (must_fail) {
    TILEKIT_FUZZ_CHECK(s != Status::kOk, "corruption %d accepted (layout ok %d)", static_cast<int>(call.corruption),
                       layout_ok);
    TILEKIT_FUZZ_CHECK(std::string(last_error()).size() > 0, "no message for %s", status_name(s));
    for (const Snapshot& b : before) TILEKIT_FUZZ_CHECK(b.unchanged(), "rejected call (%s) wrote its output", status_name(s));
    return;
  }
  TILEKIT_FUZZ_CHECK(s == Status::kOk, "valid call refused: %s", status_name(s));

  // The reference: each output against the weight columns it reads.
  for (const Out& x : out) {
    testing::GemmCase g;
    g.m = m, g.n = x.n, g.k = k;
    g.a_bf16 = kIsBf16<TA>, g.c_bf16 = kIsBf16<TC>, g.w_bf16 = call.type == WeightType::kBf16;
    g.gate_up = call.gate_up;
    g.ep = x.ep;
    if (call.in_place_residual && x.ep.residual) g.ep.residual = x.residual.data();
    g.a_rounded = !g.a_bf16 && pw.layout().rounds_a_to_bf16();
    g.odd_rounded_sums = pw.layout().kind == PanelKind::kArmBfmmla;
    const size_t wn = call.gate_up ? 2 * x.n : x.n;
    std::vector<float> wcols(k * wn + 1);
    for (size_t kk = 0; kk < k; ++kk)
      for (size_t j = 0; j < wn; ++j) wcols[kk * wn + j] = w.kn[kk * w.ntot + x.col + j];
    testing::GemmReference ref;
    ref.compute(g, a_f32.data(), lda, wcols.data(), x.c_old.data(), x.ldc);
    for (size_t i = 0; i < m; ++i) {
      for (size_t j = 0; j < x.ldc; ++j) {
        const size_t at = i * x.ldc + j;
        float got;
        if constexpr (kIsBf16<TC>) got = bf16_to_f32(x.c[at]); else got = x.c[at];
        if (j >= x.n) {
          TILEKIT_FUZZ_CHECK(std::memcmp(&got, &x.c_old[at], 4) == 0, "padding C[%zu][%zu] written", i, j);
          continue;
        }
        const double err = std::fabs(got - ref.out[i * x.n + j]);
        TILEKIT_FUZZ_CHECK(err <= ref.bound[i * x.n + j],
                           "C[%zu][%zu] = %.9g, want %.9g, error %.3g > bound %.3g (M=%zu N=%zu K=%zu act=%s "
                           "A=%s C=%s W=%s pack %s run %s fused %d)",
                           i, j, got, ref.out[i * x.n + j], err, ref.bound[i * x.n + j], m, x.n, k,
                           activation_name(x.ep.activation), g.a_bf16 ? "bf16" : "f32", g.c_bf16 ? "bf16" : "f32",
                           g.w_bf16 ? "bf16" : "f32", isa_name(call.pack_path), isa_name(call.run_path), call.fused);
      }
    }
  }
}

}  // namespace
}  // namespace tilekit

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tilekit;
  FuzzedDataProvider in(data, size);
  const Call call = Decode(in);
  fuzz::Values values(in.ConsumeIntegral<uint64_t>());
  if (call.a_bf16) {
    call.c_bf16 ? Run<bf16, bf16>(call, values) : Run<bf16, float>(call, values);
  } else {
    call.c_bf16 ? Run<float, bf16>(call, values) : Run<float, float>(call, values);
  }
  clear_max_isa();
  return 0;
}

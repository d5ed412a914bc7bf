// The gate/up pair's two activations, SwiGLU (silu(gate) · up) and GeGLU
// (gelu_tanh(gate) · up, Gemma's MLP), alternated call by call in one process
// on the same packed pair, so each round's ratio rides out this shared
// machine's slow phases:
//
//   bench/interleaved_gated [THREADS]      ROUNDS=n (default 15)
//
// Cases: a decode GEMV (M = 1, bf16 weights, K = 2048, N = 5632 per half:
// TinyLlama's MLP) and a prefill block (M = 128, fp32, K = 1024, N = 2816),
// where the epilogue's share is largest. Each round times both (an untimed
// call, then the best of 2; the order alternates between rounds); the tool
// prints the median per-round ratio GeGLU / SwiGLU with its interquartile
// range. Not part of scripts/bench: the figures in docs/performance.md.
#include "tilekit/tilekit.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <vector>

#include "interleaved_stats.h"

namespace {

struct GatedCase {
  size_t m, n, k;
  tilekit::WeightType type;
  std::vector<float> a, c;
  tilekit::PackedWeights w;

  GatedCase(size_t m_, size_t n_, size_t k_, tilekit::WeightType t) : m(m_), n(n_), k(k_), type(t), a(m * k), c(m * n) {
    std::vector<float> b(k * 2 * n);
    for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<float>((i * 2654435761u) % 1000) / 1000.f - 0.5f;
    for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<float>(i % 97) / 97.f - 0.5f;
    if (tilekit::pack_weights_gate_up(tilekit::weights_kn(b.data(), k, n, 2 * n),
                                      tilekit::weights_kn(b.data() + n, k, n, 2 * n), type, &w) != tilekit::Status::kOk) {
      throw std::runtime_error(tilekit::last_error());
    }
  }
};

struct Call {
  GatedCase& g;
  tilekit::Activation act;
  const tilekit::GemmOptions& opt;
  void Run(size_t) {
    if (tilekit::gemm(tilekit::matrix<const float>(g.a.data(), g.m, g.k), g.w, tilekit::matrix(g.c.data(), g.m, g.n),
                      tilekit::Epilogue().with(act), opt) != tilekit::Status::kOk) {
      throw std::runtime_error(tilekit::last_error());
    }
  }
};

}  // namespace

int main(int argc, char** argv) {
  using tilekit_bench::Quantile;
  const int threads = argc > 1 ? std::atoi(argv[1]) : 1;
  const size_t rounds = std::max<size_t>(3, tilekit_bench::EnvSize("ROUNDS", 15));
  if (threads < 1) {
    std::fprintf(stderr, "usage: %s [THREADS]\n", argv[0]);
    return 2;
  }
  try {
    tilekit::ThreadPool pool(static_cast<size_t>(threads));
    tilekit::GemmOptions opt;
    opt.executor = &pool;
    std::printf("threads=%d rounds=%zu (%s)\n", threads, rounds, tilekit::cpu::path_report().c_str());
    GatedCase decode(1, 5632, 2048, tilekit::WeightType::kBf16), prefill(128, 2816, 1024, tilekit::WeightType::kF32);
    for (GatedCase* g : {&decode, &prefill}) {
      tilekit_bench::CallTimer timer(1);
      std::vector<double> ratio, t_swiglu;
      for (size_t r = 0; r < rounds; ++r) {
        double t[2] = {};
        for (size_t i = 0; i < 2; ++i) {
          const size_t v = (i + r) % 2;
          Call call{*g, v ? tilekit::Activation::kGeGlu : tilekit::Activation::kSwiGlu, opt};
          call.Run(0);
          t[v] = timer.BestOf2(call);
        }
        ratio.push_back(t[1] / t[0]);
        t_swiglu.push_back(t[0]);
      }
      std::printf("  %s M=%zu N=%zu (x2) K=%zu: SwiGLU %.1f us (median), GeGLU / SwiGLU time per round: median %.3f, "
                  "IQR [%.3f, %.3f]\n",
                  tilekit::weight_type_name(g->type), g->m, g->n, g->k, Quantile(t_swiglu, 0.5) * 1e6,
                  Quantile(ratio, 0.5), Quantile(ratio, 0.25), Quantile(ratio, 0.75));
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "failed: %s\n", e.what());
    return 1;
  }
  return 0;
}

// The fused-epilogue variants (epilogue_case.h: bare, fused, unfused at
// 256×4096×4096 fp32) alternated call by call in one process, so each round
// gives ratios a slow phase of this shared machine lands on equally:
//
//   bench/interleaved_epilogue [THREADS]      ROUNDS=n (default 31)
//
// Each round times every variant (an untimed call, then the best of 2 calls;
// the variants' order rotates between rounds) and the tool prints the medians
// of the per-round ratios fused / bare (the fusion's cost) and unfused / fused
// (what it saves) with their interquartile ranges. Not part of scripts/bench:
// the figures quoted in docs/performance.md ("Fused epilogue") and, for the
// fused-epilogue goals, docs/performance-history.md.
#include "tilekit/tilekit.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <vector>

#include "epilogue_case.h"
#include "interleaved_stats.h"

namespace {

// One variant as CallTimer times it (one operand set: no copies to rotate).
struct VariantCall {
  tilekit_bench::EpilogueCase& ops;
  tilekit_bench::EpilogueCase::Variant variant;
  const tilekit::GemmOptions& opt;
  void Run(size_t) { ops.Run(variant, opt); }
};

}  // namespace

int main(int argc, char** argv) {
  using tilekit_bench::EpilogueCase;
  using tilekit_bench::Quantile;
  using Variant = EpilogueCase::Variant;
  const int threads = argc > 1 ? std::atoi(argv[1]) : 1;
  const size_t rounds = std::max<size_t>(3, tilekit_bench::EnvSize("ROUNDS", 31));
  if (threads < 1) {
    std::fprintf(stderr, "usage: %s [THREADS]\n", argv[0]);
    return 2;
  }
  try {
    EpilogueCase ops;
    tilekit::ThreadPool pool(static_cast<size_t>(threads));
    tilekit::GemmOptions opt;
    opt.executor = &pool;
    const Variant order[] = {Variant::kBare, Variant::kFused, Variant::kUnfused};
    tilekit_bench::CallTimer timer(1);
    std::vector<double> fused_over_bare, unfused_over_fused, t_bare;
    for (size_t r = 0; r < rounds; ++r) {
      double t[3] = {};
      for (size_t i = 0; i < 3; ++i) {
        const size_t v = (i + r) % 3;
        VariantCall call{ops, order[v], opt};
        call.Run(0);
        t[v] = timer.BestOf2(call);
      }
      fused_over_bare.push_back(t[1] / t[0]);
      unfused_over_fused.push_back(t[2] / t[1]);
      t_bare.push_back(t[0]);
    }
    const double flops = 2.0 * EpilogueCase::kM * EpilogueCase::kN * EpilogueCase::kK;
    std::printf("f32 M=%zu N=%zu K=%zu threads=%d rounds=%zu (%s)\n", EpilogueCase::kM, EpilogueCase::kN,
                EpilogueCase::kK, threads, rounds, tilekit::cpu::path_report().c_str());
    std::printf("  bare GEMM: %.1f GFLOP/s (median)\n", flops / Quantile(t_bare, 0.5) / 1e9);
    std::printf("  fused / bare time, per round: median %.3f, IQR [%.3f, %.3f]\n", Quantile(fused_over_bare, 0.5),
                Quantile(fused_over_bare, 0.25), Quantile(fused_over_bare, 0.75));
    std::printf("  unfused / fused time, per round: median %.3f, IQR [%.3f, %.3f]\n",
                Quantile(unfused_over_fused, 0.5), Quantile(unfused_over_fused, 0.25),
                Quantile(unfused_over_fused, 0.75));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "failed: %s\n", e.what());
    return 1;
  }
  return 0;
}

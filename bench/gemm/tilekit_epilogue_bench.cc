// What fusing an epilogue into the GEMM's store saves, at 256×4096×4096 fp32
// (the three variants: epilogue_case.h).
// Rows: gemm_epilogue/tilekit_<variant>/f32/M:256/N:4096/K:4096/threads:<t>/warm.
// Repetitions of ~0.2 s spread ±10% on this machine, more than the few percent
// sought: bench/interleaved_epilogue alternates the variants call by call.
#include "tilekit/tilekit.h"

#include <string>
#include <vector>

#include "bench_main.h"
#include "epilogue_case.h"

namespace {

using tilekit_bench::EpilogueCase;

void Run(benchmark::State& state, EpilogueCase::Variant variant, size_t threads) {
  static EpilogueCase ops;
  tilekit::ThreadPool pool(threads);
  tilekit::GemmOptions opt;
  opt.executor = &pool;
  for (auto _ : state) ops.Run(variant, opt);
  state.counters["GFLOP/s"] = benchmark::Counter(2e-9 * EpilogueCase::kM * EpilogueCase::kN * EpilogueCase::kK,
                                                 benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel("detail=" + tilekit::cpu::path_report());
}

}  // namespace

int main(int argc, char** argv) {
  using Variant = EpilogueCase::Variant;
  const std::pair<const char*, Variant> variants[] = {
      {"bare", Variant::kBare}, {"fused", Variant::kFused}, {"unfused", Variant::kUnfused}};
  for (size_t threads : {1, 2}) {
    for (const auto& [name, variant] : variants) {
      const std::string row = std::string("gemm_epilogue/tilekit_") + name + "/f32/M:256/N:4096/K:4096/threads:" +
                              std::to_string(threads) + "/warm";
      const Variant v = variant;
      auto* b = tilekit_bench::ApplyPolicy(benchmark::RegisterBenchmark(
          row.c_str(), [v, threads](benchmark::State& s) { Run(s, v, threads); }));
      // The differences sought are a few percent, the machine's noise 10-15%
      // per repetition: 15 interleaved repetitions instead of 5 (~80 s).
      if (!tilekit_bench::Policy().quick) b->Repetitions(15);
    }
  }
  // The variants are compared with each other: interleave their repetitions so
  // a slow phase of this shared machine does not land on one variant only
  // (run back to back, the first variant measured ~3% faster than an
  // identical one run last).
  std::vector<char*> args(argv, argv + argc);
  std::string interleave = "--benchmark_enable_random_interleaving=true";
  args.push_back(interleave.data());
  int n = static_cast<int>(args.size());
  return tilekit_bench::BenchMain(n, args.data());
}

#include "bench_main.h"

#include <cstdlib>
#include <cstring>
#include <string>

#include "tilekit/cpu/features.h"

namespace tilekit_bench {

const RunPolicy& Policy() {
  static const RunPolicy policy = [] {
    const char* env = std::getenv("TILEKIT_BENCH_QUICK");
    const bool quick = env && *env && std::strcmp(env, "0") != 0;
    // Full runs: 5 medianed repetitions of >= 0.2 s keep the 42 cases x 5 peer
    // configurations within the time budget while riding out 10-30% noise.
    return quick ? RunPolicy{1, 0.02, true} : RunPolicy{5, 0.2, false};
  }();
  return policy;
}

benchmark::internal::Benchmark* ApplyPolicy(benchmark::internal::Benchmark* b) {
  const RunPolicy& p = Policy();
  b->UseRealTime()->MinTime(p.min_time_s)->Repetitions(p.repetitions);
  if (p.repetitions > 1) b->ReportAggregatesOnly(true);
  return b->Unit(benchmark::kMillisecond);
}

std::string SettingsFromEnv() {
  static const char* const kNames[] = {
      "OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "BLIS_ARCH_TYPE", "BLIS_NUM_THREADS",
      "OMP_NUM_THREADS",   "OMP_PROC_BIND",        "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA",
      "ONEDNN_DEFAULT_FPMATH_MODE", "DNNL_DEFAULT_FPMATH_MODE", "MKL_ENABLE_INSTRUCTIONS",
      "TILEKIT_MAX_ISA"};
  std::string s;
  for (const char* name : kNames) {
    const char* value = std::getenv(name);
    // The two settings that put OpenBLAS and BLIS on their best kernels are
    // listed even when unset, so a run without them says so.
    const bool always = std::strcmp(name, "OPENBLAS_CORETYPE") == 0 || std::strcmp(name, "BLIS_ARCH_TYPE") == 0;
    if (!value && !always) continue;
    if (!s.empty()) s += "; ";
    s += std::string(name) + "=" + (value ? value : "(unset)");
  }
  return s;
}

int BenchMain(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  const tilekit::cpu::Features& f = tilekit::cpu::features();
  benchmark::AddCustomContext("tilekit_cpu_features", f.describe());
  benchmark::AddCustomContext("llc_bytes", std::to_string(f.llc));
  benchmark::AddCustomContext("settings", SettingsFromEnv());
  benchmark::AddCustomContext("quick", Policy().quick ? "1" : "0");
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace tilekit_bench

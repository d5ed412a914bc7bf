// How every tilekit benchmark binary runs: wall-clock time (kernels use several
// threads), several repetitions reported as their median (the machine is shared
// and noisy: one repetition is one sample of that noise), and a context that
// records what the run depended on (CPU features, environment settings).
#ifndef TILEKIT_BENCH_BENCH_MAIN_H_
#define TILEKIT_BENCH_BENCH_MAIN_H_

#include <benchmark/benchmark.h>

#include <string>

namespace tilekit_bench {

struct RunPolicy {
  int repetitions;
  double min_time_s;  // per repetition
  bool quick;         // TILEKIT_BENCH_QUICK=1: one short repetition, for smoke runs
};

// Read once from TILEKIT_BENCH_QUICK.
const RunPolicy& Policy();

// Real time, the policy's repetitions and minimum time, median only. Every
// registration goes through this, so all rows are measured alike.
benchmark::internal::Benchmark* ApplyPolicy(benchmark::internal::Benchmark* b);

// Environment variables that change what a peer measures, as
// "NAME=value; NAME=(unset); ..." for the context and the summary.
std::string SettingsFromEnv();

// Initialises Google Benchmark, records the common context (plus whatever the
// binary added with benchmark::AddCustomContext before), runs the registered
// benchmarks. Returns main's exit code.
int BenchMain(int argc, char** argv);

}  // namespace tilekit_bench

#endif  // TILEKIT_BENCH_BENCH_MAIN_H_

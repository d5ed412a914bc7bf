// What the interleaved tools (interleaved_onednn, interleaved_epilogue) share:
// a wall clock, an environment knob, and the quantiles of per-round figures.
#ifndef TILEKIT_BENCH_INTERLEAVED_STATS_H_
#define TILEKIT_BENCH_INTERLEAVED_STATS_H_

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <vector>

namespace tilekit_bench {

inline double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// The environment variable as a size, or `fallback` when unset or empty.
inline size_t EnvSize(const char* name, size_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtoul(v, nullptr, 10) : fallback;
}

// The q-quantile (nearest rank) of v.
inline double Quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(q * (v.size() - 1) + 0.5)];
}

}  // namespace tilekit_bench

#endif  // TILEKIT_BENCH_INTERLEAVED_STATS_H_

// What the interleaved tools (interleaved_onednn, interleaved_threads,
// interleaved_epilogue) share: a wall clock, an environment knob, the
// quantiles of per-round figures, and how one call is timed.
#ifndef TILEKIT_BENCH_INTERLEAVED_STATS_H_
#define TILEKIT_BENCH_INTERLEAVED_STATS_H_

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <thread>
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

// Times anything with Run(copy) (a GEMM instance, a reader, a ceiling),
// rotating through `copies` of its operands as it calls.
class CallTimer {
 public:
  explicit CallTimer(size_t copies) : copies_(copies ? copies : 1) {}

  // The faster of two calls, in seconds.
  template <typename G>
  double BestOf2(G& g) {
    double best = 1e30;
    for (int i = 0; i < 2; ++i) {
      const double t0 = Now();
      g.Run(copy_);
      best = std::min(best, Now() - t0);
      copy_ = (copy_ + 1) % copies_;
    }
    return best;
  }

  // BestOf2 after the other side's helper threads have gone idle: oneDNN's
  // OpenMP workers spin for ~20 ms after a parallel region (libgomp's default
  // spin count), and a tilekit call timed inside that window shares its second
  // core with them. Timed back to back, a 2-thread bf16 256×10×11008 tilekit
  // call measured 0.55× of its speed after this pause (OMP_WAIT_POLICY=passive
  // agreed). One untimed call after the pause wakes the library's own helpers
  // (and the cores) again, as a model's previous layer would have: without it,
  // 2-thread calls of ~50 µs timed slower than 1-thread ones.
  template <typename G>
  double SettleThenTime(G& g) {
    std::this_thread::sleep_for(std::chrono::milliseconds(60));
    g.Run(copy_);
    copy_ = (copy_ + 1) % copies_;
    return BestOf2(g);
  }

 private:
  size_t copies_, copy_ = 0;
};

}  // namespace tilekit_bench

#endif  // TILEKIT_BENCH_INTERLEAVED_STATS_H_

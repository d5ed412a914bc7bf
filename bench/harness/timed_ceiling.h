// A compute ceiling (compute_peak.h) timed on demand beside the code it
// bounds: loop_ceilings times one just before each of its loops, the attention
// rows one before and one after each timed loop. On this shared machine the
// ceiling moves with the load within seconds, so a share of it is only worth
// reading against a ceiling measured in the same moment.
#ifndef TILEKIT_BENCH_TIMED_CEILING_H_
#define TILEKIT_BENCH_TIMED_CEILING_H_

#include <cstdint>
#include <string>
#include <vector>

#include "compute_peak.h"
#include "interleaved_stats.h"
#include "peak_runner.h"

namespace tilekit_bench {

// The ceiling called `name` ("fma_avx512", "vdpbf16ps", "amx_tdpbf16ps", ...)
// where this CPU (and, for AMX, the OS) has it; nullptr where not.
inline const ComputePeak* FindPeak(const std::vector<ComputePeak>& peaks, const std::string& name) {
  for (const ComputePeak& p : peaks) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

// `peak` on `threads` threads at once, `iters` iterations per thread and call
// (0: the ceiling's own ~20 ms). The kernel is reached through PeakRunner's
// pointer and its result lands in a volatile sink, so the compiler can neither
// drop the call nor move it out of the timed interval.
class TimedCeiling {
 public:
  TimedCeiling(ComputePeak peak, int threads, int64_t iters = 0) : runner_(WithIters(peak, iters), threads) {}

  // GFLOP/s of one call, timed now.
  double Gflops() {
    const double t0 = Now();
    runner_.Run(0);
    return runner_.flops() / (Now() - t0) * 1e-9;
  }
  const std::string& name() const { return runner_.name(); }

 private:
  static ComputePeak WithIters(ComputePeak p, int64_t iters) {
    if (iters > 0) p.iters = iters;
    return p;
  }
  PeakRunner runner_;
};

}  // namespace tilekit_bench

#endif  // TILEKIT_BENCH_TIMED_CEILING_H_

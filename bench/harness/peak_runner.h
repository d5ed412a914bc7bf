// Runs a compute-ceiling kernel (compute_peak.h) on `threads` threads at once,
// on a pool of its own so the GEMMs' pool threads keep their state; timed with
// CallTimer (interleaved_stats.h) beside the GEMMs of each round.
#ifndef TILEKIT_BENCH_PEAK_RUNNER_H_
#define TILEKIT_BENCH_PEAK_RUNNER_H_

#include <cstddef>
#include <string>

#include "compute_peak.h"
#include "tilekit/threading/executor.h"

namespace tilekit_bench {

class PeakRunner {
 public:
  PeakRunner(const ComputePeak& peak, int threads)
      : peak_(peak), threads_(static_cast<size_t>(threads)), pool_(threads_) {}
  double flops() const { return static_cast<double>(threads_) * peak_.iters * peak_.flops_per_iter; }
  const std::string& name() const { return peak_.name; }
  void Run(size_t) { pool_.run(threads_, &Task, this); }

 private:
  static void Task(void* self, size_t t) {
    auto& r = *static_cast<PeakRunner*>(self);
    r.sink_[t % 2] = r.peak_.fn(r.peak_.iters);
  }
  ComputePeak peak_;
  size_t threads_;
  tilekit::ThreadPool pool_;
  volatile float sink_[2] = {};
};

}  // namespace tilekit_bench

#endif  // TILEKIT_BENCH_PEAK_RUNNER_H_

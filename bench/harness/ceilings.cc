// This machine's ceilings, measured in the same run as the GEMM rows so that
// "percent of peak" compares like with like on a shared, noisy host:
//   ceiling/fma_avx512|fma_avx2/f32   fp32 FMA throughput, registers only
//   ceiling/vdpbf16ps/bf16            AVX512-BF16 dot products, registers only
//   ceiling/amx_tdpbf16ps/bf16        AMX bf16 tile multiplies, tiles only
//   ceiling/read_<isa>[_prefetch]/mem read bandwidth over a buffer >> LLC (8 streams per thread,
//                                     plain loads, and with software prefetch as the GEMMs do)
// each at 1 and 2 threads. Kernels carry their own target attributes, so the
// binary runs on any x86-64 and registers only what the CPU (and, for AMX, the
// OS) supports, as tilekit::cpu::features() reports it.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "bench_main.h"
#include "compute_peak.h"
#include "read_bandwidth.h"
#include "tilekit/base/aligned_buffer.h"
#include "tilekit/cpu/features.h"

namespace {

volatile float g_sink;  // results land here so no loop is dead code

// Runs kernel(thread_index) on `threads` threads at once. Each benchmark
// iteration is ~20 ms of work, so starting the threads (~50 us) is noise.
template <class Kernel>
void OnThreads(int threads, const Kernel& kernel) {
  std::vector<std::thread> workers;
  for (int t = 1; t < threads; ++t) workers.emplace_back(kernel, t);
  kernel(0);
  for (std::thread& w : workers) w.join();
}


// A compute ceiling: `kernel(iters)` on every thread, `flops_per_iter` each.
template <class Kernel>
void RegisterCompute(const std::string& name, const char* dtype, const std::string& what, Kernel kernel,
                     int64_t iters, double flops_per_iter) {
  for (int threads : {1, 2}) {
    const std::string full = "ceiling/" + name + "/" + dtype + "/threads:" + std::to_string(threads);
    tilekit_bench::ApplyPolicy(benchmark::RegisterBenchmark(full.c_str(), [=](benchmark::State& state) {
      kernel(iters / 64);  // warm-up: wakes the unit (AVX-512 and AMX power up on first use)
      for (auto _ : state) {
        OnThreads(threads, [&](int) { g_sink = kernel(iters); });
      }
      state.counters["GFLOP/s"] = benchmark::Counter(threads * iters * flops_per_iter * 1e-9,
                                                     benchmark::Counter::kIsIterationInvariantRate);
      state.SetLabel("what=" + what);
    }));
  }
}

using tilekit_bench::kReadGranule;

// The read buffer: 1 GiB or 8× the LLC, whichever is larger, touched once.
const float* ReadBuffer(size_t* count) {
  static tilekit::AlignedBuffer buf;
  static size_t n = 0;
  if (!n) {
    const size_t bytes = std::max(size_t{1} << 30, 8 * tilekit::cpu::features().llc);
    if (!buf.allocate(bytes, tilekit::PageHint::kHuge)) return nullptr;
    n = bytes / sizeof(float);
    std::fill_n(buf.as<float>(), n, 1.0f);
  }
  *count = n;
  return buf.as<float>();
}

template <class Reader>
void RegisterRead(const std::string& name, Reader reader) {
  for (int threads : {1, 2}) {
    const std::string full = "ceiling/" + name + "/mem/threads:" + std::to_string(threads);
    tilekit_bench::ApplyPolicy(benchmark::RegisterBenchmark(full.c_str(), [=](benchmark::State& state) {
      size_t n = 0;
      const float* p = ReadBuffer(&n);
      if (!p) {
        state.SkipWithError("cannot allocate the read buffer");
        return;
      }
      // Each thread reads its own contiguous share.
      const size_t share = n / threads / kReadGranule * kReadGranule;
      for (auto _ : state) {
        OnThreads(threads, [&](int t) { g_sink = reader(p + t * share, share); });
      }
      state.counters["GB/s"] = benchmark::Counter(static_cast<double>(share * threads * sizeof(float)) * 1e-9,
                                                  benchmark::Counter::kIsIterationInvariantRate);
      state.SetLabel("what=sum of a " + std::to_string(n * sizeof(float) >> 20) + " MiB buffer, " +
                     std::to_string(kReadGranule / 64) + " streams per thread");
    }));
  }
}

}  // namespace

int main(int argc, char** argv) {
  for (const tilekit_bench::ComputePeak& c : tilekit_bench::ComputePeaks()) {
    RegisterCompute(c.name, c.dtype, c.what, c.fn, c.iters, c.flops_per_iter);
  }
  const tilekit::cpu::Features& f = tilekit::cpu::features();
  if (!f.amx() && f.amx_tile) benchmark::AddCustomContext("amx_skipped", f.amx_note);
  for (const tilekit_bench::Reader& r : tilekit_bench::Readers()) RegisterRead(r.name, r.fn);
  return tilekit_bench::BenchMain(argc, argv);
}

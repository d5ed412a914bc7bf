// Quick timing of the bf16 GEMM on the active path against the AMX peak
// measured in the same run (the machine is shared: only same-run ratios mean
// something). A tool for tuning the AMX kernel, not the benchmark harness
// that compares tilekit with other libraries.
//
//   amx_timing [--reps N] [--cold]
//     --cold  rotate over 4 copies of the weights (128 MiB, more than the L3),
//             so every call streams them from memory, as a model's layers do.
//   TILEKIT_MAX_ISA=avx512_bf16 amx_timing   the vector kernel, for comparison.
//
// Shapes M × 4096 × 4096 for M = 256, 32, 1; A bf16 or fp32, weights bf16,
// C fp32; 1 and 2 threads. Prints the best and median of N calls.
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "tilekit/arch/amx.h"
#include "tilekit/tilekit.h"

namespace {

using Clock = std::chrono::steady_clock;
double seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

int error(const char* what) {
  std::fprintf(stderr, "amx_timing: %s\n", what);
  return 1;
}

// tdpbf16ps back to back on four independent C tiles: the per-core ceiling.
TILEKIT_AMX_TARGET double amx_peak_gflops() {
  tilekit::arch::TileConfig cfg;
  for (int t = 0; t < 8; ++t) cfg.set(t, 16, 64);
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    tilekit::arch::load_tile_config(cfg);
    _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
    _tile_zero(4); _tile_zero(5); _tile_zero(6); _tile_zero(7);
    constexpr long kIters = 2000000;
    const auto t0 = Clock::now();
    for (long i = 0; i < kIters; ++i) {
      _tile_dpbf16ps(0, 4, 6);
      _tile_dpbf16ps(1, 4, 7);
      _tile_dpbf16ps(2, 5, 6);
      _tile_dpbf16ps(3, 5, 7);
    }
    best = std::max(best, kIters * 4.0 * 16 * 16 * 32 * 2 / seconds(t0, Clock::now()) / 1e9);
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace tilekit;
  int reps = 20;
  bool cold = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--reps") && i + 1 < argc) reps = std::max(1, std::atoi(argv[++i]));
    else if (!std::strcmp(argv[i], "--cold")) cold = true;
    else return error("usage: amx_timing [--reps N] [--cold]");
  }
  if (!cpu::features().amx()) return error(cpu::choice().reason.c_str());
  const double peak = amx_peak_gflops();
  const size_t n = 4096, k = 4096;
  std::vector<float> w(k * n);
  for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>((i * 2654435761u) % 1000) / 1000.f - 0.5f;
  std::vector<PackedWeights> copies(cold ? 4 : 1);
  for (PackedWeights& p : copies) {
    if (pack_weights(weights_kn(w.data(), k, n), WeightType::kBf16, &p) != Status::kOk) {
      return error(last_error());
    }
  }
  std::printf("path %s (%s layout), weights %s, AMX peak %.0f GFLOP/s per core (measured now)\n",
              isa_name(cpu::active_isa()), panel_kind_name(copies[0].layout().kind),
              cold ? "cold (DRAM)" : "warm (L3)", peak);
  ThreadPool pool(2);
  for (size_t m : {256, 32, 1}) {
    std::vector<float> a32(m * k), c(m * n);
    for (size_t i = 0; i < a32.size(); ++i) a32[i] = static_cast<float>((i * 40503u) % 1000) / 1000.f - 0.5f;
    std::vector<bf16> a16(a32.size());
    for (size_t i = 0; i < a32.size(); ++i) a16[i] = f32_to_bf16(a32[i]);
    for (bool a_bf16 : {true, false}) {
      for (size_t threads : {1, 2}) {
        GemmOptions opt;
        opt.executor = threads > 1 ? &pool : nullptr;
        std::vector<double> t;
        for (int r = -2; r < reps; ++r) {  // two warm-up calls
          const PackedWeights& pw = copies[static_cast<size_t>(r + 2) % copies.size()];
          const auto t0 = Clock::now();
          const Status s = a_bf16 ? gemm(matrix(static_cast<const bf16*>(a16.data()), m, k), pw, matrix(c.data(), m, n),
                                         Epilogue(), opt)
                                  : gemm(matrix(static_cast<const float*>(a32.data()), m, k), pw, matrix(c.data(), m, n),
                                         Epilogue(), opt);
          const auto t1 = Clock::now();
          if (s != Status::kOk) return error(last_error());
          if (r >= 0) t.push_back(seconds(t0, t1));
        }
        std::sort(t.begin(), t.end());
        const double flop = 2.0 * m * n * k, best = flop / t.front() / 1e9, median = flop / t[t.size() / 2] / 1e9;
        std::printf("M=%-4zu A=%s threads=%zu  best %7.0f GFLOP/s (%4.1f%% of peak)  median %7.0f  weights %5.1f GB/s\n",
                    m, a_bf16 ? "bf16" : "f32 ", threads, best, 100 * best / (peak * threads), median,
                    k * n * sizeof(bf16) / t.front() / 1e9);
      }
    }
  }
  return 0;
}

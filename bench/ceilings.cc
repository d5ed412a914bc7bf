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
#include "read_bandwidth.h"
#include "tilekit/base/aligned_buffer.h"
#include "tilekit/cpu/features.h"

#if TILEKIT_ARCH_X86
#include <immintrin.h>
#endif

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

#if TILEKIT_ARCH_X86

// FMA: 2 ports × 4 cycles latency = 8 FMAs in flight per core; 16 independent
// accumulators cover that with margin (and fit in the 32 zmm registers).
constexpr int kFmaAccumulators = 16;

__attribute__((target("avx512f"))) float FmaAvx512(int64_t iters) {
  __m512 acc[kFmaAccumulators];
  for (int j = 0; j < kFmaAccumulators; ++j) acc[j] = _mm512_set1_ps(1.0f + j);
  // acc = acc·(1-1e-7) + 1e-7 converges to 1: no overflow, no denormals.
  const __m512 mul = _mm512_set1_ps(0.9999999f), add = _mm512_set1_ps(1e-7f);
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 16
    for (int j = 0; j < kFmaAccumulators; ++j) acc[j] = _mm512_fmadd_ps(acc[j], mul, add);
  }
  for (int j = 1; j < kFmaAccumulators; ++j) acc[0] = _mm512_add_ps(acc[0], acc[j]);
  return _mm512_reduce_add_ps(acc[0]);
}
constexpr double kFmaAvx512Flops = kFmaAccumulators * 16 * 2;  // per iteration

// AVX2: 16 ymm registers; 12 accumulators cover 2 ports × up to 5 cycles.
constexpr int kFmaAvx2Accumulators = 12;

__attribute__((target("avx2,fma"))) float FmaAvx2(int64_t iters) {
  __m256 acc[kFmaAvx2Accumulators];
  for (int j = 0; j < kFmaAvx2Accumulators; ++j) acc[j] = _mm256_set1_ps(1.0f + j);
  const __m256 mul = _mm256_set1_ps(0.9999999f), add = _mm256_set1_ps(1e-7f);
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 12
    for (int j = 0; j < kFmaAvx2Accumulators; ++j) acc[j] = _mm256_fmadd_ps(acc[j], mul, add);
  }
  for (int j = 1; j < kFmaAvx2Accumulators; ++j) acc[0] = _mm256_add_ps(acc[0], acc[j]);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, acc[0]);
  return lanes[0] + lanes[7];
}
constexpr double kFmaAvx2Flops = kFmaAvx2Accumulators * 8 * 2;

// vdpbf16ps: each lane adds two bf16 products, 16 lanes → 64 FLOP. Same
// accumulator budget as FMA (it issues on the FMA ports).
__attribute__((target("avx512f,avx512bf16"))) float DotBf16(int64_t iters) {
  __m512 acc[kFmaAccumulators];
  for (int j = 0; j < kFmaAccumulators; ++j) acc[j] = _mm512_setzero_ps();
  // 2^-10 × 2^-10 per product: acc grows by 2^-19 per instruction, exactly
  // representable for the ~2^21 iterations a benchmark iteration runs.
  const __m512bh x = (__m512bh)_mm512_set1_epi16(0x3A80);
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 16
    for (int j = 0; j < kFmaAccumulators; ++j) acc[j] = _mm512_dpbf16_ps(acc[j], x, x);
  }
  for (int j = 1; j < kFmaAccumulators; ++j) acc[0] = _mm512_add_ps(acc[0], acc[j]);
  return _mm512_reduce_add_ps(acc[0]);
}
constexpr double kDotBf16Flops = kFmaAccumulators * 16 * 2 * 2;

// AMX: the 2×2 register blocking a GEMM micro-kernel uses (tmm0-3 accumulate
// C, tmm4-5 hold A rows, tmm6-7 hold B columns), so four independent
// tdpbf16ps are in flight. Each is 16×16 outputs × 32 bf16 products.
struct alignas(64) TileConfig {
  uint8_t palette_id, start_row, reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};

__attribute__((target("amx-tile,amx-bf16"))) float AmxBf16(int64_t iters) {
  TileConfig cfg{};
  cfg.palette_id = 1;
  for (int t = 0; t < 8; ++t) {
    cfg.rows[t] = 16;
    cfg.colsb[t] = 64;  // 16 fp32 (C) or 32 bf16 (A, B in VNNI pairs) per row
  }
  alignas(64) uint16_t operand[16 * 32];
  std::fill_n(operand, 16 * 32, uint16_t{0x3A80});  // 2^-10: C grows slowly, never overflows
  alignas(64) float c[16 * 16];
  _tile_loadconfig(&cfg);
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  _tile_loadd(4, operand, 64);
  _tile_loadd(5, operand, 64);
  _tile_loadd(6, operand, 64);
  _tile_loadd(7, operand, 64);
  for (int64_t i = 0; i < iters; ++i) {
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  _tile_stored(0, c, 64);
  _tile_release();
  return c[0];
}
constexpr double kAmxFlops = 4 * 16 * 16 * 32 * 2;

#endif  // TILEKIT_ARCH_X86

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
  const tilekit::cpu::Features& f = tilekit::cpu::features();
#if TILEKIT_ARCH_X86
  const bool avx512 = f.avx512f, avx2 = f.avx2 && f.fma;
  if (avx512) {
    RegisterCompute("fma_avx512", "f32", "vfmadd zmm x16 accumulators", FmaAvx512, int64_t{1} << 23, kFmaAvx512Flops);
  } else if (avx2) {
    RegisterCompute("fma_avx2", "f32", "vfmadd ymm x12 accumulators", FmaAvx2, int64_t{1} << 23, kFmaAvx2Flops);
  }
  if (avx512 && f.avx512_bf16) {
    RegisterCompute("vdpbf16ps", "bf16", "vdpbf16ps zmm x16 accumulators", DotBf16, int64_t{1} << 21, kDotBf16Flops);
  }
  if (f.amx()) {  // features() has already asked Linux for the tile state
    RegisterCompute("amx_tdpbf16ps", "bf16", "tdpbf16ps 2x2 tiles (4 accumulators)", AmxBf16, int64_t{1} << 19,
                    kAmxFlops);
  } else if (f.amx_tile) {
    benchmark::AddCustomContext("amx_skipped", f.amx_note);
  }
#else
  (void)f;
#endif
  for (const tilekit_bench::Reader& r : tilekit_bench::Readers()) RegisterRead(r.name, r.fn);
  return tilekit_bench::BenchMain(argc, argv);
}

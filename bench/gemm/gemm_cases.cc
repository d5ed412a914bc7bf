#include "gemm_cases.h"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <new>
#include <stdexcept>
#include <utility>

#include "bench_main.h"
#include "tilekit/base/bf16.h"
#include "tilekit/cpu/features.h"

namespace tilekit_bench {

const std::vector<GemmShape>& GemmShapes() {
  static const std::vector<GemmShape> shapes = [] {
    std::vector<GemmShape> s;
    for (int64_t m : {256, 32, 10}) {
      for (auto nk : {std::pair<int64_t, int64_t>{4096, 4096}, {11008, 4096}, {10, 11008}}) {
        s.push_back({m, nk.first, nk.second, "seed_mlp"});
      }
    }
    for (int64_t m : {1, 16, 128, 512}) {
      for (auto nk : {std::pair<int64_t, int64_t>{4096, 4096}, {11008, 4096}, {4096, 11008}}) {
        s.push_back({m, nk.first, nk.second, "llama7b"});
      }
    }
    // Calls an engine makes with its pool too (heads, small layers): on 2
    // threads a library should not be slower than on 1. Warm: the weights of
    // such a layer stay in cache between tokens.
    for (auto mnk : {std::array<int64_t, 3>{1, 64, 64}, {16, 64, 64}, {1, 256, 256}, {32, 128, 128}}) {
      s.push_back({mnk[0], mnk[1], mnk[2], "small"});
    }
    return s;
  }();
  return shapes;
}

const std::vector<int>& GemmThreadCounts() {
  static const std::vector<int> threads = {1, 2};
  return threads;
}

double WeightElementBytes(const std::string& dtype) {
  if (dtype == "f32") return 4;
  if (dtype == "bf16" || dtype == "f32_bf16w") return 2;
  if (dtype == "int8") return 1 + 4.0 / 32;
  if (dtype == "int4") return 0.5 + 4.0 / 32;
  throw std::invalid_argument("unknown GEMM dtype '" + dtype + "' (f32, bf16, f32_bf16w, int8, int4)");
}

size_t ColdCopies(size_t weight_bytes) {
  // An unknown LLC is taken as 128 MiB: more copies than needed cost memory
  // and setup time, too few would silently time a cache.
  const size_t llc = tilekit::cpu::features().llc ? tilekit::cpu::features().llc : (size_t{128} << 20);
  return 2 * llc / std::max<size_t>(weight_bytes, 1) + 1;
}

tilekit::AlignedBuffer AllocateBuffer(size_t bytes) {
  tilekit::AlignedBuffer buf;
  if (!buf.allocate(bytes, tilekit::PageHint::kHuge)) throw std::bad_alloc();
  return buf;
}

std::vector<tilekit::AlignedBuffer> ReplicateWeights(const void* src, size_t bytes, size_t copies) {
  std::vector<tilekit::AlignedBuffer> out;
  out.reserve(copies);
  for (size_t i = 0; i < copies; ++i) {
    out.push_back(AllocateBuffer(bytes));
    std::memcpy(out.back().data(), src, bytes);
  }
  return out;
}

void RoundToBf16(const float* in, uint16_t* out, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = tilekit::f32_to_bf16(in[i]).bits;
}

namespace {

// SplitMix64: fast enough to fill 180 MB of weights in well under a second.
void FillUniform(float* p, size_t n, uint64_t seed) {
  uint64_t state = seed;
  for (size_t i = 0; i < n; ++i) {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    p[i] = static_cast<float>(z >> 40) * (2.0f / 16777216.0f) - 1.0f;  // 24 bits -> [-1, 1)
  }
}

float AsInput(float x, bool bf16) { return bf16 ? tilekit::bf16_to_f32(tilekit::f32_to_bf16(x)) : x; }

// The case whose buffers exist now. Google Benchmark calls a benchmark's
// function once per repetition (and more while it sizes the iteration count);
// building 400 MB of rotated weights each time would dominate the run.
struct LiveCase {
  std::string name;
  GemmOperands ops;
  std::unique_ptr<GemmInstance> instance;
  std::string error, label;
  size_t next_copy = 0;
};

LiveCase& Live() {
  static LiveCase live;
  return live;
}

void Prepare(LiveCase& live, const std::string& name, const GemmCase& c, const GemmFactory& make) {
  live.instance.reset();  // free the previous case before allocating this one
  live = LiveCase{};
  live.name = name;
  try {
    live.ops = MakeOperands(c.shape);
    live.instance = make(c, live.ops);
    // The first call is untimed anyway (thread pools start, pages fault in);
    // check it, and the last copy, so a rotation bug cannot hide.
    live.instance->Run(0);
    live.error = CheckSample(c, live.ops, live.instance->C(), live.instance->ASeen(), live.instance->BSeen());
    if (live.error.empty() && c.copies > 1) {
      live.instance->Run(c.copies - 1);
      live.error = CheckSample(c, live.ops, live.instance->C(), live.instance->ASeen(), live.instance->BSeen());
    }
  } catch (const std::exception& e) {
    live.error = std::string("setup failed: ") + e.what();
  }
  if (!live.error.empty()) {
    live.instance.reset();
    std::fprintf(stderr, "%s: %s\n", name.c_str(), live.error.c_str());
    return;
  }
  live.label = std::string("weights=") + (c.cold ? "cold" : "warm") + ";copies=" + std::to_string(c.copies) +
               ";model=" + c.shape.model;
  const std::string detail = live.instance->Detail();
  if (!detail.empty()) live.label += ";detail=" + detail;
}

void RunCase(benchmark::State& state, const std::string& name, const GemmCase& c, const GemmFactory& make) {
  LiveCase& live = Live();
  if (live.name != name) Prepare(live, name, c, make);
  if (!live.error.empty()) {
    state.SkipWithError(live.error.c_str());
    return;
  }
  GemmInstance& instance = *live.instance;
  size_t copy = live.next_copy;
  for (auto _ : state) {
    instance.Run(copy);
    copy = copy + 1 == c.copies ? 0 : copy + 1;
  }
  live.next_copy = copy;  // the next repetition continues the rotation
  const double flops = 2.0 * c.shape.m * c.shape.n * c.shape.k;
  const double weight_bytes = instance.WeightBytes() > 0
                                  ? instance.WeightBytes()
                                  : static_cast<double>(c.shape.n * c.shape.k) * WeightElementBytes(c.dtype);
  state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GB/s"] = benchmark::Counter(weight_bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(live.label);
}

}  // namespace

GemmOperands MakeOperands(const GemmShape& s) {
  GemmOperands ops;
  const size_t a_count = static_cast<size_t>(s.m * s.k), b_count = static_cast<size_t>(s.k * s.n);
  ops.a = AllocateBuffer(a_count * sizeof(float));
  ops.b = AllocateBuffer(b_count * sizeof(float));
  const uint64_t seed = static_cast<uint64_t>(s.m * 1000003 + s.n * 1009 + s.k);
  FillUniform(ops.a.as<float>(), a_count, seed);
  FillUniform(ops.b.as<float>(), b_count, ~seed);
  return ops;
}

std::string CheckSample(const GemmCase& c, const GemmOperands& ops, const float* out, const float* a_seen,
                        const float* b_seen) {
  const bool round_a = c.dtype == "bf16", round_b = c.dtype == "bf16" || c.dtype == "f32_bf16w";
  const float* a_in = a_seen ? a_seen : ops.A();
  const float* b_in = b_seen ? b_seen : ops.B();
  const int64_t m = c.shape.m, n = c.shape.n, k = c.shape.k;
  for (int s = 0; s < 16; ++s) {
    const int64_t i = s % 4 == 0 ? 0 : s % 4 == 1 ? m - 1 : (s * 7919) % m;
    const int64_t j = s / 4 == 0 ? 0 : s / 4 == 1 ? n - 1 : (s * 104729) % n;
    double sum = 0, magnitude = 0;
    for (int64_t p = 0; p < k; ++p) {
      const double prod = static_cast<double>(AsInput(a_in[i * k + p], round_a && !a_seen)) *
                          AsInput(b_in[p * n + j], round_b && !b_seen);
      sum += prod;
      magnitude += std::fabs(prod);
    }
    const double got = out[i * n + j];
    if (!(std::fabs(got - sum) <= 1e-3 * magnitude + 1e-6)) {
      char msg[256];
      std::snprintf(msg, sizeof(msg), "wrong result: C[%lld,%lld] = %g, expected %g (sum |a*b| = %g)",
                    static_cast<long long>(i), static_cast<long long>(j), got, sum, magnitude);
      return msg;
    }
  }
  return "";
}

void RegisterGemmCases(const std::string& library, const std::string& dtype, GemmFactory make) {
  const double element_bytes = WeightElementBytes(dtype);  // rejects unknown dtypes at registration
  auto shared_make = std::make_shared<GemmFactory>(std::move(make));
  for (int threads : GemmThreadCounts()) {
    for (const GemmShape& s : GemmShapes()) {
      GemmCase c{s, dtype, threads, s.m <= kColdMaxM && std::string(s.model) != "small", 1};
      if (c.cold) c.copies = ColdCopies(static_cast<size_t>(static_cast<double>(s.n * s.k) * element_bytes));
      const std::string name = "gemm/" + library + "/" + dtype + "/M:" + std::to_string(s.m) +
                               "/N:" + std::to_string(s.n) + "/K:" + std::to_string(s.k) +
                               "/threads:" + std::to_string(threads) + (c.cold ? "/cold" : "/warm");
      ApplyPolicy(benchmark::RegisterBenchmark(name.c_str(), [name, c, shared_make](benchmark::State& state) {
        RunCase(state, name, c, *shared_make);
      }));
    }
  }
}

}  // namespace tilekit_bench

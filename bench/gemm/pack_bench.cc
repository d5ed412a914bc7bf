// bench_tilekit_pack: how fast weights are packed at model load, against the
// machine's read+write bandwidth measured in the same binary (a copy of the
// same source bytes into a buffer of the packed size, on the same threads).
//
// Rows: pack_weights/<tilekit|copy>/<f32|bf16>/N:<n>/K:<k>/threads:<t>/<nk|kn>
// GB/s = (source bytes read + packed bytes written) per call. Source: fp32,
// [N][K] (PyTorch Linear, `nk`) or [K][N] (`kn`).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "bench_main.h"
#include "tilekit/tilekit.h"

namespace {

struct PackCase {
  size_t n, k;
  bool bf16, nk;
  size_t threads;
};

tilekit::AlignedBuffer Filled(size_t floats) {
  tilekit::AlignedBuffer b;
  if (!b.allocate(floats * sizeof(float), tilekit::PageHint::kHuge)) return b;
  float* p = b.as<float>();
  for (size_t i = 0; i < floats; ++i) p[i] = static_cast<float>(i % 251) * 0.01f - 1.f;
  return b;
}

void PackRow(benchmark::State& state, PackCase c) {
  const tilekit::AlignedBuffer src = Filled(c.n * c.k);
  if (!src.data()) return state.SkipWithError("out of memory");
  const tilekit::WeightSource w = c.nk ? tilekit::weights_nk(src.as<float>(), c.n, c.k)
                                       : tilekit::weights_kn(src.as<float>(), c.k, c.n);
  const tilekit::WeightType type = c.bf16 ? tilekit::WeightType::kBf16 : tilekit::WeightType::kF32;
  tilekit::ThreadPool pool(c.threads);
  tilekit::PackOptions opt;
  opt.executor = &pool;
  tilekit::PackedWeights packed;
  size_t packed_bytes = 0;
  if (tilekit::packed_weights_size(&w, 1, type, tilekit::PackKind::kSeparate, &packed_bytes) != tilekit::Status::kOk) {
    return state.SkipWithError(tilekit::last_error());
  }
  for (auto _ : state) {
    // A new object per call, as at model load (the allocation is timed too).
    if (tilekit::pack_weights(w, type, &packed, opt) != tilekit::Status::kOk) {
      return state.SkipWithError(tilekit::last_error());
    }
    benchmark::DoNotOptimize(packed.panel(0));
  }
  const double bytes = static_cast<double>(c.n * c.k * sizeof(float) + packed_bytes);
  state.counters["GB/s"] = benchmark::Counter(bytes / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}

// The ceiling: the same source bytes copied into a buffer of the packed size,
// split over the same number of threads (each a contiguous share, memcpy).
struct CopyJob {
  const unsigned char* src;
  unsigned char* dst;
  size_t src_bytes, dst_bytes, tasks;
};
void CopyShare(void* context, size_t t) {
  const CopyJob& j = *static_cast<const CopyJob*>(context);
  // Write dst_bytes reading src_bytes: a fp32 -> bf16 pack reads twice what it
  // writes, so the copy reads its share of src and writes its share of dst.
  const size_t d0 = j.dst_bytes * t / j.tasks, d1 = j.dst_bytes * (t + 1) / j.tasks;
  const size_t s0 = j.src_bytes * t / j.tasks, s1 = j.src_bytes * (t + 1) / j.tasks;
  const size_t ratio = j.src_bytes / j.dst_bytes;  // 1 (fp32) or 2 (bf16)
  if (ratio == 1) {
    std::memcpy(j.dst + d0, j.src + s0, d1 - d0);
  } else {
    // Read everything, write half: copy the first half and fold in the second.
    const size_t half = (s1 - s0) / 2;
    std::memcpy(j.dst + d0, j.src + s0, std::min(half, d1 - d0));
    unsigned sum = 0;
    for (size_t i = s0 + half; i < s1; i += 64) sum += j.src[i];
    benchmark::DoNotOptimize(sum);
  }
}

void CopyRow(benchmark::State& state, PackCase c) {
  const tilekit::AlignedBuffer src = Filled(c.n * c.k);
  tilekit::AlignedBuffer dst;
  const size_t src_bytes = c.n * c.k * sizeof(float), dst_bytes = c.n * c.k * (c.bf16 ? 2 : 4);
  if (!src.data() || !dst.allocate(dst_bytes, tilekit::PageHint::kHuge)) return state.SkipWithError("out of memory");
  std::memset(dst.data(), 0, dst_bytes);
  tilekit::ThreadPool pool(c.threads);
  CopyJob job{src.as<unsigned char>(), dst.as<unsigned char>(), src_bytes, dst_bytes, c.threads};
  for (auto _ : state) pool.run(c.threads, &CopyShare, &job);
  state.counters["GB/s"] =
      benchmark::Counter(static_cast<double>(src_bytes + dst_bytes) / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace

int main(int argc, char** argv) {
  for (size_t threads : {1, 2}) {
    for (bool bf16 : {false, true}) {
      for (bool nk : {true, false}) {
        // A Llama-7B projection (11008 × 4096: 180 MB of fp32 source).
        const PackCase c{11008, 4096, bf16, nk, threads};
        const std::string tail = std::string(bf16 ? "bf16" : "f32") + "/N:" + std::to_string(c.n) +
                                 "/K:" + std::to_string(c.k) + "/threads:" + std::to_string(threads) +
                                 (nk ? "/nk" : "/kn");
        tilekit_bench::ApplyPolicy(benchmark::RegisterBenchmark(("pack_weights/tilekit/" + tail).c_str(), PackRow, c));
        if (nk) {  // the ceiling does not depend on the source layout
          tilekit_bench::ApplyPolicy(benchmark::RegisterBenchmark(("pack_weights/copy/" + tail).c_str(), CopyRow, c));
        }
      }
    }
  }
  return tilekit_bench::BenchMain(argc, argv);
}

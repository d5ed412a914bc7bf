// tilekit's fp32 <-> bf16 array conversion on every path this machine can take
// (each forced with set_max_isa), against the plain scalar loop, on arrays from
// 4 KiB (L1) to 64 MiB (memory) of fp32. Rows:
//   convert/<tilekit_<path>|scalar_loop>/<f32_to_bf16|bf16_to_f32>/bytes:<fp32 bytes>
// GB/s counts bytes read plus bytes written (6 per element).
#include "tilekit/tilekit.h"
#include "tilekit/cpu/hwy_targets.h"  // hwy::TargetName

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "bench_main.h"
#include "convert_scalar_baseline.h"

namespace {

constexpr size_t kMinBytes = size_t{4} << 10, kMaxBytes = size_t{64} << 20;

// One pair of buffers of the largest size, reused by every row: small rows
// then run from cache, which is what they are meant to measure.
struct Buffers {
  tilekit::AlignedBuffer f32, bf16, f32_out;
  Buffers() {
    const size_t n = kMaxBytes / sizeof(float);
    if (!f32.allocate(n * 4, tilekit::PageHint::kHuge) || !bf16.allocate(n * 2, tilekit::PageHint::kHuge) ||
        !f32_out.allocate(n * 4, tilekit::PageHint::kHuge)) {
      return;
    }
    for (size_t i = 0; i < n; ++i) f32.as<float>()[i] = static_cast<float>(i % 1000) * 0.37f - 100.0f;
    if (tilekit::convert_f32_to_bf16(f32.as<float>(), bf16.as<tilekit::bf16>(), n) != tilekit::Status::kOk) std::abort();
    std::fill_n(f32_out.as<float>(), n, 0.0f);
  }
  bool ok() const { return f32.data() && bf16.data() && f32_out.data(); }
};

Buffers& TheBuffers() {
  static Buffers buffers;
  return buffers;
}

enum class Direction { kToBf16, kToF32 };

// Runs one direction on n elements: either tilekit (on the path set by the
// caller) or the scalar loop.
void Convert(Direction d, bool tilekit_path, size_t n) {
  Buffers& b = TheBuffers();
  if (d == Direction::kToBf16) {
    if (tilekit_path) {
      if (tilekit::convert_f32_to_bf16(b.f32.as<float>(), b.bf16.as<tilekit::bf16>(), n) != tilekit::Status::kOk) {
        std::abort();
      }
    } else {
      tilekit_bench::ScalarF32ToBf16(b.f32.as<float>(), b.bf16.as<tilekit::bf16>(), n);
    }
  } else {
    if (tilekit_path) {
      if (tilekit::convert_bf16_to_f32(b.bf16.as<tilekit::bf16>(), b.f32_out.as<float>(), n) != tilekit::Status::kOk) {
        std::abort();
      }
    } else {
      tilekit_bench::ScalarBf16ToF32(b.bf16.as<tilekit::bf16>(), b.f32_out.as<float>(), n);
    }
  }
  benchmark::ClobberMemory();
}

// isa < 0: the scalar loop.
void Register(int isa, Direction d) {
  const std::string impl = isa < 0 ? "scalar_loop" : std::string("tilekit_") + tilekit::isa_name(static_cast<tilekit::Isa>(isa));
  const char* dir = d == Direction::kToBf16 ? "f32_to_bf16" : "bf16_to_f32";
  for (size_t bytes = kMinBytes; bytes <= kMaxBytes; bytes *= 4) {
    const std::string name = "convert/" + impl + "/" + dir + "/bytes:" + std::to_string(bytes);
    tilekit_bench::ApplyPolicy(benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& state) {
      if (!TheBuffers().ok()) {
        state.SkipWithError("cannot allocate the conversion buffers");
        return;
      }
      std::string label = "path=scalar loop (-fno-tree-vectorize)";
      if (isa >= 0) {
        const tilekit::Isa path = static_cast<tilekit::Isa>(isa);
        if (tilekit::set_max_isa(path) != tilekit::Status::kOk || tilekit::cpu::active_isa() != path) {
          tilekit::clear_max_isa();
          state.SkipWithError("could not force the path (TILEKIT_MAX_ISA below it?)");
          return;
        }
        label = std::string("path=") + tilekit::isa_name(path) + ";hwy=" +
                hwy::TargetName(tilekit::cpu::dispatched_hwy_target());
      }
      const size_t n = bytes / sizeof(float);
      for (auto _ : state) Convert(d, isa >= 0, n);
      if (isa >= 0) tilekit::clear_max_isa();
      state.counters["GB/s"] = benchmark::Counter(static_cast<double>(n * 6) * 1e-9,
                                                  benchmark::Counter::kIsIterationInvariantRate);
      state.SetLabel(label);
    }))->Unit(benchmark::kMicrosecond);
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::AddCustomContext("tilekit_path", tilekit::cpu::path_report());
  for (Direction d : {Direction::kToBf16, Direction::kToF32}) {
    Register(-1, d);
    for (int i = 0; i < tilekit::kNumIsa; ++i) {
      const tilekit::Isa isa = static_cast<tilekit::Isa>(i);
      if (tilekit::isa_on_this_arch(isa) && tilekit::cpu::cpu_supports(tilekit::cpu::features(), isa)) {
        Register(i, d);
      }
    }
  }
  return tilekit_bench::BenchMain(argc, argv);
}

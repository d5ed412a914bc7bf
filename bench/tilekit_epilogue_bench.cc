// What fusing an epilogue into the GEMM's store saves, at 256×4096×4096 fp32:
//   bare     C = A·B
//   fused    C = gelu_erf(A·B + bias) + residual, in the GEMM's store
//   unfused  C = A·B, then bias, GELU and the residual add as three passes over C
//            (what an eager framework does: linear, gelu, add)
// Rows: gemm_epilogue/tilekit_<variant>/f32/M:256/N:4096/K:4096/threads:<t>/warm.
#include "tilekit/tilekit.h"  // first: tilekit runs Highway's foreach_target

#include <stdexcept>
#include <string>
#include <vector>

#include "bench_main.h"
#include "gemm_cases.h"

namespace {

constexpr size_t kM = 256, kN = 4096, kK = 4096;

void Check(tilekit::Status s) {
  if (s != tilekit::Status::kOk) throw std::runtime_error(tilekit::last_error());
}

enum class Variant { kBare, kFused, kUnfused };

struct Operands {
  tilekit::AlignedBuffer a, c, bias, residual;
  tilekit::PackedWeights w;
  Operands() {
    a = tilekit_bench::AllocateBuffer(kM * kK * 4);
    c = tilekit_bench::AllocateBuffer(kM * kN * 4);
    bias = tilekit_bench::AllocateBuffer(kN * 4);
    residual = tilekit_bench::AllocateBuffer(kM * kN * 4);
    std::vector<float> b(kK * kN);
    for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<float>((i * 2654435761u) % 1000) / 1000.f - 0.5f;
    for (size_t i = 0; i < kM * kK; ++i) a.as<float>()[i] = static_cast<float>(i % 97) / 97.f - 0.5f;
    for (size_t i = 0; i < kN; ++i) bias.as<float>()[i] = static_cast<float>(i % 13) / 13.f;
    for (size_t i = 0; i < kM * kN; ++i) residual.as<float>()[i] = static_cast<float>(i % 31) / 31.f;
    Check(tilekit::pack_weights(tilekit::weights_kn(b.data(), kK, kN), tilekit::WeightType::kF32, &w));
  }
};

void Run(benchmark::State& state, Variant variant, size_t threads) {
  static Operands ops;
  tilekit::ThreadPool pool(threads);
  tilekit::GemmOptions opt;
  opt.executor = &pool;
  const auto a = tilekit::matrix(ops.a.as<const float>(), kM, kK);
  const auto c = tilekit::matrix(ops.c.as<float>(), kM, kN);
  const float* bias = ops.bias.as<const float>();
  const float* res = ops.residual.as<const float>();
  const tilekit::Epilogue fused =
      tilekit::Epilogue().with_bias(bias).with(tilekit::Activation::kGeluErf).with_residual(res, kN);
  for (auto _ : state) {
    switch (variant) {
      case Variant::kBare: Check(tilekit::gemm(a, ops.w, c, {}, opt)); break;
      case Variant::kFused: Check(tilekit::gemm(a, ops.w, c, fused, opt)); break;
      case Variant::kUnfused:
        Check(tilekit::gemm(a, ops.w, c, {}, opt));
        Check(tilekit::apply_epilogue(c, tilekit::Epilogue().with_bias(bias)));
        Check(tilekit::apply_epilogue(c, tilekit::Epilogue().with(tilekit::Activation::kGeluErf)));
        Check(tilekit::apply_epilogue(c, tilekit::Epilogue().with_residual(res, kN)));
        break;
    }
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2e-9 * kM * kN * kK, benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel("detail=" + tilekit::cpu::path_report());
}

}  // namespace

int main(int argc, char** argv) {
  const std::pair<const char*, Variant> variants[] = {
      {"bare", Variant::kBare}, {"fused", Variant::kFused}, {"unfused", Variant::kUnfused}};
  for (size_t threads : {1, 2}) {
    for (const auto& [name, variant] : variants) {
      const std::string row = std::string("gemm_epilogue/tilekit_") + name + "/f32/M:256/N:4096/K:4096/threads:" +
                              std::to_string(threads) + "/warm";
      const Variant v = variant;
      auto* b = tilekit_bench::ApplyPolicy(benchmark::RegisterBenchmark(
          row.c_str(), [v, threads](benchmark::State& s) { Run(s, v, threads); }));
      // The differences sought are a few percent, the machine's noise 10-15%
      // per repetition: 15 interleaved repetitions instead of 5 (~80 s).
      if (!tilekit_bench::Policy().quick) b->Repetitions(15);
    }
  }
  // The variants are compared with each other: interleave their repetitions so
  // a slow phase of this shared machine does not land on one variant only
  // (run back to back, the first variant measured ~3% faster than an
  // identical one run last).
  std::vector<char*> args(argv, argv + argc);
  std::string interleave = "--benchmark_enable_random_interleaving=true";
  args.push_back(interleave.data());
  int n = static_cast<int>(args.size());
  return tilekit_bench::BenchMain(n, args.data());
}

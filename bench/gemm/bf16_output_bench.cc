// GEMMs where storing C is a visible part of the time: small K (M = 512,
// N = 4096, K = 64-256) and the M = 1 decode shapes, with C stored as bf16 on
// the best path and, where that path rounds to bf16 in one instruction
// (cpu::isa_converts_bf16), on the path below it too (the same Highway code
// with the bit rounding); fp32 C on the best path as the same-run peer (twice
// the bytes, no rounding). Repetitions interleave at random, so a slow phase
// of a shared machine lands on every row alike.
// Rows: gemm_out/tilekit_<path>/<a·w>/<c>/M:<m>/N:<n>/K:<k>/threads:1/<plain|bias_silu>
//   a·w: f32 (fp32 A and weights), bf16 (bf16 A and weights), f32_bf16w (fp32
//   A, bf16 weights); c: the type of C. Counters: GFLOP/s, and GB/s of C written.
#include "tilekit/tilekit.h"

#include <cstdlib>
#include <string>
#include <vector>

#include "bench_main.h"

namespace {

using tilekit::bf16;
using tilekit::Status;

struct OutCase {
  tilekit::Isa path;
  size_t m, n, k;
  const char* in;  // f32, bf16, f32_bf16w
  bool c_bf16;
  bool epilogue;  // bias + SiLU (the epilogue tile) rather than the plain store
};

void Check(Status s) {
  if (s != Status::kOk) std::abort();
}

void Run(benchmark::State& state, OutCase c) {
  Check(tilekit::set_max_isa(c.path));  // packing and every call on this path
  const bool a_bf16 = std::string(c.in) == "bf16", w_bf16 = std::string(c.in) != "f32";
  std::vector<float> a(c.m * c.k), w(c.k * c.n), bias(c.n);
  uint32_t x = 12345;
  const auto next = [&x] {
    x = x * 1664525u + 1013904223u;
    return static_cast<float>(x >> 8) / 16777216.f - 0.5f;
  };
  for (float& v : a) v = next();
  for (float& v : w) v = next();
  for (float& v : bias) v = next();
  std::vector<bf16> ab(a.size());
  Check(tilekit::convert_f32_to_bf16(a.data(), ab.data(), a.size()));
  tilekit::PackedWeights pw;
  Check(tilekit::pack_weights(tilekit::weights_kn(w.data(), c.k, c.n),
                              w_bf16 ? tilekit::WeightType::kBf16 : tilekit::WeightType::kF32, &pw));
  std::vector<float> cf(c.c_bf16 ? 0 : c.m * c.n);
  std::vector<bf16> cb(c.c_bf16 ? c.m * c.n : 0);
  const tilekit::Epilogue ep =
      c.epilogue ? tilekit::Epilogue().with_bias(bias.data()).with(tilekit::Activation::kSilu) : tilekit::Epilogue();
  const auto call = [&] {
    if (a_bf16) {
      const auto av = tilekit::matrix<const bf16>(ab.data(), c.m, c.k);
      return c.c_bf16 ? tilekit::gemm(av, pw, tilekit::matrix(cb.data(), c.m, c.n), ep)
                      : tilekit::gemm(av, pw, tilekit::matrix(cf.data(), c.m, c.n), ep);
    }
    const auto av = tilekit::matrix<const float>(a.data(), c.m, c.k);
    return c.c_bf16 ? tilekit::gemm(av, pw, tilekit::matrix(cb.data(), c.m, c.n), ep)
                    : tilekit::gemm(av, pw, tilekit::matrix(cf.data(), c.m, c.n), ep);
  };
  for (auto _ : state) Check(call());
  state.counters["GFLOP/s"] =
      benchmark::Counter(2e-9 * c.m * c.n * c.k, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GB/s"] = benchmark::Counter(1e-9 * c.m * c.n * (c.c_bf16 ? 2 : 4),
                                              benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel("detail=" + tilekit::cpu::path_report());
  tilekit::clear_max_isa();
}

}  // namespace

int main(int argc, char** argv) {
  // The best path, and the one below it that runs the same code with the bit
  // rounding where the best has the instruction.
  const tilekit::Isa best = tilekit::cpu::active_isa();
  std::vector<tilekit::Isa> paths = {best};
  if (tilekit::cpu::isa_converts_bf16(best)) {
    paths.push_back(best == tilekit::Isa::kNeonBf16  ? tilekit::Isa::kNeon
                    : best == tilekit::Isa::kSveBf16 ? tilekit::Isa::kSve
                                                     : tilekit::Isa::kAvx512);
  }
  std::vector<OutCase> cases;
  const auto add = [&](const char* in, size_t m, size_t n, size_t k, bool epilogue) {
    for (tilekit::Isa path : paths) cases.push_back({path, m, n, k, in, true, epilogue});
    cases.push_back({best, m, n, k, in, false, epilogue});
  };
  for (const char* in : {"f32", "bf16"}) {
    for (size_t k : {64, 128, 256}) {
      for (bool epilogue : {false, true}) add(in, 512, 4096, k, epilogue);
    }
  }
  for (const char* in : {"f32_bf16w", "bf16"}) {
    for (size_t n : {4096, 11008}) add(in, 1, n, 4096, false);
  }
  for (const OutCase& c : cases) {
    const std::string row = std::string("gemm_out/tilekit_") + tilekit::isa_name(c.path) + "/" + c.in +
                            (c.c_bf16 ? "/bf16" : "/f32") + "/M:" + std::to_string(c.m) + "/N:" + std::to_string(c.n) +
                            "/K:" + std::to_string(c.k) + "/threads:1/" + (c.epilogue ? "bias_silu" : "plain");
    tilekit_bench::ApplyPolicy(benchmark::RegisterBenchmark(row.c_str(), Run, c));
  }
  std::vector<char*> args(argv, argv + argc);
  std::string interleave = "--benchmark_enable_random_interleaving=true";
  args.push_back(interleave.data());
  int n = static_cast<int>(args.size());
  return tilekit_bench::BenchMain(n, args.data());
}

// The README's epilogue functor (engine_epilogue.h / .cc, extracted from
// README.md) on every path this CPU has, through its weight types' kernels,
// against fp64. Returns the number of wrong elements.
#include <cmath>
#include <cstdio>
#include <vector>

#include "engine_epilogue.h"

int check_readme_functor() {
  using namespace tilekit;
  // M and N cross a 12-row tile and two 32-column panels (primes, tails);
  // N = 3 packs narrow (the dot-product kernel), bf16 reaches AMX and BFMMLA.
  const size_t k = 37, limit_m = 29;
  std::vector<float> x(limit_m * k), weight(k * 67), b(67), scale(67);
  uint32_t state = 12345;  // a fixed LCG: the program has no seed to print
  auto next = [&state] {
    state = state * 1664525u + 1013904223u;
    return static_cast<float>(state >> 8) / 16777216.f * 2.f - 1.f;  // [-1, 1)
  };
  // x and the weights are bf16 values, so a path that rounds A or W to bf16
  // (AMX, BFMMLA) multiplies exactly what the reference does.
  for (float& v : x) v = bf16_to_f32(f32_to_bf16(next()));
  for (float& v : weight) v = bf16_to_f32(f32_to_bf16(next()));
  for (float& v : b) v = next();
  for (float& v : scale) v = 3.f * next();
  int bad = 0, runs = 0;
  const Isa best = cpu::active_isa();
  for (int i = 0; i <= static_cast<int>(best); ++i) {
    const Isa isa = static_cast<Isa>(i);
    if (!isa_on_this_arch(isa) || !cpu::cpu_supports(cpu::features(), isa) || !cpu::path_compiled(isa)) continue;
    if (set_max_isa(isa) != Status::kOk) return 1000;
    for (WeightType type : {WeightType::kF32, WeightType::kBf16}) {
      for (size_t n : {size_t{3}, size_t{67}}) {
        for (size_t m : {size_t{1}, limit_m}) {
          PackedWeights w;
          std::vector<float> y(m * n, NAN);
          const engine::ScaleClamp p{scale.data(), 0.75f};
          if (pack_weights(weights_kn(weight.data(), k, n, 67), type, &w) != Status::kOk ||
              engine::gemm_scale_clamp(matrix(x.data(), m, k), w, matrix(y.data(), m, n), p,
                                       Epilogue().with_bias(b.data())) != Status::kOk) {
            std::fprintf(stderr, "%s: %s\n", isa_name(isa), last_error());
            return 1000;
          }
          ++runs;
          for (size_t r = 0; r < m; ++r) {
            for (size_t j = 0; j < n; ++j) {
              double dot = 0, mag = 0;
              for (size_t kk = 0; kk < k; ++kk) {
                dot += static_cast<double>(x[r * k + kk]) * weight[kk * 67 + j];
                mag += std::fabs(static_cast<double>(x[r * k + kk]) * weight[kk * 67 + j]);
              }
              // fp32 sums of k products and the bias: <= gamma_{k+1}·(Σ|x·w| +
              // |b|) (Higham 3.5), with a unit of 2u (BFMMLA's round-to-odd sums
              // are within an ulp); the scale's product rounds once more
              // (u·|v·scale|) and multiplies the error by |scale|; the clamp adds
              // none; the fp32 store rounds nothing further (the value is fp32).
              const double u2 = 2.0 / (1 << 24), gamma = (k + 1) * u2 / (1 - (k + 1) * u2);
              const double v = (dot + b[j]) * scale[j];
              const double want = std::min(std::max(v, -0.75), 0.75);
              const double bound = std::fabs(scale[j]) * gamma * (mag + std::fabs(b[j])) + u2 * std::fabs(v) + 1e-30;
              bad += !(std::fabs(y[r * n + j] - want) <= bound);
            }
          }
        }
      }
    }
  }
  clear_max_isa();
  return runs ? bad : 1000;
}

// What an engine embedding tilekit does: include the API header in several
// files, pack weights once, run GEMMs, report the path. Linked with a second
// file and the README's engine.cc, which call kernels too, so a header that
// defines something non-inline (or an entry point nobody defines) fails to
// link here rather than in the engine.
#include <cmath>
#include <cstdio>
#include <vector>

#include "tilekit/tilekit.h"

// The API header compiles no kernel and pulls in no Highway (unless the
// program asked for the all-inline mode).
#if !defined(TILEKIT_ALL_INLINE) && \
    (defined(HIGHWAY_HWY_FOREACH_TARGET_H_) || defined(HWY_HIGHWAY_INCLUDED) || defined(HWY_TARGETS))
#error "tilekit/tilekit.h included Highway"
#endif

float round_trip_through_second_tu(float x);                                                     // second_tu.cc
bool gemm_in_second_tu(const float* x, const tilekit::PackedWeights& w, float* y, size_t m);   // second_tu.cc
tilekit::Status load_linear(const float* weight, size_t n, size_t k, tilekit::PackedWeights* w);  // README
tilekit::Status linear(const float* x, const tilekit::PackedWeights& w, const float* b, const float* x0, float* y,
                       size_t m, tilekit::Executor* pool);                                        // README
int check_readme_functor();                                                                      // functor_check.cc

int main() {
  const float in[5] = {1.0f, -2.5f, 3.14159265f, 65504.0f, 1e-3f};
  tilekit::bf16 out[5];
  if (tilekit::convert_f32_to_bf16(in, out, 5) != tilekit::Status::kOk) {
    std::fprintf(stderr, "convert_f32_to_bf16 failed: %s\n", tilekit::last_error());
    return 1;
  }
  int bad = 0;
  for (int i = 0; i < 5; ++i) {
    const float back = tilekit::bf16_to_f32(out[i]);
    bad += out[i].bits != tilekit::f32_to_bf16(in[i]).bits;
    bad += round_trip_through_second_tu(in[i]) != back;
  }

  // y = gelu(x·Wᵀ + b) + x0 through the README's functions, and x·Wᵀ from the
  // second file, against a plain loop on the same bf16-rounded weights.
  const size_t m = 3, n = 5, k = 7;
  std::vector<float> x(m * k), weight(n * k), b(n), x0(m * n), y(m * n), plain(m * n);
  for (size_t i = 0; i < x.size(); ++i) x[i] = 0.25f * static_cast<float>(i % 7) - 0.7f;
  for (size_t i = 0; i < weight.size(); ++i) {
    weight[i] = tilekit::bf16_to_f32(tilekit::f32_to_bf16(0.1f * static_cast<float>(i % 11) - 0.4f));
  }
  for (size_t j = 0; j < n; ++j) b[j] = 0.05f * static_cast<float>(j);
  for (size_t i = 0; i < x0.size(); ++i) x0[i] = 0.01f * static_cast<float>(i);
  tilekit::PackedWeights w;
  tilekit::ThreadPool pool(2);
  if (load_linear(weight.data(), n, k, &w) != tilekit::Status::kOk ||
      linear(x.data(), w, b.data(), x0.data(), y.data(), m, &pool) != tilekit::Status::kOk ||
      !gemm_in_second_tu(x.data(), w, plain.data(), m)) {
    std::fprintf(stderr, "tilekit call failed: %s\n", tilekit::last_error());
    return 1;
  }
  for (size_t i = 0; i < m; ++i) {
    for (size_t j = 0; j < n; ++j) {
      double dot = 0;
      for (size_t kk = 0; kk < k; ++kk) {
        // The amx path rounds fp32 A to bf16 before its products.
        const float a = w.layout().rounds_a_to_bf16() ? tilekit::bf16_to_f32(tilekit::f32_to_bf16(x[i * k + kk]))
                                                      : x[i * k + kk];
        dot += static_cast<double>(a) * weight[j * k + kk];
      }
      const double v = dot + b[j];
      const double want = 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))) + x0[i * n + j];
      bad += std::fabs(plain[i * n + j] - dot) > 1e-4;
      bad += std::fabs(y[i * n + j] - want) > 1e-4;
    }
  }
  const int functor_bad = check_readme_functor();
  if (functor_bad) std::fprintf(stderr, "README epilogue functor: %d wrong elements\n", functor_bad);
  bad += functor_bad;
  std::printf("isa: %s; %s\n", tilekit::cpu::path_report().c_str(), bad ? "MISMATCH" : "results match");
  return bad ? 1 : 0;
}

// tilekit against oneDNN in one process, call by call: a ratio that survives
// this shared machine's slow phases (they lasted seconds to minutes and moved
// absolute figures by up to 2x, more than the differences being tuned).
//
//   bench/interleaved_onednn M N K THREADS [f32|bf16|f32_bf16w]
//
// Each round times both libraries (best of 2 calls each, order alternating
// between rounds) and the tool prints the median of the per-round ratios with
// its interquartile range. TILEKIT_BENCH_COPIES=n rotates through n copies of
// the weights (cold weights: make n × weight bytes > 2 × the LLC); ROUNDS=n
// (default 15). dtypes: f32 (both fp32), bf16 (both bf16 × bf16 → fp32),
// f32_bf16w (tilekit fp32 A × bf16 weights; oneDNN has no such primitive, so
// it runs bf16 × bf16). Not part of scripts/bench: a tool for tuning and for
// the ratios quoted in docs/performance.md.
#include "tilekit/tilekit.h"  // first: tilekit runs Highway's foreach_target

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <oneapi/dnnl/dnnl.hpp>
#include <random>
#include <string>
#include <vector>

namespace {

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

size_t EnvSize(const char* name, size_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtoul(v, nullptr, 10) : fallback;
}

double Median(std::vector<double> v, double q = 0.5) {
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(q * (v.size() - 1) + 0.5)];
}

void Check(tilekit::Status s) {
  if (s != tilekit::Status::kOk) {
    std::fprintf(stderr, "tilekit: %s\n", tilekit::last_error());
    std::exit(1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: %s M N K THREADS [f32|bf16|f32_bf16w]\n", argv[0]);
    return 2;
  }
  const size_t M = std::strtoul(argv[1], nullptr, 10), N = std::strtoul(argv[2], nullptr, 10),
               K = std::strtoul(argv[3], nullptr, 10);
  const int threads = std::atoi(argv[4]);
  const std::string dtype = argc > 5 ? argv[5] : "f32";
  if (!M || !N || !K || threads < 1 || (dtype != "f32" && dtype != "bf16" && dtype != "f32_bf16w")) {
    std::fprintf(stderr, "bad arguments\n");
    return 2;
  }
  const bool bf16_weights = dtype != "f32", bf16_a = dtype == "bf16";
  const size_t copies = std::max<size_t>(1, EnvSize("TILEKIT_BENCH_COPIES", 1));
  const size_t rounds = std::max<size_t>(3, EnvSize("ROUNDS", 15));

  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  std::vector<float> a(M * K), w(K * N), c(M * N), c_dnnl(M * N);
  for (float& x : a) x = dist(rng);
  for (float& x : w) x = dist(rng);
  std::vector<tilekit::bf16> a16(M * K);
  Check(tilekit::convert_f32_to_bf16(a.data(), a16.data(), a.size()));

  // tilekit: weights packed once per copy for the path this CPU runs.
  std::vector<tilekit::PackedWeights> packed(copies);
  for (auto& p : packed) {
    Check(tilekit::pack_weights(tilekit::weights_kn(w.data(), K, N),
                                bf16_weights ? tilekit::WeightType::kBf16 : tilekit::WeightType::kF32, &p));
  }
  tilekit::ThreadPool pool(threads);
  tilekit::GemmOptions opt;
  opt.executor = &pool;

  // oneDNN: matmul with weights reordered once into its preferred layout.
  using dnnl::memory;
  using tag = memory::format_tag;
  using dt = memory::data_type;
  omp_set_num_threads(threads);
  dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  const memory::dim m = M, n = N, k = K;
  const dt in = bf16_weights ? dt::bf16 : dt::f32;
  const memory::desc a_md({m, k}, in, tag::ab), c_md({m, n}, dt::f32, tag::ab);
  const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, memory::desc({k, n}, in, tag::any), c_md), engine);
  const dnnl::matmul matmul(pd);
  memory a_f32({{m, k}, dt::f32, tag::ab}, engine, a.data()), w_f32({{k, n}, dt::f32, tag::ab}, engine, w.data());
  memory a_mem(a_md, engine), c_mem(c_md, engine, c_dnnl.data());
  dnnl::reorder(a_f32, a_mem).execute(stream, a_f32, a_mem);
  std::vector<memory> w_mem;
  for (size_t i = 0; i < copies; ++i) {
    w_mem.emplace_back(pd.weights_desc(), engine);
    dnnl::reorder(w_f32, w_mem.back()).execute(stream, w_f32, w_mem.back());
  }
  stream.wait();

  size_t copy = 0;
  auto run_tilekit = [&] {
    if (bf16_a) {
      Check(tilekit::gemm(tilekit::matrix(static_cast<const tilekit::bf16*>(a16.data()), M, K), packed[copy],
                          tilekit::matrix(c.data(), M, N), {}, opt));
    } else {
      Check(tilekit::gemm(tilekit::matrix(static_cast<const float*>(a.data()), M, K), packed[copy],
                          tilekit::matrix(c.data(), M, N), {}, opt));
    }
  };
  auto run_onednn = [&] {
    matmul.execute(stream, {{DNNL_ARG_SRC, a_mem}, {DNNL_ARG_WEIGHTS, w_mem[copy]}, {DNNL_ARG_DST, c_mem}});
    stream.wait();
  };
  auto best_of_2 = [&](auto&& fn) {
    double best = 1e30;
    for (int i = 0; i < 2; ++i) {
      const double t0 = Now();
      fn();
      best = std::min(best, Now() - t0);
      copy = (copy + 1) % copies;
    }
    return best;
  };
  run_tilekit();
  run_onednn();

  std::vector<double> t_tk, t_dnnl, ratio;
  for (size_t r = 0; r < rounds; ++r) {
    double tk, dn;
    if (r % 2) {
      dn = best_of_2(run_onednn), tk = best_of_2(run_tilekit);
    } else {
      tk = best_of_2(run_tilekit), dn = best_of_2(run_onednn);
    }
    t_tk.push_back(tk);
    t_dnnl.push_back(dn);
    ratio.push_back(dn / tk);
  }
  const double flops = 2.0 * M * N * K, weight_bytes = double(K) * N * (bf16_weights ? 2 : 4);
  const double tk = Median(t_tk), dn = Median(t_dnnl);
  std::printf("%s M=%zu N=%zu K=%zu threads=%d copies=%zu rounds=%zu\n", dtype.c_str(), M, N, K, threads, copies,
              rounds);
  std::printf("  tilekit (%s): %.1f GFLOP/s, %.1f GB/s of weights (median)\n", tilekit::cpu::path_report().c_str(),
              flops / tk / 1e9, weight_bytes / tk / 1e9);
  std::printf("  oneDNN (%s): %.1f GFLOP/s, %.1f GB/s of weights (median)\n", pd.impl_info_str(), flops / dn / 1e9,
              weight_bytes / dn / 1e9);
  std::printf("  tilekit / oneDNN speed, per round: median %.3fx, IQR [%.3f, %.3f]\n", Median(ratio),
              Median(ratio, 0.25), Median(ratio, 0.75));
  return 0;
}

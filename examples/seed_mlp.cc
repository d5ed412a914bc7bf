// The seed tutorial's MLP, 4096 -> 4096 (ReLU) -> 11008 (ReLU) -> 10, at batch
// 256, 32 and 10: tilekit with fp32 weights and with bf16 weights (fp32
// activations), beside oneDNN (prepacked weights, ReLU as a post-op; and its
// bf16 "fast math" mode, the seed's DNNL_DEFAULT_FPMATH_MODE=BF16) and OpenBLAS
// (sgemm + a ReLU pass) when the build found them. Median of repeated runs on
// all cores; the machine is shared, so read the ratios, not the milliseconds.
//
//   build/release/examples/seed_mlp [threads] [repetitions]
#include "tilekit/graph/graph.h"
#include "tilekit/tilekit.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#if TILEKIT_EXAMPLE_HAVE_ONEDNN
#include <omp.h>

#include <oneapi/dnnl/dnnl.hpp>
#endif
#if TILEKIT_EXAMPLE_HAVE_OPENBLAS
#include <cblas.h>
#endif

namespace {

struct Layer {
  size_t in, out;
  bool relu;
};
const Layer kLayers[] = {{4096, 4096, true}, {4096, 11008, true}, {11008, 10, false}};

struct Model {
  std::vector<std::vector<float>> w, b;  // w[l]: [in][out] row-major, b[l]: [out]
  Model() {
    std::mt19937 rng(42);
    for (const Layer& l : kLayers) {
      // Kaiming-like scale keeps activations O(1) through the ReLUs.
      std::normal_distribution<float> dist(0.f, std::sqrt(2.f / l.in));
      w.emplace_back(l.in * l.out);
      for (float& x : w.back()) x = dist(rng);
      b.emplace_back(l.out, 0.01f);
    }
  }
};

double MedianMs(const std::function<void()>& run, int reps) {
  run();  // warm-up: first-touch, thread start, lazy init
  std::vector<double> ms;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    run();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::nth_element(ms.begin(), ms.begin() + ms.size() / 2, ms.end());
  return ms[ms.size() / 2];
}

// tilekit: the MLP as a three-node graph (input -> linear+bias+relu ->
// linear+bias+relu -> linear+bias): weights packed once at build, bias and
// ReLU fused into each GEMM's store, activations in one planned arena.
struct TilekitMlp {
  tilekit::Graph graph;
  tilekit::ThreadPool pool;
  tilekit::TensorId in = tilekit::kNoTensor, out_id = tilekit::kNoTensor;
  std::vector<float> result;
  TilekitMlp(const Model& m, tilekit::WeightType type, size_t batch, size_t threads) : pool(threads) {
    tilekit::TensorId t = in = graph.input(kLayers[0].in);
    for (size_t l = 0; l < 3; ++l) {
      tilekit::LinearOptions o;
      o.bias = m.b[l].data();
      o.activation = kLayers[l].relu ? tilekit::Activation::kRelu : tilekit::Activation::kNone;
      t = graph.linear(t, tilekit::weights_kn(m.w[l].data(), kLayers[l].in, kLayers[l].out), o);
    }
    graph.mark_output(out_id = t);
    tilekit::GraphConfig gc;
    gc.max_tokens = batch;
    gc.weights = type;
    gc.pack_executor = &pool;
    if (graph.build(gc) != tilekit::Status::kOk) {
      std::fprintf(stderr, "graph: %s\n", tilekit::last_error());
      std::exit(1);
    }
  }
  void run(const float* x, size_t batch) {
    std::copy(x, x + batch * kLayers[0].in, graph.input_data(in));
    const tilekit::SequenceStep rows{nullptr, 0, 0, batch};
    if (graph.run(tilekit::Step{nullptr, &rows, 1}, &pool) != tilekit::Status::kOk) {
      std::fprintf(stderr, "graph: %s\n", tilekit::last_error());
      std::exit(1);
    }
  }
  const std::vector<float>& out() {
    const tilekit::MatrixView<const float> y = graph.output(out_id);
    result.assign(y.data, y.data + y.rows * y.cols);
    return result;
  }
};

#if TILEKIT_EXAMPLE_HAVE_ONEDNN
// oneDNN matmul per layer: weights reordered once into the primitive's
// preferred (blocked) layout, bias and ReLU as attributes of the primitive.
struct OnednnMlp {
  using tag = dnnl::memory::format_tag;
  using dt = dnnl::memory::data_type;
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream strm{eng};
  std::vector<dnnl::matmul> prims;
  std::vector<dnnl::memory> w, b, act;
  dnnl::memory src;
  OnednnMlp(const Model& m, bool bf16_math, float* x, size_t batch) {
    const auto mb = static_cast<dnnl::memory::dim>(batch);
    src = dnnl::memory({{mb, 4096}, dt::f32, tag::ab}, eng, x);
    for (size_t l = 0; l < 3; ++l) {
      const auto in = static_cast<dnnl::memory::dim>(kLayers[l].in), out = static_cast<dnnl::memory::dim>(kLayers[l].out);
      dnnl::primitive_attr attr;
      if (kLayers[l].relu) {
        dnnl::post_ops po;
        po.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
        attr.set_post_ops(po);
      }
      if (bf16_math) attr.set_fpmath_mode(dnnl::fpmath_mode::bf16);
      const dnnl::memory::desc a_md({mb, in}, dt::f32, tag::ab), w_md({in, out}, dt::f32, tag::any),
          b_md({1, out}, dt::f32, tag::ab), c_md({mb, out}, dt::f32, tag::ab);
      const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, w_md, b_md, c_md), attr, eng);
      prims.emplace_back(pd);
      dnnl::memory user_w({{in, out}, dt::f32, tag::ab}, eng, const_cast<float*>(m.w[l].data()));
      w.emplace_back(pd.weights_desc(), eng);
      dnnl::reorder(user_w, w.back()).execute(strm, user_w, w.back());
      b.emplace_back(b_md, eng, const_cast<float*>(m.b[l].data()));
      act.emplace_back(c_md, eng);
    }
    strm.wait();
  }
  void run() {
    const dnnl::memory* in = &src;
    for (size_t l = 0; l < 3; ++l) {
      prims[l].execute(strm, {{DNNL_ARG_SRC, *in}, {DNNL_ARG_WEIGHTS, w[l]}, {DNNL_ARG_BIAS, b[l]}, {DNNL_ARG_DST, act[l]}});
      in = &act[l];
    }
    strm.wait();
  }
  const float* out() const { return static_cast<const float*>(act.back().get_data_handle()); }
};
#endif

#if TILEKIT_EXAMPLE_HAVE_OPENBLAS
// OpenBLAS: sgemm with the bias preloaded into C (beta = 1), then a ReLU pass.
struct OpenblasMlp {
  const Model& model;
  std::vector<std::vector<float>> act;
  OpenblasMlp(const Model& m, size_t batch) : model(m) {
    for (const Layer& l : kLayers) act.emplace_back(batch * l.out);
  }
  void run(const float* x, size_t batch) {
    const float* in = x;
    for (size_t l = 0; l < 3; ++l) {
      const int n = static_cast<int>(kLayers[l].out), k = static_cast<int>(kLayers[l].in);
      float* c = act[l].data();
      for (size_t i = 0; i < batch; ++i) std::copy(model.b[l].begin(), model.b[l].end(), c + i * n);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(batch), n, k, 1.f, in, k,
                  model.w[l].data(), n, 1.f, c, n);
      if (kLayers[l].relu) {
        for (size_t i = 0; i < batch * n; ++i) c[i] = std::max(c[i], 0.f);
      }
      in = c;
    }
  }
  const float* out() const { return act.back().data(); }
};
#endif

// Largest |a - b| relative to the largest |b|: all implementations compute the
// same function, so they must agree to rounding (bf16 to bf16 rounding).
double Disagreement(const float* a, const std::vector<float>& b) {
  double diff = 0, scale = 1e-30;
  for (size_t i = 0; i < b.size(); ++i) {
    diff = std::max(diff, std::fabs(static_cast<double>(a[i]) - b[i]));
    scale = std::max(scale, std::fabs(static_cast<double>(b[i])));
  }
  return diff / scale;
}

}  // namespace

int main(int argc, char** argv) {
  const size_t threads = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : std::max(1u, std::thread::hardware_concurrency());
  const int reps = argc > 2 ? std::atoi(argv[2]) : 10;
  std::printf("seed MLP 4096 -> 4096 (relu) -> 11008 (relu) -> 10, %zu threads, median of %d runs\n", threads, reps);
  std::printf("tilekit path: %s\n", tilekit::cpu::path_report().c_str());
#if TILEKIT_EXAMPLE_HAVE_ONEDNN
  omp_set_num_threads(static_cast<int>(threads));
#endif
#if TILEKIT_EXAMPLE_HAVE_OPENBLAS
  openblas_set_num_threads(static_cast<int>(threads));
  std::printf("OpenBLAS core: %s (set OPENBLAS_CORETYPE=Cooperlake on this Xeon for its best)\n", openblas_get_corename());
#endif
  const Model model;
  std::printf("%-6s %-34s %10s %12s %14s\n", "batch", "implementation", "ms", "vs tilekit", "max rel diff");
  for (size_t batch : {256, 32, 10}) {
    std::vector<float> x(batch * 4096);
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> dist(-1.f, 1.f);
    for (float& v : x) v = dist(rng);
    TilekitMlp f32(model, tilekit::WeightType::kF32, batch, threads);
    const double t_f32 = MedianMs([&] { f32.run(x.data(), batch); }, reps);
    const std::vector<float> ref = f32.out();
    auto row = [&](const char* name, double ms, double diff) {
      std::printf("%-6zu %-34s %10.2f %11.2fx %14.2e\n", batch, name, ms, ms / t_f32, diff);
    };
    row("tilekit f32", t_f32, 0.0);
    {
      TilekitMlp bf(model, tilekit::WeightType::kBf16, batch, threads);
      const double t = MedianMs([&] { bf.run(x.data(), batch); }, reps);
      row("tilekit f32 x bf16 weights", t, Disagreement(bf.out().data(), ref));
    }
#if TILEKIT_EXAMPLE_HAVE_ONEDNN
    for (bool bf16_math : {false, true}) {
      OnednnMlp dnn(model, bf16_math, x.data(), batch);
      const double t = MedianMs([&] { dnn.run(); }, reps);
      row(bf16_math ? "oneDNN f32, fpmath_mode=bf16" : "oneDNN f32", t, Disagreement(dnn.out(), ref));
    }
#endif
#if TILEKIT_EXAMPLE_HAVE_OPENBLAS
    {
      OpenblasMlp ob(model, batch);
      const double t = MedianMs([&] { ob.run(x.data(), batch); }, reps);
      row("OpenBLAS f32", t, Disagreement(ob.out(), ref));
    }
#endif
  }
  return 0;
}

// The graph executor (issues 18 and 26): one Llama-7B-dims decoder layer (dim
// 4096, hidden 11008, 32 heads, 8 KV heads, head_dim 128) built with
// add_llama_layer,
//  - decode of one token at a context of 512 and 4096, per weight type, each
//    iteration beside a read pass over as many bytes as the step must read (the
//    layer's packed weights and its fp32 K/V) on the same threads (interleaved,
//    so both see the same machine): x_bound = median decode time / median read
//    time (goal <= 1.15), and the step's share per kind of node (StepProfile);
//  - prefill of 512 tokens against the same layer composed eagerly in this
//    binary (graph_prefill/eager): oneDNN matmuls with weights reordered once
//    into the blocked layout oneDNN chooses (tag::any), RMSNorm, RoPE, SiLU,
//    products and residual adds as separate plain-loop passes (bench/ops's
//    eager passes), the K/V copy into a contiguous cache, and oneDNN's unfused
//    attention (per head QKᵀ matmul + mask, softmax, PV matmul); passes split
//    over the threads with OpenMP as a framework's intra-op pool does;
//  - the executor's overhead on a tiny model (dim 64, 4 layers): per iteration
//    one graph decode step and the same kernel calls made directly (same packed
//    weights' shapes, same cache), us_per_layer = (median graph − median
//    direct) / layers.
//
//  - the whole model per weight type: TinyLlama's layer shape over 8 layers
//    (dim 2048, hidden 5632, 32 heads, 4 KV heads, vocab 32000, untied
//    classifier; 1.67 GB of fp32 weights per token) as a LlamaModel: decode
//    tokens/s at a context of 512 and 4096 beside the streaming bound
//    (bound_tokens/s = the read ceiling measured in the same run, interleaved,
//    over the bytes per token: packed weights, scales included, and the K/V
//    the step reads), the step's share per kind of node (share_linear,
//    share_attention, share_norm, share_rope, share_other; StepProfile), its
//    GEMMs against the read ceiling (linear_x_bound) and against the same
//    GEMMs run alone (linear_x_alone); and prefill tokens/s in 512-token steps.
//
// Weight types: f32, bf16, and int8 / int4 quantized at build in groups of 32
// (GraphConfig::weight_group's default); their packed bytes include the
// scales.
//
// Rows: graph_decode/<tilekit|read_ceiling>/<f32|bf16|int8|int4>/context:<512|4096|0>/threads:<t>
//       graph_prefill/<tilekit|eager>/<weights>/T:512/threads:<t>
//       graph_model_decode/tilekit/<weights>/context:<512|4096>/threads:<t>
//       graph_model_prefill/tilekit/<weights>/T:512/threads:<t>
//       graph_overhead/tilekit/f32/dim:64/layers:4/threads:<t>
// GB/s: decode = packed weight bytes + K/V bytes read per step; GFLOP/s:
// prefill = the layer's GEMM FLOPs (2·T·(2D² + 2D·Dkv + 3DH)), attention not
// counted (the same numerator for both libraries).
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <vector>

#include "bench_main.h"
#include "eager_ops.h"
#include "onednn_unfused.h"
#include "read_bandwidth.h"
#include "tilekit/graph/llama.h"
#include "tilekit/loaders/llama2c.h"
#include "tilekit/tilekit.h"

namespace {

using clock_type = std::chrono::steady_clock;
using tilekit::Status;

constexpr size_t kDim = 4096, kHidden = 11008, kHeads = 32, kKvHeads = 8, kHeadDim = 128, kChunk = 512,
                 kMaxContext = 4096;
constexpr size_t kKvDim = kKvHeads * kHeadDim;
constexpr size_t kContexts[] = {512, 4096};  // of the decode rows, the layer's and the model's

double Seconds(clock_type::time_point t0) { return std::chrono::duration<double>(clock_type::now() - t0).count(); }
double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return v[v.size() / 2];
}
void Fill(float* p, size_t n, uint64_t seed, float scale) {
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < n; ++i) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    p[i] = scale * (static_cast<float>(s >> 40) / 8388608.f - 1.f);
  }
}

tilekit::LlamaConfig LayerConfig(size_t dim, size_t hidden, size_t heads, size_t kv_heads, size_t max_seq) {
  tilekit::LlamaConfig c;
  c.dim = dim, c.hidden = hidden, c.layers = 1, c.heads = heads, c.kv_heads = kv_heads, c.vocab = 1;
  c.max_seq_len = max_seq;
  c.rope.pairing = tilekit::RopePairing::kHalfSplit;  // HF's, as the eager RoPE below
  return c;
}

// One layer's weights in PyTorch's [out][in] layout.
struct LayerWeights {
  std::vector<float> wq, wk, wv, wo, w1, w2, w3, n1, n2;
  LayerWeights(size_t dim, size_t hidden, size_t kvd, uint64_t seed)
      : wq(dim * dim), wk(kvd * dim), wv(kvd * dim), wo(dim * dim), w1(hidden * dim), w2(dim * hidden),
        w3(hidden * dim), n1(dim), n2(dim) {
    uint64_t s = seed;
    for (auto* v : {&wq, &wk, &wv, &wo, &w1, &w3}) Fill(v->data(), v->size(), ++s, std::sqrt(3.f / dim));
    Fill(w2.data(), w2.size(), ++s, std::sqrt(3.f / hidden));
    for (auto* v : {&n1, &n2}) {
      Fill(v->data(), v->size(), ++s, 0.25f);
      for (float& x : *v) x += 1.f;
    }
  }
  tilekit::LlamaLayerWeights view() const {
    return {n1.data(), wq.data(), wk.data(), wv.data(), wo.data(), n2.data(), w1.data(), w2.data(), w3.data(), {}};
  }
};

const LayerWeights& Weights7B() {
  static const LayerWeights w(kDim, kHidden, kKvDim, 1);
  return w;
}

// A chain of `layers` Llama layers on an input tensor, its cache (every block
// one sequence's, in order) and RoPE table.
struct LayerGraph {
  tilekit::LlamaConfig config;
  tilekit::RopeTable rope;
  tilekit::KvCache cache;
  tilekit::Graph graph;
  tilekit::TensorId x = tilekit::kNoTensor;
  std::vector<uint32_t> blocks;

  bool build(const tilekit::LlamaConfig& c, const std::vector<tilekit::LlamaLayerWeights>& layers,
             tilekit::WeightType type, size_t max_tokens, tilekit::Executor* pack) {
    config = c;
    tilekit::RopeConfig rc = c.rope;
    rc.head_dim = c.head_dim();
    tilekit::KvCacheConfig kc;
    kc.layers = layers.size(), kc.kv_heads = c.kv_heads, kc.head_dim = c.head_dim();
    kc.num_blocks = (c.max_seq_len + kc.block_tokens - 1) / kc.block_tokens;
    if (tilekit::make_rope_table(rc, c.max_seq_len, &rope) != Status::kOk || cache.init(kc) != Status::kOk) return false;
    blocks.resize(kc.num_blocks);
    for (uint32_t& b : blocks) {
      if (cache.allocate_block(&b) != Status::kOk) return false;
    }
    x = graph.input(c.dim);
    tilekit::TensorId y = x;
    for (size_t l = 0; l < layers.size(); ++l) y = tilekit::add_llama_layer(graph, c, layers[l], l, rope, y);
    graph.mark_output(y);
    tilekit::GraphConfig gc;
    gc.max_tokens = max_tokens;
    gc.weights = type;
    gc.kv_cache = &cache;
    gc.pack_executor = pack;
    if (graph.build(gc) != Status::kOk) return false;
    Fill(graph.input_data(x), max_tokens * c.dim, 7, 1.f);
    return true;
  }
  tilekit::SequenceStep seq(size_t pos, size_t tokens) const {
    return tilekit::SequenceStep{blocks.data(), blocks.size(), pos, tokens};
  }
  Status run(size_t pos, size_t tokens, tilekit::Executor* ex) {
    const tilekit::SequenceStep s = seq(pos, tokens);
    return graph.run(tilekit::Step{nullptr, &s, 1}, ex);
  }
  // Random K/V at positions [0, context) of every layer.
  bool fill_cache(size_t context) {
    std::vector<float> k(context * cache.config().kv_heads * cache.config().head_dim);
    Fill(k.data(), k.size(), 11, 1.f);
    const tilekit::KvSequence s{blocks.data(), blocks.size(), context};
    const size_t h = cache.config().kv_heads, d = cache.config().head_dim;
    for (size_t l = 0; l < cache.config().layers; ++l) {
      const auto kv = tilekit::heads_view<const float>(k.data(), context, h, d);
      if (tilekit::kv_cache_write(cache, l, s, 0, kv, kv) != Status::kOk) return false;
    }
    return true;
  }
};

constexpr tilekit::WeightType kWeightTypes[] = {tilekit::WeightType::kF32, tilekit::WeightType::kBf16,
                                                tilekit::WeightType::kInt8, tilekit::WeightType::kInt4};

// The 7B layer per weight type (int8 and int4 quantized in groups of 32, the
// graph's default), built on first use (packing takes seconds).
LayerGraph* Graph7B(tilekit::WeightType type) {
  static std::unique_ptr<LayerGraph> graphs[std::size(kWeightTypes)];
  std::unique_ptr<LayerGraph>& g = graphs[static_cast<size_t>(type)];
  if (!g) {
    g.reset(new LayerGraph);
    tilekit::ThreadPool pool(2);
    if (!g->build(LayerConfig(kDim, kHidden, kHeads, kKvHeads, kMaxContext + 1), {Weights7B().view()}, type, kChunk,
                  &pool) ||
        !g->fill_cache(kMaxContext)) {
      g.reset();
    }
  }
  return g.get();
}

// A read pass over `bytes` split over the pool (the prefetching reader).
struct ReadPass {
  tilekit::AlignedBuffer buf;
  size_t n = 0, threads = 1;
  tilekit_bench::ReadFn fn = nullptr;
  float sink[8] = {};
  bool init(size_t bytes, size_t t) {
    threads = t;
    n = bytes / sizeof(float) / (threads * tilekit_bench::kReadGranule) * (threads * tilekit_bench::kReadGranule);
    if (!buf.allocate(n * sizeof(float), tilekit::PageHint::kHuge)) return false;
    std::fill(buf.as<float>(), buf.as<float>() + n, 1.f);
    fn = tilekit_bench::Readers().back().fn;
    return true;
  }
  double seconds(tilekit::Executor& ex) {
    const auto t0 = clock_type::now();
    ex.run(threads, [](void* x, size_t t) {
      ReadPass& r = *static_cast<ReadPass*>(x);
      const size_t part = r.n / r.threads;
      r.sink[t] = r.fn(r.buf.as<float>() + t * part, part);
    }, this);
    return Seconds(t0);
  }
};

size_t KvBytes(size_t context) { return 2 * context * kKvDim * sizeof(float); }

// Times `step` once per iteration, and after each (outside the timing) the
// read pass on the same threads, interleaved so both see the same machine.
// False, the state skipped, when a step fails.
template <typename StepFn>
bool TimeBesideReads(benchmark::State& state, ReadPass& read, tilekit::Executor& pool, StepFn&& step,
                     std::vector<double>* steps, std::vector<double>* reads) {
  for (auto _ : state) {
    const auto t0 = clock_type::now();
    if (step() != Status::kOk) {
      state.SkipWithError(tilekit::last_error());
      return false;
    }
    steps->push_back(Seconds(t0));
    state.PauseTiming();
    reads->push_back(read.seconds(pool));
    benchmark::DoNotOptimize(read.sink);
    state.ResumeTiming();
  }
  return true;
}

// The share of each step per kind of node (median over the steps), beside
// what the step's GEMMs took against the same GEMMs alone and against the
// read ceiling.
void ProfileCounters(benchmark::State& state, const std::vector<tilekit::StepProfile>& profiles) {
  for (size_t k = 0; k < tilekit::kNodeKinds; ++k) {
    std::vector<double> share;
    for (const tilekit::StepProfile& p : profiles) share.push_back(static_cast<double>(p.ns[k]) / p.step_ns);
    state.counters[std::string("share_") + tilekit::node_kind_name(static_cast<tilekit::NodeKind>(k))] = Median(share);
  }
}

std::vector<double> KindSeconds(const std::vector<tilekit::StepProfile>& profiles, tilekit::NodeKind k) {
  std::vector<double> s;
  for (const tilekit::StepProfile& p : profiles) s.push_back(p.kind_ns(k) * 1e-9);
  return s;
}

// Runs `step` once per iteration; false, the state skipped, when it fails.
template <typename StepFn>
bool TimeSteps(benchmark::State& state, StepFn&& step) {
  for (auto _ : state) {
    if (step() != Status::kOk) {
      state.SkipWithError(tilekit::last_error());
      return false;
    }
  }
  return true;
}

void GraphDecode(benchmark::State& state, tilekit::WeightType type, size_t context, size_t threads) {
  LayerGraph* g = Graph7B(type);
  if (!g) {
    state.SkipWithError(tilekit::last_error());
    return;
  }
  tilekit::ThreadPool pool(threads);
  ReadPass read;  // the bytes the step must read: the packed weights and the layer's K/V
  if (!read.init(g->graph.stats().packed_bytes + KvBytes(context), threads)) {
    state.SkipWithError("out of memory");
    return;
  }
  // Positions [0, context) written again: a step at a smaller context (or the
  // prefill rows) ended the cache's written positions there, and the cache
  // refuses to read past them.
  if (!g->fill_cache(context)) {
    state.SkipWithError(tilekit::last_error());
    return;
  }
  std::vector<double> dec, rd;
  std::vector<tilekit::StepProfile> profiles;
  const tilekit::SequenceStep seq = g->seq(context, 1);
  const auto step = [&] {
    profiles.emplace_back();
    return g->graph.run(tilekit::Step{nullptr, &seq, 1}, &pool, &profiles.back());
  };
  if (!TimeBesideReads(state, read, pool, step, &dec, &rd)) return;
  ProfileCounters(state, profiles);
  const double bytes = static_cast<double>(g->graph.stats().packed_bytes);
  state.counters["GB/s"] = benchmark::Counter((bytes + KvBytes(context)) * 1e-9,
                                              benchmark::Counter::kIsIterationInvariantRate);
  state.counters["read_GB/s"] = read.n * sizeof(float) * 1e-9 / Median(rd);
  state.counters["x_bound"] = Median(dec) / Median(rd);
  state.counters["weight_MB"] = bytes * 1e-6;
}

// The read pass alone over the f32 layer's packed bytes: the ceiling row.
void ReadCeiling(benchmark::State& state, size_t threads) {
  LayerGraph* g = Graph7B(tilekit::WeightType::kF32);
  tilekit::ThreadPool pool(threads);
  ReadPass read;
  if (!g || !read.init(g->graph.stats().packed_bytes, threads)) {
    state.SkipWithError("no graph or out of memory");
    return;
  }
  for (auto _ : state) {
    read.seconds(pool);
    benchmark::DoNotOptimize(read.sink);
  }
  state.counters["GB/s"] =
      benchmark::Counter(read.n * sizeof(float) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

double LayerFlops(size_t t) { return 2.0 * t * (2.0 * kDim * kDim + 2.0 * kDim * kKvDim + 3.0 * kDim * kHidden); }

void GraphPrefill(benchmark::State& state, tilekit::WeightType type, size_t threads) {
  LayerGraph* g = Graph7B(type);
  if (!g) {
    state.SkipWithError(tilekit::last_error());
    return;
  }
  tilekit::ThreadPool pool(threads);
  if (!TimeSteps(state, [&] { return g->run(0, kChunk, &pool); })) return;
  state.counters["GFLOP/s"] = benchmark::Counter(LayerFlops(kChunk) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// ---- the eager layer -----------------------------------------------------------
// x·Wᵀ by oneDNN, W given as [N][K] and reordered once into the layout the
// primitive chose.
class Matmul {
  using memory = dnnl::memory;
  using tag = memory::format_tag;
  using dt = memory::data_type;

 public:
  Matmul(const dnnl::engine& e, size_t m, size_t n, size_t k, const float* w_nk) : engine_(e) {
    const memory::dim M = m, N = n, K = k;
    const memory::desc a({M, K}, dt::f32, tag::ab), c({M, N}, dt::f32, tag::ab);
    pd_ = dnnl::matmul::primitive_desc(dnnl::matmul::desc(a, memory::desc({K, N}, dt::f32, tag::any), c), e);
    prim_ = dnnl::matmul(pd_);
    w_ = memory(pd_.weights_desc(), e);
    memory src({{K, N}, dt::f32, tag::ba}, e, const_cast<float*>(w_nk));
    dnnl::stream s(e);
    dnnl::reorder(src, w_).execute(s, src, w_);
    s.wait();
  }
  void run(dnnl::stream& s, const float* a, float* c) {
    memory am(pd_.src_desc(), engine_, const_cast<float*>(a)), cm(pd_.dst_desc(), engine_, c);
    prim_.execute(s, {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, w_}, {DNNL_ARG_DST, cm}});
  }

 private:
  dnnl::engine engine_;
  dnnl::matmul::primitive_desc pd_;
  dnnl::matmul prim_;
  memory w_;
};

// A pass over rows [0, rows) split over the OpenMP threads.
template <typename Body>
void Pass(size_t rows, const Body& body) {
#pragma omp parallel
  {
    const size_t t = static_cast<size_t>(omp_get_thread_num()), n = static_cast<size_t>(omp_get_num_threads());
    body(rows * t / n, rows * (t + 1) / n);
  }
}

class EagerLayer {
 public:
  explicit EagerLayer(const LayerWeights& w)
      : engine_(dnnl::engine::kind::cpu, 0), stream_(engine_), w_(w),
        q_(engine_, kChunk, kDim, kDim, w.wq.data()), k_(engine_, kChunk, kKvDim, kDim, w.wk.data()),
        v_(engine_, kChunk, kKvDim, kDim, w.wv.data()), o_(engine_, kChunk, kDim, kDim, w.wo.data()),
        gate_(engine_, kChunk, kHidden, kDim, w.w1.data()), up_(engine_, kChunk, kHidden, kDim, w.w3.data()),
        down_(engine_, kChunk, kDim, kHidden, w.w2.data()),
        attn_({kChunk, kChunk, kHeads, kKvHeads, kHeadDim, false}, /*causal=*/true) {
    const size_t T = kChunk;
    for (auto* v : {&x_, &x2_, &h_, &sq_, &y_, &att_}) v->resize(T * kDim);
    for (auto* v : {&q_out_, &r1_, &r2_, &r3_}) v->resize(T * kDim);
    for (auto* v : {&k_out_, &v_out_, &kc_, &vc_}) v->resize(T * kKvDim);
    for (auto* v : {&g_, &u_}) v->resize(T * kHidden);
    mean_.resize(T), rs_.resize(T);
    cos_.resize(T * kHeadDim), sin_.resize(T * kHeadDim), pos_.resize(T);
    // HF's tables: [pos][head_dim], each frequency twice (the two halves).
    cos_table_.resize(T * kHeadDim), sin_table_.resize(T * kHeadDim);
    for (size_t p = 0; p < T; ++p) {
      pos_[p] = static_cast<int32_t>(p);
      for (size_t j = 0; j < kHeadDim / 2; ++j) {
        const double a = p * std::pow(10000.0, -2.0 * j / kHeadDim);
        cos_table_[p * kHeadDim + j] = cos_table_[p * kHeadDim + j + kHeadDim / 2] = static_cast<float>(std::cos(a));
        sin_table_[p * kHeadDim + j] = sin_table_[p * kHeadDim + j + kHeadDim / 2] = static_cast<float>(std::sin(a));
      }
    }
    Fill(x_.data(), x_.size(), 7, 1.f);
  }

  // The layer on T = kChunk tokens at positions 0..T-1; the output is y_.
  void run() {
    namespace e = tilekit_bench::eager;
    const size_t T = kChunk;
    RmsNorm(x_.data(), w_.n1.data(), h_.data());
    q_.run(stream_, h_.data(), q_out_.data());
    k_.run(stream_, h_.data(), k_out_.data());
    v_.run(stream_, h_.data(), v_out_.data());
    stream_.wait();
    Rope(q_out_.data(), kHeads);
    Rope(k_out_.data(), kKvHeads);
    Pass(T, [&](size_t a, size_t b) {  // the cache write
      e::Copy(k_out_.data(), kc_.data(), kKvDim, a, b);
      e::Copy(v_out_.data(), vc_.data(), kKvDim, a, b);
    });
    attn_.Run(q_out_.data(), kc_.data(), vc_.data(), att_.data());
    o_.run(stream_, att_.data(), y_.data());
    stream_.wait();
    Pass(T, [&](size_t a, size_t b) { e::Add(x_.data(), y_.data(), x2_.data(), kDim, a, b); });
    RmsNorm(x2_.data(), w_.n2.data(), h_.data());
    gate_.run(stream_, h_.data(), g_.data());
    up_.run(stream_, h_.data(), u_.data());
    stream_.wait();
    Pass(T, [&](size_t a, size_t b) {
      e::Silu(g_.data(), g_.data(), kHidden, a, b);
      e::Mul(g_.data(), u_.data(), g_.data(), kHidden, a, b);
    });
    down_.run(stream_, g_.data(), y_.data());
    stream_.wait();
    Pass(T, [&](size_t a, size_t b) { e::Add(x2_.data(), y_.data(), y_.data(), kDim, a, b); });
  }

 private:
  // HF's LlamaRMSNorm: x.pow(2).mean(-1), rsqrt(· + eps), x · that, weight · that.
  void RmsNorm(const float* x, const float* w, float* out) {
    namespace e = tilekit_bench::eager;
    Pass(kChunk, [&](size_t a, size_t b) {
      e::Square(x, sq_.data(), kDim, a, b);
      e::RowMean(sq_.data(), mean_.data(), kDim, a, b);
      e::AddRsqrt(mean_.data(), 1e-5f, rs_.data(), a, b);
      e::MulRowScalar(x, rs_.data(), sq_.data(), kDim, a, b);
      e::MulBroadcast(sq_.data(), w, out, kDim, a, b);
    });
  }
  // HF's apply_rotary_pos_emb: x·cos + rotate_half(x)·sin, in place.
  void Rope(float* x, size_t heads) {
    namespace e = tilekit_bench::eager;
    const size_t ld = heads * kHeadDim;
    Pass(kChunk, [&](size_t a, size_t b) {
      e::Gather(cos_table_.data(), pos_.data(), cos_.data(), kHeadDim, a, b);
      e::Gather(sin_table_.data(), pos_.data(), sin_.data(), kHeadDim, a, b);
      e::MulHeads(x, ld, cos_.data(), r1_.data(), heads, kHeadDim, a, b);
      e::RotateHalf(x, ld, r2_.data(), heads, kHeadDim, a, b);
      e::MulHeads(r2_.data(), ld, sin_.data(), r3_.data(), heads, kHeadDim, a, b);
      e::AddHeads(r1_.data(), r3_.data(), x, ld, heads, kHeadDim, a, b);
    });
  }

  dnnl::engine engine_;
  dnnl::stream stream_;
  const LayerWeights& w_;
  Matmul q_, k_, v_, o_, gate_, up_, down_;
  tilekit_bench::OnednnUnfused attn_;
  std::vector<float> x_, x2_, h_, sq_, y_, att_, q_out_, r1_, r2_, r3_, k_out_, v_out_, kc_, vc_, g_, u_, mean_, rs_;
  std::vector<float> cos_, sin_, cos_table_, sin_table_;
  std::vector<int32_t> pos_;
};

void EagerPrefill(benchmark::State& state, size_t threads) {
  omp_set_num_threads(static_cast<int>(threads));
  static std::unique_ptr<EagerLayer> layer;
  if (!layer) layer.reset(new EagerLayer(Weights7B()));
  for (auto _ : state) layer->run();
  state.counters["GFLOP/s"] = benchmark::Counter(LayerFlops(kChunk) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// ---- the whole model -----------------------------------------------------------
// TinyLlama-1.1B's layer shape (dim 2048, hidden 5632, 32 heads, 4 KV heads,
// vocab 32000, untied classifier) over 8 layers as a LlamaModel with random
// weights: 1.67 GB of fp32 weights read per token. Per weight type, decode one
// token at a context of 512 and 4096, each step profiled (StepProfile) and
// followed, outside the timing, by
//  - the read pass over the bytes per token (packed weights, scales included,
//    and the fp32 K/V the step reads), on the same threads: x_bound;
//  - the model's GEMMs alone (ModelGemvs), the same shapes and weight type
//    called back to back: linear_x_alone = the GEMMs' time inside the step
//    over their time alone (goal: within 5%).
// and prefill tokens/s of 512-token steps.
//
// The KV cache holds random K/V written straight into every layer at
// positions [0, 4096) (FillModelCache): a prefill of 4096 tokens would take minutes per weight
// type, and attention's time does not depend on the values (finite ones, no
// -inf logits). A decode step writes position `context` and attends to the
// keys before it and its own, every iteration the same.
tilekit::LlamaConfig ModelConfig() {
  tilekit::LlamaConfig c;
  c.dim = 2048, c.hidden = 5632, c.layers = 8, c.heads = 32, c.kv_heads = 4, c.vocab = 32000;
  c.max_seq_len = kMaxContext + 1;
  c.tied_embeddings = false;
  c.rope.pairing = tilekit::RopePairing::kHalfSplit;  // HF's, as TinyLlama's checkpoints
  return c;
}

// K/V bytes a decode step at `context` reads (fp32 cache, every layer).
double ModelKvBytes(size_t context) {
  const tilekit::LlamaConfig c = ModelConfig();
  return 2.0 * c.layers * (context + 1) * c.kv_heads * c.head_dim() * sizeof(float);
}

// The model's weights in llama2.c's layout, shared by every weight type:
// uniform with variance 1/fan-in, norm weights 1 (empty if they do not fit).
const std::vector<float>& ModelData(tilekit::LlamaWeights* w) {
  static const tilekit::LlamaConfig c = ModelConfig();
  static const std::vector<float> data = [] {
    size_t n = 0;
    if (!tilekit::llama2c_floats(c, &n)) return std::vector<float>();
    std::vector<float> d(n);
    Fill(d.data(), n, 21, std::sqrt(3.f / c.dim));
    tilekit::LlamaWeights lw;
    tilekit::llama2c_weights(c, d.data(), &lw);
    const auto ones = [&](const float* p) { std::fill_n(d.begin() + (p - d.data()), c.dim, 1.f); };
    for (const tilekit::LlamaLayerWeights& l : lw.layers) ones(l.attn_norm), ones(l.ffn_norm);
    ones(lw.final_norm);
    return d;
  }();
  tilekit::llama2c_weights(c, data.data(), w);
  return data;
}

// The model's GEMMs outside the graph: its linears packed as the graph packs
// them (Q, K, V as one three-segment object, gate/up as one SwiGLU pair, the
// output and down projections with the residual in their store, the
// classifier), called at M = 1 in the model's order with nothing between
// them. Outputs go to buffers of their own, so repeated calls never grow a
// residual stream.
class ModelGemvs {
 public:
  ModelGemvs(const tilekit::LlamaConfig& c, const tilekit::LlamaWeights& w, tilekit::WeightType type,
             tilekit::Executor* pack)
      : c_(c), layers_(c.layers) {
    using tilekit::weights_nk;
    const size_t D = c.dim, H = c.hidden, qd = c.heads * c.head_dim(), kvd = c.kv_heads * c.head_dim();
    tilekit::PackOptions po;
    po.executor = pack;
    const auto sep = tilekit::PackKind::kSeparate;
    for (size_t l = 0; l < c.layers && ok_; ++l) {
      const tilekit::LlamaLayerWeights& lw = w.layers[l];
      const tilekit::WeightSource qkv[3] = {weights_nk(lw.wq, qd, D), weights_nk(lw.wk, kvd, D),
                                            weights_nk(lw.wv, kvd, D)};
      const tilekit::WeightSource gu[2] = {weights_nk(lw.w1, H, D), weights_nk(lw.w3, H, D)};
      const tilekit::WeightSource wo = weights_nk(lw.wo, D, qd), w2 = weights_nk(lw.w2, D, H);
      Layer& p = layers_[l];
      ok_ = tilekit::pack_weights(qkv, 3, type, sep, &p.qkv, po) == Status::kOk &&
            tilekit::pack_weights(gu, 2, type, tilekit::PackKind::kGateUp, &p.gate_up, po) == Status::kOk &&
            tilekit::pack_weights(&wo, 1, type, sep, &p.wo, po) == Status::kOk &&
            tilekit::pack_weights(&w2, 1, type, sep, &p.w2, po) == Status::kOk;
    }
    const tilekit::WeightSource cls = weights_nk(w.classifier, c.vocab, D);
    ok_ = ok_ && tilekit::pack_weights(&cls, 1, type, sep, &classifier_, po) == Status::kOk;
    h_.assign(D, 0.5f), x_.assign(D, 0.25f), y_.resize(D), q_.resize(qd), k_.resize(kvd), v_.resize(kvd);
    att_.assign(qd, 0.5f), ff_.resize(H), logits_.resize(c.vocab);
  }
  bool ok() const { return ok_; }

  Status run(tilekit::Executor* ex) {
    using tilekit::matrix;
    const size_t D = c_.dim, H = c_.hidden, qd = c_.heads * c_.head_dim(), kvd = c_.kv_heads * c_.head_dim();
    tilekit::GemmOptions go;
    go.executor = ex;
    const tilekit::Epilogue residual = tilekit::Epilogue().with_residual(x_.data(), D);
    const tilekit::FusedOutput<float> qkv[3] = {{matrix(q_.data(), 1, qd), {}}, {matrix(k_.data(), 1, kvd), {}},
                                                {matrix(v_.data(), 1, kvd), {}}};
    const auto h = matrix<const float>(h_.data(), 1, D);
    Status st = Status::kOk;
    auto ok = [&](Status x) { return (st = x) == Status::kOk; };
    for (const Layer& p : layers_) {
      if (!ok(tilekit::gemm_fused(h, p.qkv, qkv, 3, go)) ||
          !ok(tilekit::gemm(matrix<const float>(att_.data(), 1, qd), p.wo, matrix(y_.data(), 1, D), residual, go)) ||
          !ok(tilekit::gemm(h, p.gate_up, matrix(ff_.data(), 1, H), tilekit::Epilogue().with(tilekit::Activation::kSwiGlu), go)) ||
          !ok(tilekit::gemm(matrix<const float>(ff_.data(), 1, H), p.w2, matrix(y_.data(), 1, D), residual, go))) {
        return st;
      }
    }
    return tilekit::gemm(h, classifier_, matrix(logits_.data(), 1, c_.vocab), tilekit::Epilogue(), go);
  }

 private:
  struct Layer {
    tilekit::PackedWeights qkv, gate_up, wo, w2;
  };
  tilekit::LlamaConfig c_;
  std::vector<Layer> layers_;
  tilekit::PackedWeights classifier_;
  std::vector<float> h_, x_, y_, q_, k_, v_, att_, ff_, logits_;
  bool ok_ = true;
};

struct Model {
  tilekit::WeightType type;
  tilekit::LlamaModel model;
  tilekit::KvSlot slot;
  std::vector<int32_t> tokens;
  std::unique_ptr<ModelGemvs> gemvs;
};

// Random K/V at positions [0, kMaxContext) of every layer.
bool FillModelCache(tilekit::LlamaModel& m, const tilekit::KvSlot& slot) {
  tilekit::KvCache& cache = m.cache();
  const size_t h = cache.config().kv_heads, d = cache.config().head_dim;
  std::vector<float> kv(kMaxContext * h * d);
  Fill(kv.data(), kv.size(), 11, 1.f);
  const tilekit::SequenceStep s = slot.step(0);
  const tilekit::KvSequence seq{s.blocks, s.num_blocks, kMaxContext};
  const auto view = tilekit::heads_view<const float>(kv.data(), kMaxContext, h, d);
  for (size_t l = 0; l < cache.config().layers; ++l) {
    if (tilekit::kv_cache_write(cache, l, seq, 0, view, view) != Status::kOk) return false;
  }
  return true;
}

// One weight type's model (and its GEMMs apart) at a time: the rows run type
// by type, and the fp32 model with its GEMMs is 3.3 GB beside the 1.9 GB of
// source weights.
Model* ModelOf(tilekit::WeightType type) {
  static std::unique_ptr<Model> m;
  if (m && m->type == type) return m.get();
  m.reset(new Model);
  m->type = type;
  tilekit::LlamaWeights w;
  const tilekit::LlamaConfig c = ModelConfig();
  tilekit::ThreadPool pool(2);
  tilekit::LlamaOptions o;
  o.max_tokens = kChunk;
  o.weights = type;
  o.pack_executor = &pool;
  m->tokens.resize(kChunk);
  for (size_t i = 0; i < kChunk; ++i) m->tokens[i] = static_cast<int32_t>((i * 7919) % c.vocab);
  if (ModelData(&w).empty() || m->model.build(c, w, o) != Status::kOk ||
      m->slot.init(m->model.cache(), c.max_seq_len) != Status::kOk ||
      m->slot.grow(m->model.cache(), c.max_seq_len) != Status::kOk || !FillModelCache(m->model, m->slot)) {
    m.reset();
    return nullptr;
  }
  m->gemvs.reset(new ModelGemvs(c, w, type, &pool));
  if (!m->gemvs->ok()) m.reset();
  return m.get();
}

void ModelDecode(benchmark::State& state, tilekit::WeightType type, size_t context, size_t threads) {
  Model* m = ModelOf(type);
  if (!m) {
    state.SkipWithError(tilekit::last_error());
    return;
  }
  tilekit::ThreadPool pool(threads);
  const double weight_bytes = static_cast<double>(m->model.graph().stats().packed_bytes);
  const double bytes = weight_bytes + ModelKvBytes(context);  // per token
  ReadPass read;
  if (!read.init(static_cast<size_t>(bytes), threads)) {
    state.SkipWithError("out of memory");
    return;
  }
  const tilekit::SequenceStep seq = m->slot.step(1);
  const tilekit::SequenceStep at{seq.blocks, seq.num_blocks, context, 1};
  const tilekit::Step step{m->tokens.data(), &at, 1};
  std::vector<double> dec, rd, alone;
  std::vector<tilekit::StepProfile> profiles;
  for (auto _ : state) {
    tilekit::StepProfile p;
    const auto t0 = clock_type::now();
    if (m->model.forward(step, &pool, &p) != Status::kOk) {
      state.SkipWithError(tilekit::last_error());
      return;
    }
    dec.push_back(Seconds(t0));
    state.PauseTiming();
    profiles.push_back(p);
    rd.push_back(read.seconds(pool));
    benchmark::DoNotOptimize(read.sink);
    const auto t1 = clock_type::now();
    if (m->gemvs->run(&pool) != Status::kOk) {
      state.SkipWithError(tilekit::last_error());
      return;
    }
    alone.push_back(Seconds(t1));
    state.ResumeTiming();
  }
  // The read pass covers the bytes rounded down to whole granules.
  const double read_bps = read.n * sizeof(float) / Median(rd);
  const double linear = Median(KindSeconds(profiles, tilekit::NodeKind::kLinear));
  state.counters["tokens/s"] = 1 / Median(dec);
  state.counters["bound_tokens/s"] = read_bps / bytes;
  state.counters["x_bound"] = Median(dec) * read_bps / bytes;
  state.counters["read_GB/s"] = read_bps * 1e-9;
  state.counters["MB/token"] = bytes * 1e-6;
  state.counters["kv_MB"] = ModelKvBytes(context) * 1e-6;
  ProfileCounters(state, profiles);
  state.counters["linear_x_bound"] = linear * read_bps / weight_bytes;
  state.counters["linear_x_alone"] = linear / Median(alone);
}

void ModelPrefill(benchmark::State& state, tilekit::WeightType type, size_t threads) {
  Model* m = ModelOf(type);
  if (!m) {
    state.SkipWithError(tilekit::last_error());
    return;
  }
  tilekit::ThreadPool pool(threads);
  const tilekit::SequenceStep seq = m->slot.step(kChunk);
  const tilekit::SequenceStep at{seq.blocks, seq.num_blocks, 0, kChunk};
  const tilekit::Step step{m->tokens.data(), &at, 1};
  if (!TimeSteps(state, [&] { return m->model.forward(step, &pool); })) return;
  state.counters["tokens/s"] = benchmark::Counter(kChunk, benchmark::Counter::kIsIterationInvariantRate);
}

// ---- overhead ------------------------------------------------------------------
// The kernel calls a decode step of one Llama layer makes, made directly, on
// weights packed as the graph packs them (Q/K/V as one three-segment GEMM,
// gate/up as one SwiGLU pair) and the graph's cache.
class DirectLayers {
 public:
  DirectLayers(const tilekit::LlamaConfig& c, const std::vector<LayerWeights>& w, tilekit::KvCache* cache,
               const tilekit::RopeTable* rope)
      : c_(c), cache_(cache), rope_(rope), packed_(w.size()) {
    const size_t D = c.dim, H = c.hidden, qd = c.heads * c.head_dim(), kvd = c.kv_heads * c.head_dim();
    for (size_t l = 0; l < w.size(); ++l) {
      const tilekit::WeightSource qkv[3] = {tilekit::weights_nk(w[l].wq.data(), qd, D),
                                            tilekit::weights_nk(w[l].wk.data(), kvd, D),
                                            tilekit::weights_nk(w[l].wv.data(), kvd, D)};
      const tilekit::WeightSource gu[2] = {tilekit::weights_nk(w[l].w1.data(), H, D),
                                           tilekit::weights_nk(w[l].w3.data(), H, D)};
      Packed& p = packed_[l];
      ok_ = ok_ && tilekit::pack_weights(qkv, 3, tilekit::WeightType::kF32, tilekit::PackKind::kSeparate, &p.qkv) == Status::kOk &&
            tilekit::pack_weights(gu, 2, tilekit::WeightType::kF32, tilekit::PackKind::kGateUp, &p.gate_up) == Status::kOk &&
            tilekit::pack_weights(tilekit::weights_nk(w[l].wo.data(), D, qd), tilekit::WeightType::kF32, &p.wo) == Status::kOk &&
            tilekit::pack_weights(tilekit::weights_nk(w[l].w2.data(), D, H), tilekit::WeightType::kF32, &p.w2) == Status::kOk;
      p.n1 = w[l].n1.data(), p.n2 = w[l].n2.data();
    }
    x_.assign(D, 0.5f), h_.resize(D), q_.resize(qd), k_.resize(kvd), v_.resize(kvd), att_.resize(qd), ff_.resize(H);
  }
  bool ok() const { return ok_; }

  Status run(const tilekit::SequenceStep& s, tilekit::Executor* ex) {
    using tilekit::matrix;
    const size_t D = c_.dim, H = c_.hidden, d = c_.head_dim(), qd = c_.heads * d, kvd = c_.kv_heads * d;
    const int32_t pos = static_cast<int32_t>(s.pos);
    tilekit::RmsNormOptions no;
    no.eps = c_.norm_eps;
    no.executor = ex;
    tilekit::GemmOptions go;
    go.executor = ex;
    tilekit::AttentionParams ap;
    ap.mask.causal = true;
    ap.executor = ex;
    const tilekit::KvSequence seq{s.blocks, s.num_blocks, s.pos + 1};
    Status st = Status::kOk;
    auto ok = [&](Status x) { return (st = x) == Status::kOk; };
    for (size_t l = 0; l < packed_.size(); ++l) {
      const Packed& p = packed_[l];
      const tilekit::FusedOutput<float> qkv[3] = {{matrix(q_.data(), 1, qd), {}}, {matrix(k_.data(), 1, kvd), {}},
                                                  {matrix(v_.data(), 1, kvd), {}}};
      const tilekit::AttentionBatchItem item{tilekit::heads_view<const float>(q_.data(), 1, c_.heads, d), seq,
                                             tilekit::heads_view(att_.data(), 1, c_.heads, d), nullptr};
      if (!ok(tilekit::rms_norm(tilekit::rows_of(matrix<const float>(x_.data(), 1, D)), p.n1,
                                tilekit::rows_of(matrix(h_.data(), 1, D)), no)) ||
          !ok(tilekit::gemm_fused(matrix<const float>(h_.data(), 1, D), p.qkv, qkv, 3, go)) ||
          !ok(tilekit::rope(tilekit::heads_view(q_.data(), 1, c_.heads, d), tilekit::heads_view(k_.data(), 1, c_.kv_heads, d),
                            &pos, *rope_, ex)) ||
          !ok(tilekit::kv_cache_write(*cache_, l, seq, s.pos, tilekit::heads_view<const float>(k_.data(), 1, c_.kv_heads, d),
                                      tilekit::heads_view<const float>(v_.data(), 1, c_.kv_heads, d))) ||
          !ok(tilekit::attention_batch(*cache_, l, &item, 1, ap)) ||
          !ok(tilekit::gemm(matrix<const float>(att_.data(), 1, qd), p.wo, matrix(x_.data(), 1, D),
                            tilekit::Epilogue().with_residual(x_.data(), D), go)) ||
          !ok(tilekit::rms_norm(tilekit::rows_of(matrix<const float>(x_.data(), 1, D)), p.n2,
                                tilekit::rows_of(matrix(h_.data(), 1, D)), no)) ||
          !ok(tilekit::gemm(matrix<const float>(h_.data(), 1, D), p.gate_up, matrix(ff_.data(), 1, H),
                            tilekit::Epilogue().with(tilekit::Activation::kSwiGlu), go)) ||
          !ok(tilekit::gemm(matrix<const float>(ff_.data(), 1, H), p.w2, matrix(x_.data(), 1, D),
                            tilekit::Epilogue().with_residual(x_.data(), D), go))) {
        return st;
      }
    }
    return st;
  }

 private:
  struct Packed {
    tilekit::PackedWeights qkv, gate_up, wo, w2;
    const float *n1 = nullptr, *n2 = nullptr;
  };
  tilekit::LlamaConfig c_;
  tilekit::KvCache* cache_;
  const tilekit::RopeTable* rope_;
  std::vector<Packed> packed_;
  std::vector<float> x_, h_, q_, k_, v_, att_, ff_;
  bool ok_ = true;
};

constexpr size_t kTinyDim = 64, kTinyHidden = 160, kTinyHeads = 4, kTinyKvHeads = 2, kTinyContext = 16;

void GraphOverhead(benchmark::State& state, size_t layers, size_t threads) {
  const tilekit::LlamaConfig c = LayerConfig(kTinyDim, kTinyHidden, kTinyHeads, kTinyKvHeads, 64);
  std::vector<LayerWeights> w;
  std::vector<tilekit::LlamaLayerWeights> views;
  for (size_t l = 0; l < layers; ++l) w.emplace_back(kTinyDim, kTinyHidden, kTinyKvHeads * c.head_dim(), 100 + l);
  for (const LayerWeights& l : w) views.push_back(l.view());
  LayerGraph g;
  if (!g.build(c, views, tilekit::WeightType::kF32, 1, nullptr) || !g.fill_cache(kTinyContext)) {
    state.SkipWithError(tilekit::last_error());
    return;
  }
  DirectLayers direct(c, w, &g.cache, &g.rope);
  if (!direct.ok()) {
    state.SkipWithError(tilekit::last_error());
    return;
  }
  tilekit::ThreadPool pool(threads);
  const tilekit::SequenceStep s = g.seq(kTinyContext, 1);
  std::vector<double> tg, td;
  for (auto _ : state) {
    auto t0 = clock_type::now();
    Status st = g.run(kTinyContext, 1, &pool);
    tg.push_back(Seconds(t0));
    t0 = clock_type::now();
    if (st == Status::kOk) st = direct.run(s, &pool);
    td.push_back(Seconds(t0));
    if (st != Status::kOk) {
      state.SkipWithError(tilekit::last_error());
      return;
    }
  }
  const double graph_us = Median(tg) * 1e6, direct_us = Median(td) * 1e6;
  state.counters["graph_us"] = graph_us;
  state.counters["kernels_us"] = direct_us;
  state.counters["us_per_layer"] = (graph_us - direct_us) / layers;
}

void Register(const std::string& name, void (*fn)(benchmark::State&, tilekit::WeightType, size_t, size_t),
              tilekit::WeightType t, size_t a, size_t b) {
  tilekit_bench::ApplyPolicy(benchmark::RegisterBenchmark(name.c_str(), fn, t, a, b));
}

}  // namespace

int main(int argc, char** argv) {
  using tilekit::WeightType;
  for (size_t threads : {size_t{1}, size_t{2}}) {
    const std::string t = "/threads:" + std::to_string(threads);
    tilekit_bench::ApplyPolicy(benchmark::RegisterBenchmark(("graph_overhead/tilekit/f32/dim:64/layers:4" + t).c_str(),
                                                            GraphOverhead, size_t{4}, threads));
    for (size_t context : kContexts) {
      for (WeightType w : kWeightTypes) {
        Register(std::string("graph_decode/tilekit/") + tilekit::weight_type_name(w) + "/context:" + std::to_string(context) + t,
                 GraphDecode, w, context, threads);
      }
    }
    tilekit_bench::ApplyPolicy(
        benchmark::RegisterBenchmark(("graph_decode/read_ceiling/f32/context:0" + t).c_str(), ReadCeiling, threads));
    for (WeightType w : kWeightTypes) {
      const std::string name = tilekit::weight_type_name(w);
      tilekit_bench::ApplyPolicy(benchmark::RegisterBenchmark(("graph_prefill/tilekit/" + name + "/T:512" + t).c_str(),
                                                              GraphPrefill, w, threads));
    }
    tilekit_bench::ApplyPolicy(
        benchmark::RegisterBenchmark(("graph_prefill/eager/f32/T:512" + t).c_str(), EagerPrefill, threads));
  }
  // The whole model type by type (ModelOf keeps one weight type's model).
  for (WeightType w : kWeightTypes) {
    const std::string name = tilekit::weight_type_name(w);
    for (size_t context : kContexts) {
      for (size_t threads : {size_t{1}, size_t{2}}) {
        Register("graph_model_decode/tilekit/" + name + "/context:" + std::to_string(context) + "/threads:" +
                     std::to_string(threads),
                 ModelDecode, w, context, threads);
      }
    }
    for (size_t threads : {size_t{1}, size_t{2}}) {
      tilekit_bench::ApplyPolicy(benchmark::RegisterBenchmark(
          ("graph_model_prefill/tilekit/" + name + "/T:512/threads:" + std::to_string(threads)).c_str(), ModelPrefill,
          w, threads));
    }
  }
  return tilekit_bench::BenchMain(argc, argv);
}

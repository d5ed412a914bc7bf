// One Llama-7B-dims decoder layer (dim 4096, hidden 11008, 32 heads, 8 or 32
// KV heads) on the graph executor: prefill of 512 tokens, and decode at a
// context of 1K and 4K, each beside the weight-streaming bound (the layer's
// packed weight bytes, quantized weights' scales included / the read
// bandwidth measured in the same run by a pass over a buffer as large as the
// weights, on the same threads). One block of rows per weight type:
//
//   decoder_layer [threads] [types] [kv_heads] [repetitions] [max_context]
//
// types: f32, bf16, int8, int4 or several joined by commas (f32,int8,int4);
// int8 and int4 weights are quantized at build in groups of 32 K values.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "tilekit/graph/llama.h"
#include "tilekit/tilekit.h"
#include "../common/weight_type_arg.h"

namespace {

using clock_type = std::chrono::steady_clock;

double Median(std::vector<double> v) {
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return v[v.size() / 2];
}

// Bytes/s of reading `bytes` once, split over the pool (integer sums, which
// the compiler vectorises): the ceiling a weight-streaming step can reach.
struct ReadPass {
  std::vector<uint64_t> buf;
  std::vector<uint64_t> sums;
  size_t tasks;
  static void Task(void* ctx, size_t t) {
    ReadPass* p = static_cast<ReadPass*>(ctx);
    const size_t n = p->buf.size(), b = n * t / p->tasks, e = n * (t + 1) / p->tasks;
    uint64_t s[8] = {};
    size_t i = b;
    for (; i + 8 <= e; i += 8) for (int j = 0; j < 8; ++j) s[j] += p->buf[i + j];
    for (; i < e; ++i) s[0] += p->buf[i];
    p->sums[t] = s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
  }
  double seconds(tilekit::Executor& ex) {
    const auto t0 = clock_type::now();
    ex.run(tasks, Task, this);
    return std::chrono::duration<double>(clock_type::now() - t0).count();
  }
};

// Builds the layer with `type` weights, then prints its rows: prefill, and
// decode at each context up to max_context beside the streaming bound.
int RunLayer(const tilekit::LlamaConfig& c, const tilekit::LlamaLayerWeights& lw, tilekit::WeightType type,
             size_t threads, int reps, size_t max_context, std::mt19937& rng) {
  const size_t D = c.dim, H = c.hidden, kvd = c.kv_heads * c.head_dim();
  tilekit::ThreadPool pool(threads);
  tilekit::RopeTable rope;
  tilekit::RopeConfig rc = c.rope;
  rc.head_dim = c.head_dim();
  tilekit::KvCache cache;
  tilekit::KvCacheConfig kc;
  kc.layers = 1, kc.kv_heads = c.kv_heads, kc.head_dim = c.head_dim(), kc.num_blocks = (c.max_seq_len + 15) / 16 + 1;
  if (tilekit::make_rope_table(rc, c.max_seq_len, &rope) != tilekit::Status::kOk || cache.init(kc) != tilekit::Status::kOk) {
    std::fprintf(stderr, "decoder_layer: %s\n", tilekit::last_error());
    return 1;
  }
  const size_t chunk = 512;
  tilekit::Graph g;
  const tilekit::TensorId x = g.input(D);
  g.mark_output(tilekit::add_llama_layer(g, c, lw, 0, rope, x));
  tilekit::GraphConfig gc;
  gc.max_tokens = chunk;
  gc.weights = type;
  gc.kv_cache = &cache;
  gc.pack_executor = &pool;
  if (g.build(gc) != tilekit::Status::kOk) {
    std::fprintf(stderr, "decoder_layer: %s\n", tilekit::last_error());
    return 1;
  }
  const tilekit::GraphStats& st = g.stats();
  const char* name = tilekit::weight_type_name(type);
  std::printf("%s weights: %.1f MB packed%s; graph: %zu kernel calls, arena %.1f MB for %zu tokens (tensors apart: "
              "%.1f MB)\n",
              name, st.packed_bytes / 1e6, tilekit::is_quantized(type) ? " (scales included, groups of 32)" : "",
              st.kernel_nodes, st.arena_bytes / 1e6, chunk, st.intermediate_bytes / 1e6);
  {
    std::uniform_real_distribution<float> d(-1.f, 1.f);
    float* in = g.input_data(x);
    for (size_t i = 0; i < chunk * D; ++i) in[i] = d(rng);
  }
  ReadPass read{std::vector<uint64_t>(st.packed_bytes / 8, 1), std::vector<uint64_t>(threads * 4), threads * 4};

  std::vector<uint32_t> blocks(kc.num_blocks);
  for (uint32_t& b : blocks) {
    if (cache.allocate_block(&b) != tilekit::Status::kOk) return 1;
  }
  auto run = [&](size_t pos, size_t tokens) {
    const tilekit::SequenceStep s{blocks.data(), blocks.size(), pos, tokens};
    if (g.run(tilekit::Step{nullptr, &s, 1}, &pool) != tilekit::Status::kOk) {
      std::fprintf(stderr, "decoder_layer: %s\n", tilekit::last_error());
      std::exit(1);
    }
  };
  auto time = [&](size_t pos, size_t tokens) {
    std::vector<double> t;
    run(pos, tokens);  // warm-up
    for (int r = 0; r < reps; ++r) {
      const auto t0 = clock_type::now();
      run(pos, tokens);
      t.push_back(std::chrono::duration<double>(clock_type::now() - t0).count());
    }
    return Median(t);
  };
  auto bound = [&] {
    std::vector<double> t;
    read.seconds(pool);
    for (int r = 0; r < reps; ++r) t.push_back(read.seconds(pool));
    return Median(t);
  };
  const double pre = time(0, chunk);
  const double flops = 2.0 * chunk * (2.0 * D * D + 2.0 * D * kvd + 3.0 * D * H);
  std::printf("%-6s %-20s %12.2f %14s %12s  (%.0f GFLOP/s in the GEMMs' FLOPs)\n", name, "prefill 512", pre * 1e3, "-",
              "-", flops / pre / 1e9);
  // Fill the cache to each context with 512-token chunks, then time one decode
  // token at that context (re-running it at the same position).
  size_t filled = chunk;
  for (size_t context : {size_t{1024}, size_t{4096}}) {
    if (context > max_context) break;
    for (; filled < context; filled += chunk) run(filled, chunk);
    const double dec = time(context, 1), b = bound();
    std::printf("%-6s decode at %-10zu %12.3f %14.3f %11.2fx  (read %.1f GB/s)\n", name, context, dec * 1e3, b * 1e3,
                dec / b, st.packed_bytes / b / 1e9);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const size_t threads = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 1;
  const std::string type_list = argc > 2 ? argv[2] : "f32";
  const size_t kv_heads = argc > 3 ? std::strtoul(argv[3], nullptr, 10) : 8;
  const int reps = argc > 4 ? std::atoi(argv[4]) : 5;
  const size_t max_context = argc > 5 ? std::strtoul(argv[5], nullptr, 10) : 4096;
  std::vector<tilekit::WeightType> types;
  for (size_t at = 0; at <= type_list.size();) {
    const size_t end = std::min(type_list.find(',', at), type_list.size());
    tilekit::WeightType t;
    if (!ParseWeightType(type_list.substr(at, end - at).c_str(), &t)) {
      std::fprintf(stderr, "decoder_layer: weight types %s: f32, bf16, int8 or int4, joined by commas\n",
                   type_list.c_str());
      return 2;
    }
    types.push_back(t);
    at = end + 1;
  }
  tilekit::LlamaConfig c;
  c.dim = 4096, c.hidden = 11008, c.layers = 1, c.heads = 32, c.kv_heads = kv_heads, c.vocab = 1;
  c.max_seq_len = max_context + 1;
  c.rope.pairing = tilekit::RopePairing::kHalfSplit;
  if (tilekit::check_llama_config(c) != tilekit::Status::kOk) {
    std::fprintf(stderr, "decoder_layer: %s\n", tilekit::last_error());
    return 1;
  }
  const size_t D = c.dim, H = c.hidden, kvd = kv_heads * c.head_dim();
  std::vector<float> wq(D * D), wk(kvd * D), wv(kvd * D), wo(D * D), w1(H * D), w2(D * H), w3(H * D), n1(D), n2(D);
  std::mt19937 rng(1);
  for (auto* v : {&wq, &wk, &wv, &wo, &w1, &w2, &w3}) {
    std::uniform_real_distribution<float> d(-0.02f, 0.02f);
    for (float& x : *v) x = d(rng);
  }
  std::fill(n1.begin(), n1.end(), 1.f);
  std::fill(n2.begin(), n2.end(), 1.f);
  const tilekit::LlamaLayerWeights lw{n1.data(), wq.data(), wk.data(), wv.data(), wo.data(),
                                      n2.data(), w1.data(), w2.data(), w3.data(), {}};
  std::printf("decoder layer 4096/11008, 32 heads, %zu kv heads, %zu threads, median of %d\n", kv_heads, threads, reps);
  std::printf("%-6s %-20s %12s %14s %12s\n", "w", "case", "ms", "stream-bound ms", "ratio");
  for (tilekit::WeightType t : types) {
    if (RunLayer(c, lw, t, threads, reps, max_context, rng) != 0) return 1;
  }
  return 0;
}

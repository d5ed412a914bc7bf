// The Llama family as a Graph: a model description (shapes, norm eps, RoPE),
// its weights as PyTorch / llama2.c store them ([out][in] row-major), and the
// graph that runs it:
//
//   x = embedding[ids]
//   per layer:
//     h = rmsnorm(x) · attn_norm
//     q, k, v = h·Wqᵀ, h·Wkᵀ, h·Wvᵀ        one GEMM over three packed segments
//     rope(q, k); cache[layer] ← k, v
//     x = attention(q, cache) · Woᵀ + x     residual added in the GEMM's store, over x
//     h = rmsnorm(x) · ffn_norm
//     x = (silu(h·W1ᵀ) · h·W3ᵀ)·W2ᵀ + x    gate/up as one SwiGLU GEMM; residual in the store
//   logits = (rmsnorm(x) · final_norm) · Wclsᵀ   for each sequence's last token (or every token)
//
// LlamaModel owns the graph, the packed weights, the RoPE table and a paged KV
// cache sized for max_sequences sequences of max_seq_len tokens; KvSlot holds
// one sequence's blocks (a KvSequenceState) with its capacity reserved, so
// steps allocate nothing.
#ifndef TILEKIT_GRAPH_LLAMA_H_
#define TILEKIT_GRAPH_LLAMA_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "tilekit/attention/kv_sequence.h"
#include "tilekit/graph/graph.h"

namespace tilekit {

struct LlamaConfig {
  size_t dim = 0, hidden = 0, layers = 0, heads = 0, kv_heads = 0, vocab = 0;
  size_t max_seq_len = 0;  // positions the RoPE table and each sequence's cache cover
  float norm_eps = 1e-5f;
  // head_dim is dim / heads; theta, scaling and pairing (kInterleaved: Meta's
  // and llama2.c's checkpoints; kHalfSplit: HF's) are the model's.
  RopeConfig rope;
  bool tied_embeddings = true;  // classifier = embedding table
  size_t head_dim() const { return heads ? dim / heads : 0; }
};

// The linears of a layer as stored other than fp32 (a checkpoint's bf16
// tensors, GGUF Q8_0 / Q4_0 blocks packed as the file stores them): a source
// whose data is set is packed instead of the float pointer of the same name,
// which may then be null. Each must be the [out][in] shape the float one has.
struct LlamaLinearSources {
  WeightSource wq, wk, wv, wo, w1, w2, w3;
};

// Weights in PyTorch's Linear layout ([out][in]); the model packs what it
// multiplies and keeps what it reads per step (the embedding table: keep it
// alive; norm weights are copied).
struct LlamaLayerWeights {
  const float* attn_norm = nullptr;  // [dim]
  const float* wq = nullptr;         // [heads · head_dim][dim]
  const float* wk = nullptr;         // [kv_heads · head_dim][dim]
  const float* wv = nullptr;         // [kv_heads · head_dim][dim]
  const float* wo = nullptr;         // [dim][heads · head_dim]
  const float* ffn_norm = nullptr;   // [dim]
  const float* w1 = nullptr;         // gate [hidden][dim]
  const float* w2 = nullptr;         // down [dim][hidden]
  const float* w3 = nullptr;         // up [hidden][dim]
  LlamaLinearSources sources;        // optional, per linear (loaders/)
};

struct LlamaWeights {
  const float* embedding = nullptr;  // [vocab][dim]
  std::vector<LlamaLayerWeights> layers;
  const float* final_norm = nullptr;  // [dim]
  const float* classifier = nullptr;  // [vocab][dim]; ignored when tied
  // Optional: the classifier as stored other than fp32 ([vocab][dim], tied or
  // not: a GGUF file's quantized token table), packed instead when set.
  WeightSource classifier_source;
};

// A linear's source: `given` when set (LlamaLinearSources), else the fp32
// [n][k] weights at w.
inline WeightSource llama_linear(const WeightSource& given, const float* w, size_t n, size_t k) {
  return given.data ? given : weights_nk(w, n, k);
}

struct LlamaOptions {
  size_t max_tokens = 1;     // the largest step (prefill chunk, or decode batch)
  size_t max_sequences = 1;  // sequences in one step, and sequences the cache holds
  // Every linear's weights, the classifier's included (the embedding lookup
  // reads the fp32 table): kF32, kBf16, or kInt8 / kInt4 quantized at build
  // with one scale per output column and weight_group K values
  // (GraphConfig::weight_group: 32, 64, 128, or 0 for all of K with kInt8).
  WeightType weights = WeightType::kF32;
  size_t weight_group = 32;
  KvDtype kv_dtype = KvDtype::kF32;
  size_t block_tokens = 16;
  bool all_logits = false;  // logits for every token (else for each sequence's last)
  Executor* pack_executor = nullptr;
};

// Refuses configs that do not fit, with the reason in last_error().
inline Status check_llama_config(const LlamaConfig& c) {
  if (!c.dim || !c.hidden || !c.layers || !c.heads || !c.kv_heads || !c.vocab || !c.max_seq_len) {
    return fail(Status::kInvalidArgument, "llama: dim, hidden, layers, heads, kv_heads, vocab and max_seq_len must be > 0");
  }
  if (c.dim % c.heads) {
    return fail(Status::kInvalidArgument, "llama: %zu heads do not divide dim %zu", c.heads, c.dim);
  }
  if (c.heads % c.kv_heads) {
    return fail(Status::kInvalidArgument, "llama: %zu kv heads do not divide %zu heads", c.kv_heads, c.heads);
  }
  if (c.head_dim() % 2) return fail(Status::kInvalidArgument, "llama: head_dim %zu is odd (RoPE pairs)", c.head_dim());
  if (c.vocab > static_cast<size_t>(INT32_MAX)) return fail(Status::kInvalidArgument, "llama: vocab too large");
  if (!(c.norm_eps >= 0.f)) return fail(Status::kInvalidArgument, "llama: norm_eps must be >= 0");
  return Status::kOk;
}

// One sequence's blocks for LlamaModel::forward: a KvSequenceState with no
// sliding window (its capacity reserved up front, so steps allocate nothing),
// whose steps carry the blocks' generations. `cache` is always the one init
// was given.
class KvSlot {
 public:
  Status init(KvCache& cache, size_t max_tokens) { return state_.init(cache, max_tokens); }
  // Blocks for `tokens` more tokens after length().
  Status grow(KvCache& /*cache*/, size_t tokens) { return state_.reserve(tokens); }
  void release(KvCache& /*cache*/) { state_.release(); }
  // This sequence's part of a step of `tokens` new tokens (after grow).
  SequenceStep step(size_t tokens) const {
    const KvSequence s = state_.step(0, tokens);
    return SequenceStep{s.blocks, s.num_blocks, state_.length(), tokens, s.generations};
  }
  // After the step ran: its tokens are part of the sequence.
  Status advance(size_t tokens) { return state_.advance(tokens); }
  size_t length() const { return state_.length(); }

 private:
  KvSequenceState state_;
};

// One decoder layer on the residual stream x (returns the new stream): the
// graph LlamaModel builds per layer, for engines and benchmarks that compose
// layers themselves. The rope table must outlive the graph.
inline TensorId add_llama_layer(Graph& g, const LlamaConfig& c, const LlamaLayerWeights& lw, size_t layer,
                                const RopeTable& rope, TensorId x) {
  const size_t qd = c.heads * c.head_dim(), kvd = c.kv_heads * c.head_dim();
  const LlamaLinearSources& s = lw.sources;
  TensorId h = g.rms_norm(x, lw.attn_norm, c.norm_eps);
  const TensorId q = g.linear(h, llama_linear(s.wq, lw.wq, qd, c.dim));
  const TensorId k = g.linear(h, llama_linear(s.wk, lw.wk, kvd, c.dim));
  const TensorId v = g.linear(h, llama_linear(s.wv, lw.wv, kvd, c.dim));
  g.rope(q, k, &rope);
  g.kv_write(k, v, layer);
  const TensorId att = g.attention(q, c.heads, layer);
  x = g.add(g.linear(att, llama_linear(s.wo, lw.wo, c.dim, qd)), x);
  h = g.rms_norm(x, lw.ffn_norm, c.norm_eps);
  const TensorId ff =
      g.gate_up_swiglu(h, llama_linear(s.w1, lw.w1, c.hidden, c.dim), llama_linear(s.w3, lw.w3, c.hidden, c.dim));
  return g.add(g.linear(ff, llama_linear(s.w2, lw.w2, c.dim, c.hidden)), x);
}

class LlamaModel {
 public:
  Status build(const LlamaConfig& config, const LlamaWeights& weights, const LlamaOptions& options);

  // Runs one step; logits() then holds a row per sequence (or per token).
  // profile: the step's time per kind of node, added to it (Graph::run).
  Status forward(const Step& step, Executor* executor = nullptr, StepProfile* profile = nullptr) {
    return graph_.run(step, executor, profile);
  }
  MatrixView<const float> logits() const { return graph_.output(logits_); }

  // Convenience for one sequence: grows its cache, runs `count` tokens, advances it.
  Status forward(KvSlot& slot, const int32_t* tokens, size_t count, Executor* executor = nullptr) {
    Status st = slot.grow(cache_, count);
    if (st != Status::kOk) return st;
    const SequenceStep s = slot.step(count);
    st = forward(Step{tokens, &s, 1}, executor);
    return st == Status::kOk ? slot.advance(count) : st;
  }

  const LlamaConfig& config() const { return config_; }
  KvCache& cache() { return cache_; }
  const Graph& graph() const { return graph_; }

 private:
  LlamaConfig config_;
  Graph graph_;
  KvCache cache_;
  RopeTable rope_;
  TensorId logits_ = kNoTensor;
};

inline Status LlamaModel::build(const LlamaConfig& c, const LlamaWeights& w, const LlamaOptions& o) {
  Status st = check_llama_config(c);
  if (st != Status::kOk) return st;
  if (w.layers.size() != c.layers) {
    return fail(Status::kShapeMismatch, "llama: %zu layers of weights for %zu layers", w.layers.size(), c.layers);
  }
  if (!w.embedding || !w.final_norm || (!c.tied_embeddings && !w.classifier && !w.classifier_source.data)) {
    return fail(Status::kNullPointer, "llama: embedding, final norm or classifier weights are null");
  }
  const size_t qd = c.heads * c.head_dim(), kvd = c.kv_heads * c.head_dim();
  // A linear: its fp32 weights, or a source of its [n][k] shape.
  const auto check_linear = [](const WeightSource& s, const float* f, size_t n, size_t k, const char* name) {
    if (!s.data) return f ? Status::kOk : fail(Status::kNullPointer, "llama: %s weights are null", name);
    if (s.layout != SourceLayout::kNK || s.n != n || s.k != k) {
      return fail(Status::kShapeMismatch, "llama: %s source is %s [%zu][%zu], the config's is [%zu][%zu]", name,
                  s.layout == SourceLayout::kNK ? "[out][in]" : "[in][out]", s.layout == SourceLayout::kNK ? s.n : s.k,
                  s.layout == SourceLayout::kNK ? s.k : s.n, n, k);
    }
    return Status::kOk;
  };
  if (w.classifier_source.data && (st = check_linear(w.classifier_source, nullptr, c.vocab, c.dim, "the classifier's")) != Status::kOk) {
    return st;
  }
  for (const LlamaLayerWeights& l : w.layers) {
    const LlamaLinearSources& s = l.sources;
    if (!l.attn_norm || !l.ffn_norm) return fail(Status::kNullPointer, "llama: a layer's norm weight is null");
    if ((st = check_linear(s.wq, l.wq, qd, c.dim, "wq")) != Status::kOk ||
        (st = check_linear(s.wk, l.wk, kvd, c.dim, "wk")) != Status::kOk ||
        (st = check_linear(s.wv, l.wv, kvd, c.dim, "wv")) != Status::kOk ||
        (st = check_linear(s.wo, l.wo, c.dim, qd, "wo")) != Status::kOk ||
        (st = check_linear(s.w1, l.w1, c.hidden, c.dim, "w1")) != Status::kOk ||
        (st = check_linear(s.w2, l.w2, c.dim, c.hidden, "w2")) != Status::kOk ||
        (st = check_linear(s.w3, l.w3, c.hidden, c.dim, "w3")) != Status::kOk) {
      return st;
    }
  }
  if (o.max_tokens == 0 || o.max_sequences == 0 || o.max_sequences > o.max_tokens) {
    return fail(Status::kInvalidArgument, "llama: max_tokens %zu, max_sequences %zu", o.max_tokens, o.max_sequences);
  }
  config_ = c;
  const size_t d = c.head_dim();
  RopeConfig rc = c.rope;
  rc.head_dim = d;
  if ((st = make_rope_table(rc, c.max_seq_len, &rope_)) != Status::kOk) return st;

  KvCacheConfig kc;
  kc.layers = c.layers;
  kc.kv_heads = c.kv_heads;
  kc.head_dim = d;
  kc.block_tokens = o.block_tokens;
  kc.num_blocks = o.max_sequences * ((c.max_seq_len + o.block_tokens - 1) / o.block_tokens);
  kc.dtype = o.kv_dtype;
  if ((st = cache_.init(kc)) != Status::kOk) return st;

  Graph& g = graph_;
  TensorId x = g.embedding(w.embedding, c.vocab, c.dim);
  for (size_t l = 0; l < c.layers; ++l) x = add_llama_layer(g, c, w.layers[l], l, rope_, x);
  if (!o.all_logits) x = g.last_tokens(x);
  const TensorId h = g.rms_norm(x, w.final_norm, c.norm_eps);
  logits_ = g.linear(h, llama_linear(w.classifier_source, c.tied_embeddings ? w.embedding : w.classifier, c.vocab, c.dim));
  g.mark_output(logits_);

  GraphConfig gc;
  gc.max_tokens = o.max_tokens;
  gc.max_sequences = o.max_sequences;
  gc.weights = o.weights;
  gc.weight_group = o.weight_group;
  gc.kv_cache = &cache_;
  gc.pack_executor = o.pack_executor;
  return g.build(gc);
}

}  // namespace tilekit

#endif  // TILEKIT_GRAPH_LLAMA_H_

// The Llama family as a Graph, and the decoders that differ from it by a few
// switches (Mistral, Qwen2, Qwen3, Gemma 2, Gemma 3): a model description
// (shapes, norm eps, RoPE, the family's features), its weights as PyTorch /
// llama2.c store them ([out][in] row-major), and the graph that runs it:
//
//   x = embedding[ids]                       (· embedding_scale: Gemma, √dim)
//   per layer:
//     h = rmsnorm(x) · attn_norm             (· (1 + w): Gemma)
//     q, k, v = h·Wqᵀ, h·Wkᵀ, h·Wvᵀ        one GEMM over three packed segments (+ bias: Qwen2)
//     (q, k = rmsnorm per head · q_norm, k_norm: Qwen3, Gemma 3)
//     rope(q, k); cache[layer] ← k, v       (a local layer's own theta: Gemma 3)
//     o = attention(q, cache)                (window: Mistral, Gemma's local layers; softcap: Gemma 2;
//                                             scale 1/√query_pre_attn_scalar: Gemma)
//     x = o · Woᵀ + x                       residual added in the GEMM's store, over x
//       (sandwich norms, Gemma: x = x + rmsnorm(o · Woᵀ) · attn_out_norm, fused with the next norm)
//     h = rmsnorm(x) · ffn_norm
//     x = (silu(h·W1ᵀ) · h·W3ᵀ)·W2ᵀ + x    gate/up as one SwiGLU GEMM (GeGLU: Gemma); residual in the store
//       (sandwich norms: x = x + rmsnorm(f · W2ᵀ) · ffn_out_norm, a row add)
//   logits = (rmsnorm(x) · final_norm) · Wclsᵀ   for each sequence's last token (or every token)
//     (Gemma 2: logits = c · tanh(logits / c))
//
// LlamaModel owns the graph, the packed weights, the RoPE tables and a paged KV
// cache sized for max_sequences sequences of max_seq_len tokens; KvSlot holds
// one sequence's blocks (a KvSequenceState) with its capacity reserved, so
// steps allocate nothing. Sliding windows bound what attention reads; the
// slot keeps every position's block (one table for all layers, as a Step
// carries), so a windowed model's cache is sized as a full one.
#ifndef TILEKIT_GRAPH_LLAMA_H_
#define TILEKIT_GRAPH_LLAMA_H_

#include <cmath>
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
  // head_dim is dim / heads (or attn_head_dim); theta, scaling and pairing
  // (kInterleaved: Meta's and llama2.c's checkpoints; kHalfSplit: HF's) are
  // the model's.
  RopeConfig rope;
  bool tied_embeddings = true;  // classifier = embedding table

  // ---- The families beyond Llama: every default is Llama's. HF config.json
  // names in brackets.
  size_t attn_head_dim = 0;          // 0: dim / heads [head_dim: Gemma, Qwen3]
  bool qkv_bias = false;             // bias on q, k and v (Qwen2)
  bool qk_norm = false;              // rmsnorm of each q and k head before RoPE (Qwen3, Gemma 3)
  bool norm_weight_offset = false;   // every norm scales by (1 + w) (Gemma)
  bool sandwich_norms = false;       // norms of the attention's and the MLP's outputs before
                                     // each residual add (Gemma 2, 3)
  Activation mlp = Activation::kSwiGlu;  // kGeGlu: Gemma [hidden_activation gelu_pytorch_tanh]
  float embedding_scale = 0.f;       // 0: none; Gemma: √dim as fp32 [normalizer]
  float attn_softcap = 0.f;          // 0: none [attn_logit_softcapping: Gemma 2, 50]
  float final_softcap = 0.f;         // 0: none [final_logit_softcapping: Gemma 2, 30]
  float query_pre_attn_scalar = 0.f;  // 0: head_dim; the attention scale is 1/√ of it (Gemma)
  size_t sliding_window = 0;          // 0: none [sliding_window]
  // Which layers have the window: 0, every layer (Mistral); p > 0, every
  // layer but those with (layer + 1) % p == 0, HF's rule (Gemma 2: 2, every
  // other layer; Gemma 3: 6, five local to one global) [sliding_window_pattern].
  size_t sliding_window_pattern = 0;
  double rope_local_theta = 0.0;     // the windowed layers' RoPE theta, 0: rope.theta [rope_local_base_freq: Gemma 3]

  size_t head_dim() const { return attn_head_dim ? attn_head_dim : heads ? dim / heads : 0; }
  // The sliding window of `layer`'s attention (0: none).
  size_t window_of(size_t layer) const {
    if (!sliding_window) return 0;
    return sliding_window_pattern && (layer + 1) % sliding_window_pattern == 0 ? 0 : sliding_window;
  }
};

// The linears of a layer as stored other than fp32 (a checkpoint's bf16
// tensors, GGUF Q8_0 / Q4_0 blocks packed as the file stores them): a source
// whose data is set is packed instead of the float pointer of the same name,
// which may then be null. Each must be the [out][in] shape the float one has.
struct LlamaLinearSources {
  WeightSource wq, wk, wv, wo, w1, w2, w3;
};

// The switches of each family (the numbers, eps, theta, windows, softcaps,
// query_pre_attn_scalar, come from the checkpoint's config). Gemma 2 and 3
// also set embedding_scale = √dim here (dim set first).
enum class DecoderFamily { kLlama, kMistral, kQwen2, kQwen3, kGemma2, kGemma3 };

inline void set_family(LlamaConfig* c, DecoderFamily f) {
  const bool gemma = f == DecoderFamily::kGemma2 || f == DecoderFamily::kGemma3;
  c->qkv_bias = f == DecoderFamily::kQwen2;
  c->qk_norm = f == DecoderFamily::kQwen3 || f == DecoderFamily::kGemma3;
  c->norm_weight_offset = gemma;
  c->sandwich_norms = gemma;
  c->mlp = gemma ? Activation::kGeGlu : Activation::kSwiGlu;
  c->embedding_scale = gemma ? std::sqrt(static_cast<float>(c->dim)) : 0.f;
  if (f != DecoderFamily::kLlama) c->rope.pairing = RopePairing::kHalfSplit;  // HF's rotate_half
}

// Weights in PyTorch's Linear layout ([out][in]); the model packs what it
// multiplies and keeps what it reads per step (the embedding table: keep it
// alive; norm weights are copied).
struct LlamaLayerWeights {
  const float* attn_norm = nullptr;  // [dim] [input_layernorm]
  const float* wq = nullptr;         // [heads · head_dim][dim]
  const float* wk = nullptr;         // [kv_heads · head_dim][dim]
  const float* wv = nullptr;         // [kv_heads · head_dim][dim]
  const float* wo = nullptr;         // [dim][heads · head_dim]
  const float* ffn_norm = nullptr;   // [dim] (Llama's post_attention_layernorm; Gemma's pre_feedforward_layernorm)
  const float* w1 = nullptr;         // gate [hidden][dim]
  const float* w2 = nullptr;         // down [dim][hidden]
  const float* w3 = nullptr;         // up [hidden][dim]
  LlamaLinearSources sources;        // optional, per linear (loaders/)
  // The families' extra weights, read only when the config asks for them.
  const float* bq = nullptr;             // qkv_bias: [heads · head_dim]
  const float* bk = nullptr;             // qkv_bias: [kv_heads · head_dim]
  const float* bv = nullptr;             // qkv_bias: [kv_heads · head_dim]
  const float* q_norm = nullptr;         // qk_norm: [head_dim]
  const float* k_norm = nullptr;         // qk_norm: [head_dim]
  const float* attn_out_norm = nullptr;  // sandwich_norms: [dim] (Gemma's post_attention_layernorm)
  const float* ffn_out_norm = nullptr;   // sandwich_norms: [dim] [post_feedforward_layernorm]
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
  if (!c.attn_head_dim && c.dim % c.heads) {
    return fail(Status::kInvalidArgument, "llama: %zu heads do not divide dim %zu (set attn_head_dim)", c.heads, c.dim);
  }
  if (c.mlp != Activation::kSwiGlu && c.mlp != Activation::kGeGlu) {
    return fail(Status::kInvalidArgument, "llama: the MLP is a gate/up pair, kSwiGlu or kGeGlu, not %s",
                activation_name(c.mlp));
  }
  const float scalars[] = {c.embedding_scale, c.attn_softcap, c.final_softcap, c.query_pre_attn_scalar};
  for (float v : scalars) {
    if (!(v >= 0.f) || !std::isfinite(v)) {
      return fail(Status::kInvalidArgument,
                  "llama: embedding_scale, attn_softcap, final_softcap and query_pre_attn_scalar must be finite and "
                  ">= 0 (0: off), got %g", v);
    }
  }
  if (c.sliding_window_pattern && !c.sliding_window) {
    return fail(Status::kInvalidArgument, "llama: sliding_window_pattern %zu without a sliding_window",
                c.sliding_window_pattern);
  }
  if (!(c.rope_local_theta >= 0.0) || (c.rope_local_theta > 0.0 && !c.sliding_window)) {
    return fail(Status::kInvalidArgument, "llama: rope_local_theta %g needs windowed (local) layers", c.rope_local_theta);
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

// The families' layer weights a config reads that are null (the reason in
// last_error()); LlamaModel::build checks the linears and the two norms.
inline Status check_llama_layer_weights(const LlamaConfig& c, const LlamaLayerWeights& l) {
  if (c.qkv_bias && (!l.bq || !l.bk || !l.bv)) return fail(Status::kNullPointer, "llama: qkv_bias without bq, bk, bv");
  if (c.qk_norm && (!l.q_norm || !l.k_norm)) return fail(Status::kNullPointer, "llama: qk_norm without q_norm, k_norm");
  if (c.sandwich_norms && (!l.attn_out_norm || !l.ffn_out_norm)) {
    return fail(Status::kNullPointer, "llama: sandwich_norms without attn_out_norm, ffn_out_norm");
  }
  return Status::kOk;
}

// One decoder layer on the residual stream x (returns the new stream): the
// graph LlamaModel builds per layer, for engines and benchmarks that compose
// layers themselves. `local_rope` is the windowed layers' table when the
// config has rope_local_theta (else `rope` serves every layer). The tables
// must outlive the graph.
inline TensorId add_decoder_layer(Graph& g, const LlamaConfig& c, const LlamaLayerWeights& lw, size_t layer,
                                  const RopeTable& rope, const RopeTable& local_rope, TensorId x) {
  const size_t hd = c.head_dim(), qd = c.heads * hd, kvd = c.kv_heads * hd;
  NormOptions no;
  no.weight_offset = c.norm_weight_offset;
  const auto bias = [&](const float* b) {
    LinearOptions lo;
    lo.bias = c.qkv_bias ? b : nullptr;
    return lo;
  };
  const LlamaLinearSources& s = lw.sources;
  TensorId h = g.rms_norm(x, lw.attn_norm, c.norm_eps, no);
  TensorId q = g.linear(h, llama_linear(s.wq, lw.wq, qd, c.dim), bias(lw.bq));
  TensorId k = g.linear(h, llama_linear(s.wk, lw.wk, kvd, c.dim), bias(lw.bk));
  const TensorId v = g.linear(h, llama_linear(s.wv, lw.wv, kvd, c.dim), bias(lw.bv));
  if (c.qk_norm) {
    NormOptions qn = no, kn = no;
    qn.heads = c.heads;
    kn.heads = c.kv_heads;
    q = g.rms_norm(q, lw.q_norm, c.norm_eps, qn);
    k = g.rms_norm(k, lw.k_norm, c.norm_eps, kn);
  }
  const size_t window = c.window_of(layer);
  g.rope(q, k, window && c.rope_local_theta > 0 ? &local_rope : &rope);
  g.kv_write(k, v, layer);
  AttentionNodeOptions ao;
  ao.scale = c.query_pre_attn_scalar > 0 ? 1.f / std::sqrt(c.query_pre_attn_scalar) : 0.f;
  ao.window = window;
  ao.softcap = c.attn_softcap;
  const TensorId att = g.attention(q, c.heads, layer, ao);
  const TensorId o = g.linear(att, llama_linear(s.wo, lw.wo, c.dim, qd));
  if (c.sandwich_norms) {
    // x = x + norm(o), and the MLP's norm of that sum, in one pass.
    h = g.add_rms_norm(g.rms_norm(o, lw.attn_out_norm, c.norm_eps, no), &x, lw.ffn_norm, c.norm_eps, no);
  } else {
    x = g.add(o, x);
    h = g.rms_norm(x, lw.ffn_norm, c.norm_eps, no);
  }
  const WeightSource gate = llama_linear(s.w1, lw.w1, c.hidden, c.dim), up = llama_linear(s.w3, lw.w3, c.hidden, c.dim);
  const TensorId ff = c.mlp == Activation::kGeGlu ? g.gate_up_geglu(h, gate, up) : g.gate_up_swiglu(h, gate, up);
  const TensorId down = g.linear(ff, llama_linear(s.w2, lw.w2, c.dim, c.hidden));
  if (c.sandwich_norms) return g.add(x, g.rms_norm(down, lw.ffn_out_norm, c.norm_eps, no));
  return g.add(down, x);
}

// A layer of a model with one RoPE table (every Llama): add_decoder_layer.
inline TensorId add_llama_layer(Graph& g, const LlamaConfig& c, const LlamaLayerWeights& lw, size_t layer,
                                const RopeTable& rope, TensorId x) {
  return add_decoder_layer(g, c, lw, layer, rope, rope, x);
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
  RopeTable rope_, local_rope_;  // local_rope_: the windowed layers' (rope_local_theta), else empty
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
    if ((st = check_llama_layer_weights(c, l)) != Status::kOk) return st;
  }
  if (o.max_tokens == 0 || o.max_sequences == 0 || o.max_sequences > o.max_tokens) {
    return fail(Status::kInvalidArgument, "llama: max_tokens %zu, max_sequences %zu", o.max_tokens, o.max_sequences);
  }
  config_ = c;
  const size_t d = c.head_dim();
  RopeConfig rc = c.rope;
  rc.head_dim = d;
  if ((st = make_rope_table(rc, c.max_seq_len, &rope_)) != Status::kOk) return st;
  if (c.rope_local_theta > 0) {
    // Gemma 3's local layers: their own theta, no scaling (HF's rotary_emb_local).
    RopeConfig local;
    local.head_dim = d;
    local.rotary_dim = rc.rotary_dim;
    local.pairing = rc.pairing;
    local.theta = c.rope_local_theta;
    if ((st = make_rope_table(local, c.max_seq_len, &local_rope_)) != Status::kOk) return st;
  }

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
  if (c.embedding_scale > 0) x = g.scale(x, c.embedding_scale);
  const RopeTable& local = c.rope_local_theta > 0 ? local_rope_ : rope_;
  for (size_t l = 0; l < c.layers; ++l) x = add_decoder_layer(g, c, w.layers[l], l, rope_, local, x);
  if (!o.all_logits) x = g.last_tokens(x);
  NormOptions no;
  no.weight_offset = c.norm_weight_offset;
  const TensorId h = g.rms_norm(x, w.final_norm, c.norm_eps, no);
  logits_ = g.linear(h, llama_linear(w.classifier_source, c.tied_embeddings ? w.embedding : w.classifier, c.vocab, c.dim));
  if (c.final_softcap > 0) logits_ = g.softcap(logits_, c.final_softcap);
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

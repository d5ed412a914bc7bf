// What a model file's architecture means for tilekit's model description:
// one row per (format, architecture) with its tensor names, its RoPE pairing,
// its decoder family (graph/llama.h's set_family switches) and the reader of
// its hyper-parameters into a LlamaConfig. Files of architectures with no row
// are refused with their name.
//
//   GGUF general.architecture   HF architectures[0]    family
//   llama                       LlamaForCausalLM       Llama
//   (llama: llama.cpp converts  MistralForCausalLM     Mistral (a sliding window on every layer)
//    Mistral as llama)
//   qwen2                       Qwen2ForCausalLM       Qwen2 (q, k, v biases)
//   qwen3                       Qwen3ForCausalLM       Qwen3 (q / k norms, head_dim apart)
//   gemma2                      Gemma2ForCausalLM      Gemma 2 (softcaps, every other layer windowed)
//   gemma3                      Gemma3ForCausalLM      Gemma 3 text (q / k norms, 5 local : 1 global)
//
// RoPE pairing is the file's, not the model's: Hugging Face checkpoints rotate
// dimension i with i + head_dim/2 (kHalfSplit); llama.cpp's convert script
// permutes the rows of Q and K of `llama` files only, so that they rotate i
// with i + 1 (kInterleaved, ggml's "normal" rope), as Meta's original
// checkpoints do; its qwen2 / qwen3 / gemma2 / gemma3 files keep HF's rows
// and rotate half-split (ggml's NEOX rope).
//
// Gemma's norms scale by (1 + w): HF stores w, llama.cpp's convert stores
// 1 + w (rounded to the file's type), so a GGUF Gemma's norms are plain
// scales (norm_weight_offset off) and an HF Gemma's are offsets.
#ifndef TILEKIT_LOADERS_ARCHITECTURES_H_
#define TILEKIT_LOADERS_ARCHITECTURES_H_

#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>

#include "tilekit/graph/llama.h"
#include "tilekit/loaders/gguf.h"
#include "tilekit/loaders/json.h"

namespace tilekit {

// Tensor names; per-layer ones hold one %zu for the layer index.
struct LlamaTensorNames {
  const char* embedding;
  const char* final_norm;
  const char* classifier;  // absent from the file and not required: tied to the embedding
  const char* attn_norm;
  const char* wq;
  const char* wk;
  const char* wv;
  const char* wo;
  const char* ffn_norm;
  const char* w1;  // gate
  const char* w2;  // down
  const char* w3;  // up
  // The families' tensors, read when the config switches them on (null: the
  // architecture has none).
  const char* bq;
  const char* bk;
  const char* bv;
  const char* q_norm;
  const char* k_norm;
  const char* attn_out_norm;  // sandwich norm after attention
  const char* ffn_out_norm;   // sandwich norm after the MLP
};

constexpr LlamaTensorNames kGgufLlamaNames = {
    "token_embd.weight",        "output_norm.weight",       "output.weight",
    "blk.%zu.attn_norm.weight", "blk.%zu.attn_q.weight",    "blk.%zu.attn_k.weight",
    "blk.%zu.attn_v.weight",    "blk.%zu.attn_output.weight", "blk.%zu.ffn_norm.weight",
    "blk.%zu.ffn_gate.weight",  "blk.%zu.ffn_down.weight",  "blk.%zu.ffn_up.weight",
    "blk.%zu.attn_q.bias",      "blk.%zu.attn_k.bias",      "blk.%zu.attn_v.bias",
    "blk.%zu.attn_q_norm.weight", "blk.%zu.attn_k_norm.weight", "blk.%zu.post_attention_norm.weight",
    "blk.%zu.post_ffw_norm.weight",
};
constexpr LlamaTensorNames kHfLlamaNames = {
    "model.embed_tokens.weight",
    "model.norm.weight",
    "lm_head.weight",
    "model.layers.%zu.input_layernorm.weight",
    "model.layers.%zu.self_attn.q_proj.weight",
    "model.layers.%zu.self_attn.k_proj.weight",
    "model.layers.%zu.self_attn.v_proj.weight",
    "model.layers.%zu.self_attn.o_proj.weight",
    "model.layers.%zu.post_attention_layernorm.weight",
    "model.layers.%zu.mlp.gate_proj.weight",
    "model.layers.%zu.mlp.down_proj.weight",
    "model.layers.%zu.mlp.up_proj.weight",
    "model.layers.%zu.self_attn.q_proj.bias",
    "model.layers.%zu.self_attn.k_proj.bias",
    "model.layers.%zu.self_attn.v_proj.bias",
    "model.layers.%zu.self_attn.q_norm.weight",
    "model.layers.%zu.self_attn.k_norm.weight",
    nullptr,
    nullptr,
};
// Gemma 2 / 3: post_attention_layernorm is the sandwich norm after attention
// and pre_feedforward_layernorm the MLP's input norm (Llama's
// post_attention_layernorm).
constexpr LlamaTensorNames kHfGemmaNames = {
    "model.embed_tokens.weight",
    "model.norm.weight",
    "lm_head.weight",
    "model.layers.%zu.input_layernorm.weight",
    "model.layers.%zu.self_attn.q_proj.weight",
    "model.layers.%zu.self_attn.k_proj.weight",
    "model.layers.%zu.self_attn.v_proj.weight",
    "model.layers.%zu.self_attn.o_proj.weight",
    "model.layers.%zu.pre_feedforward_layernorm.weight",
    "model.layers.%zu.mlp.gate_proj.weight",
    "model.layers.%zu.mlp.down_proj.weight",
    "model.layers.%zu.mlp.up_proj.weight",
    nullptr,
    nullptr,
    nullptr,
    "model.layers.%zu.self_attn.q_norm.weight",
    "model.layers.%zu.self_attn.k_norm.weight",
    "model.layers.%zu.post_attention_layernorm.weight",
    "model.layers.%zu.post_feedforward_layernorm.weight",
};

inline std::string layer_tensor_name(const char* format, size_t layer) {
  char buf[128];
  std::snprintf(buf, sizeof(buf), format, layer);
  return buf;
}

enum class ModelFormat { kGguf, kSafetensors };

struct Architecture {
  ModelFormat format;
  const char* name;  // GGUF general.architecture, or the HF config's architectures[0]
  const LlamaTensorNames* names;
  RopePairing pairing;
  DecoderFamily family;
};

constexpr Architecture kArchitectures[] = {
    {ModelFormat::kGguf, "llama", &kGgufLlamaNames, RopePairing::kInterleaved, DecoderFamily::kLlama},
    {ModelFormat::kGguf, "qwen2", &kGgufLlamaNames, RopePairing::kHalfSplit, DecoderFamily::kQwen2},
    {ModelFormat::kGguf, "qwen3", &kGgufLlamaNames, RopePairing::kHalfSplit, DecoderFamily::kQwen3},
    {ModelFormat::kGguf, "gemma2", &kGgufLlamaNames, RopePairing::kHalfSplit, DecoderFamily::kGemma2},
    {ModelFormat::kGguf, "gemma3", &kGgufLlamaNames, RopePairing::kHalfSplit, DecoderFamily::kGemma3},
    {ModelFormat::kSafetensors, "LlamaForCausalLM", &kHfLlamaNames, RopePairing::kHalfSplit, DecoderFamily::kLlama},
    {ModelFormat::kSafetensors, "MistralForCausalLM", &kHfLlamaNames, RopePairing::kHalfSplit, DecoderFamily::kMistral},
    {ModelFormat::kSafetensors, "Qwen2ForCausalLM", &kHfLlamaNames, RopePairing::kHalfSplit, DecoderFamily::kQwen2},
    {ModelFormat::kSafetensors, "Qwen3ForCausalLM", &kHfLlamaNames, RopePairing::kHalfSplit, DecoderFamily::kQwen3},
    {ModelFormat::kSafetensors, "Gemma2ForCausalLM", &kHfGemmaNames, RopePairing::kHalfSplit, DecoderFamily::kGemma2},
    {ModelFormat::kSafetensors, "Gemma3ForCausalLM", &kHfGemmaNames, RopePairing::kHalfSplit, DecoderFamily::kGemma3},
};

inline bool is_gemma(DecoderFamily f) { return f == DecoderFamily::kGemma2 || f == DecoderFamily::kGemma3; }

inline const Architecture* find_architecture(ModelFormat format, const std::string& name) {
  for (const Architecture& a : kArchitectures) {
    if (a.format == format && name == a.name) return &a;
  }
  return nullptr;
}

// The positions a loaded model serves: the file's, capped by the caller's
// (0: no cap). A KV cache and a RoPE table are sized by it, so a 128k-context
// file need not cost 128k positions.
inline size_t capped_positions(size_t file, size_t cap) { return cap && cap < file ? cap : file; }

namespace arch_detail {

inline bool gguf_count(const GgufFile& f, const std::string& key, size_t* out, bool required, Status* st) {
  const GgufValue* v = f.find(key);
  if (!v) {
    if (required) *st = fail(Status::kInvalidArgument, "gguf: metadata %s is missing", key.c_str());
    return false;
  }
  if (!v->is_integer() || v->i <= 0 || v->u > (1ull << 40)) {
    *st = fail(Status::kInvalidArgument, "gguf: metadata %s must be a count in [1, 2^40]", key.c_str());
    return false;
  }
  *out = static_cast<size_t>(v->u);
  return true;
}

inline bool gguf_real(const GgufFile& f, const std::string& key, double* out, Status* st) {
  const GgufValue* v = f.find(key);
  if (!v) return false;
  if (!v->is_float() && !v->is_integer()) {
    *st = fail(Status::kInvalidArgument, "gguf: metadata %s must be a number", key.c_str());
    return false;
  }
  *out = v->is_float() ? v->f : static_cast<double>(v->i);
  return true;
}

// What a GGUF file of a family carries beyond Llama's keys, as llama.cpp
// reads it (src/llama-model.cpp): head_dim as attention.key_length; Gemma's
// window and softcaps as keys, its window pattern (2, 6) and Gemma 3's local
// theta (10000) fixed by the architecture, and its attention scale
// 1/√(dim / heads) for the 27B models (46 and 62 layers), 1/√head_dim
// otherwise (GGUF stores no query_pre_attn_scalar).
inline Status gguf_family(const GgufFile& f, const std::string& a, DecoderFamily family, LlamaConfig* c) {
  Status st = Status::kOk;
  size_t key_length = 0, value_length = 0;
  if (gguf_count(f, a + "attention.key_length", &key_length, false, &st) && key_length * c->heads != c->dim) {
    c->attn_head_dim = key_length;
  }
  if (st != Status::kOk) return st;
  if (gguf_count(f, a + "attention.value_length", &value_length, false, &st) && value_length != c->head_dim()) {
    return fail(Status::kUnsupported, "gguf: value heads of %zu dimensions, keys of %zu", value_length, c->head_dim());
  }
  if (st != Status::kOk) return st;
  size_t rot = 0;
  if (gguf_count(f, a + "rope.dimension_count", &rot, false, &st) && rot != c->head_dim()) {
    return fail(Status::kUnsupported, "gguf: RoPE over %zu of %zu dimensions per head (partial rotary)", rot, c->head_dim());
  }
  if (st != Status::kOk || !is_gemma(family)) return st;
  c->norm_weight_offset = false;  // the file's norms are 1 + w (see the top of this file)
  if (!gguf_count(f, a + "attention.sliding_window", &c->sliding_window, true, &st)) return st;
  c->sliding_window_pattern = family == DecoderFamily::kGemma2 ? 2 : 6;
  if (family == DecoderFamily::kGemma3) c->rope_local_theta = 10000.0;
  double attn_cap = 0, final_cap = 0;
  const bool required = family == DecoderFamily::kGemma2;
  for (const auto& cap : {std::make_pair("attn_logit_softcapping", &attn_cap), std::make_pair("final_logit_softcapping", &final_cap)}) {
    if (!gguf_real(f, a + cap.first, cap.second, &st)) {
      if (st != Status::kOk) return st;
      if (required) return fail(Status::kInvalidArgument, "gguf: metadata %s%s is missing", a.c_str(), cap.first);
    }
    if (!(*cap.second >= 0 && *cap.second < 1e6)) {
      return fail(Status::kInvalidArgument, "gguf: %s%s %g out of range", a.c_str(), cap.first, *cap.second);
    }
  }
  c->attn_softcap = static_cast<float>(attn_cap);
  c->final_softcap = static_cast<float>(final_cap);
  const bool is_27b = c->layers == (family == DecoderFamily::kGemma2 ? 46u : 62u);
  c->query_pre_attn_scalar = static_cast<float>(is_27b ? c->dim / c->heads : c->head_dim());
  return Status::kOk;
}

}  // namespace arch_detail

// A GGUF file's hyper-parameters (its architecture's row found by the caller),
// vocab from the embedding's rows. Refused: mixtures of experts (llama.cpp
// files Mixtral as "llama" with expert_count), partial rotary, RoPE scalings
// other than none and linear (and per-frequency factors, a rope_freqs.weight
// tensor: load_gguf_memory refuses those).
inline Status gguf_llama_config(const GgufFile& f, const Architecture& arch, size_t vocab, size_t max_seq_len,
                                LlamaConfig* out) {
  const std::string a = f.find("general.architecture")->string() + ".";
  LlamaConfig c;
  Status st = Status::kOk;
  if (!arch_detail::gguf_count(f, a + "embedding_length", &c.dim, true, &st) ||
      !arch_detail::gguf_count(f, a + "block_count", &c.layers, true, &st) ||
      !arch_detail::gguf_count(f, a + "feed_forward_length", &c.hidden, true, &st) ||
      !arch_detail::gguf_count(f, a + "attention.head_count", &c.heads, true, &st) ||
      !arch_detail::gguf_count(f, a + "context_length", &c.max_seq_len, true, &st)) {
    return st;
  }
  c.kv_heads = c.heads;
  if (!arch_detail::gguf_count(f, a + "attention.head_count_kv", &c.kv_heads, false, &st) && st != Status::kOk) return st;
  size_t experts = 0;
  if (arch_detail::gguf_count(f, a + "expert_count", &experts, false, &st) && experts > 0) {
    return fail(Status::kUnsupported, "gguf: a mixture of %zu experts (only dense models for now)", experts);
  }
  st = Status::kOk;
  set_family(&c, arch.family);
  double eps = 1e-5, theta = 10000.0;
  if (!arch_detail::gguf_real(f, a + "attention.layer_norm_rms_epsilon", &eps, &st)) {
    if (st != Status::kOk) return st;
    return fail(Status::kInvalidArgument, "gguf: metadata %sattention.layer_norm_rms_epsilon is missing", a.c_str());
  }
  if (!arch_detail::gguf_real(f, a + "rope.freq_base", &theta, &st) && st != Status::kOk) return st;
  if (!(eps >= 0 && eps < 1) || !(theta > 1 && theta < 1e12)) {
    return fail(Status::kInvalidArgument, "gguf: rms epsilon %g or rope.freq_base %g out of range", eps, theta);
  }
  c.norm_eps = static_cast<float>(eps);
  c.rope.theta = theta;
  c.rope.pairing = arch.pairing;
  if (const GgufValue* s = f.find(a + "rope.scaling.type")) {
    const std::string type = s->string();
    double factor = 1;
    if (type == "linear" && arch_detail::gguf_real(f, a + "rope.scaling.factor", &factor, &st) && factor >= 1 && factor < 1e6) {
      c.rope.scaling = RopeScaling::kLinear;
      c.rope.factor = factor;
    } else if (type != "none") {
      return fail(Status::kUnsupported, "gguf: rope scaling '%s' (none and linear with a factor >= 1 are read)", type.c_str());
    }
  }
  if ((st = arch_detail::gguf_family(f, a, arch.family, &c)) != Status::kOk) return st;
  size_t file_vocab = 0;
  if (arch_detail::gguf_count(f, a + "vocab_size", &file_vocab, false, &st) && file_vocab != vocab) {
    return fail(Status::kShapeMismatch, "gguf: vocab_size %zu, the embedding has %zu rows", file_vocab, vocab);
  }
  c.vocab = vocab;
  c.max_seq_len = capped_positions(c.max_seq_len, max_seq_len);
  if ((st = check_llama_config(c)) != Status::kOk) return st;
  *out = c;
  return Status::kOk;
}

namespace arch_detail {

inline bool json_count(const JsonValue& cfg, const char* key, size_t* out, bool required, Status* st) {
  const JsonValue* v = cfg.get(key);
  if (!v || v->kind == JsonValue::kNull) {
    if (required) *st = fail(Status::kInvalidArgument, "config.json: %s is missing", key);
    return false;
  }
  if (!v->as_size(out) || *out == 0 || *out > (1ull << 40)) {
    *st = fail(Status::kInvalidArgument, "config.json: %s must be a count in [1, 2^40]", key);
    return false;
  }
  return true;
}

inline bool json_real(const JsonValue& cfg, const char* key, double* out, Status* st) {
  const JsonValue* v = cfg.get(key);
  if (!v || v->kind == JsonValue::kNull) return false;
  if (v->kind != JsonValue::kNumber) {
    *st = fail(Status::kInvalidArgument, "config.json: %s must be a number", key);
    return false;
  }
  *out = v->number;
  return true;
}

}  // namespace arch_detail

// The architecture a Hugging Face config.json names (architectures[0]).
inline Status hf_architecture(const JsonValue& cfg, const Architecture** out) {
  const JsonValue* archs = cfg.get("architectures");
  if (cfg.kind != JsonValue::kObject || !archs || archs->kind != JsonValue::kArray || archs->items.size() != 1 ||
      archs->items[0].kind != JsonValue::kString) {
    return fail(Status::kInvalidArgument, "config.json: needs an object with \"architectures\": [one name]");
  }
  const Architecture* a = find_architecture(ModelFormat::kSafetensors, archs->items[0].text);
  if (!a) {
    return fail(Status::kUnsupported,
                "config.json: architecture %s is not supported (Llama, Mistral, Qwen2, Qwen3, Gemma2 and Gemma3ForCausalLM are)",
                archs->items[0].text.c_str());
  }
  *out = a;
  return Status::kOk;
}

namespace arch_detail {

inline bool json_true(const JsonValue& cfg, const char* key) {
  const JsonValue* v = cfg.get(key);
  return v && v->kind == JsonValue::kBool && v->boolean;
}

// Which layers have the window, from HF's layer_types ("sliding_attention" /
// "full_attention" per layer): the pattern p of LlamaConfig (0: all windowed)
// it follows, or a refusal when it follows none.
inline Status json_layer_types(const JsonValue& types, size_t layers, size_t* pattern) {
  if (types.kind != JsonValue::kArray || types.items.size() != layers) {
    return fail(Status::kInvalidArgument, "config.json: layer_types must list the %zu layers", layers);
  }
  size_t p = 0;
  for (size_t l = 0; l < layers; ++l) {
    const JsonValue& t = types.items[l];
    const bool full = t.kind == JsonValue::kString && t.text == "full_attention";
    if (!full && !(t.kind == JsonValue::kString && t.text == "sliding_attention")) {
      return fail(Status::kUnsupported, "config.json: layer_types[%zu] is not sliding_attention or full_attention", l);
    }
    if (full && !p) p = l + 1;
    if (full != (p && (l + 1) % p == 0)) {
      return fail(Status::kUnsupported, "config.json: layer_types is not every p-th layer full (layer %zu)", l);
    }
  }
  *pattern = p;
  return Status::kOk;
}

// The windows of a config.json: none for Llama (transformers' Llama reads no
// sliding_window), every layer's (Mistral), every other layer's (Gemma 2), all but every sliding_window_pattern-th
// (Gemma 3, 6 by default), as layer_types says when given; none for Qwen
// unless use_sliding_window, refused then where layers differ
// (max_window_layers: HF windows the layers from that index on, the top ones,
// which is no pattern of LlamaConfig's).
inline Status json_windows(const JsonValue& cfg, DecoderFamily family, LlamaConfig* c) {
  Status st = Status::kOk;
  if (family == DecoderFamily::kLlama) return st;
  size_t window = 0;
  if (!json_count(cfg, "sliding_window", &window, is_gemma(family), &st)) {
    if (st != Status::kOk) return st;
    window = 0;
  }
  if (family == DecoderFamily::kQwen2 || family == DecoderFamily::kQwen3) {
    if (!json_true(cfg, "use_sliding_window")) return Status::kOk;
    size_t from = 0;
    if (!json_count(cfg, "max_window_layers", &from, true, &st)) return st;
    if (from < c->layers) {
      return fail(Status::kUnsupported,
                  "config.json: use_sliding_window with max_window_layers %zu < %zu layers (windows on the top layers only) is not read",
                  from, c->layers);
    }
    return Status::kOk;  // no layer from max_window_layers on: no window
  }
  if (!window) return Status::kOk;
  c->sliding_window = window;
  c->sliding_window_pattern = family == DecoderFamily::kGemma2 ? 2 : family == DecoderFamily::kGemma3 ? 6 : 0;
  if (family == DecoderFamily::kGemma3 && !json_count(cfg, "sliding_window_pattern", &c->sliding_window_pattern, false, &st) &&
      st != Status::kOk) {
    return st;
  }
  if (const JsonValue* types = cfg.get("layer_types")) {
    if (types->kind != JsonValue::kNull && (st = json_layer_types(*types, c->layers, &c->sliding_window_pattern)) != Status::kOk) return st;
  }
  return Status::kOk;
}

// Gemma's activation, scale, softcaps and local theta.
inline Status json_gemma(const JsonValue& cfg, DecoderFamily family, LlamaConfig* c) {
  Status st = Status::kOk;
  double scalar = 0, attn_cap = 0, final_cap = 0, local_theta = 10000.0;
  if (!json_real(cfg, "query_pre_attn_scalar", &scalar, &st)) {
    return st != Status::kOk ? st : fail(Status::kInvalidArgument, "config.json: query_pre_attn_scalar is missing");
  }
  if (!json_real(cfg, "attn_logit_softcapping", &attn_cap, &st) && st != Status::kOk) return st;
  if (!json_real(cfg, "final_logit_softcapping", &final_cap, &st) && st != Status::kOk) return st;
  if (family == DecoderFamily::kGemma3 && !json_real(cfg, "rope_local_base_freq", &local_theta, &st) && st != Status::kOk) return st;
  if (!(scalar > 0 && scalar < 1e9) || !(attn_cap >= 0 && attn_cap < 1e6) || !(final_cap >= 0 && final_cap < 1e6) ||
      !(local_theta > 1 && local_theta < 1e12)) {
    return fail(Status::kInvalidArgument, "config.json: query_pre_attn_scalar %g, softcaps %g / %g or rope_local_base_freq %g out of range",
                scalar, attn_cap, final_cap, local_theta);
  }
  c->query_pre_attn_scalar = static_cast<float>(scalar);
  c->attn_softcap = static_cast<float>(attn_cap);
  c->final_softcap = static_cast<float>(final_cap);
  if (family == DecoderFamily::kGemma3 && c->sliding_window) c->rope_local_theta = local_theta;
  return Status::kOk;
}

}  // namespace arch_detail

// A config.json's hyper-parameters. Refused: an attention bias other than
// Qwen2's q / k / v (attention_bias adds o_proj's too), MLP biases, an
// activation other than the family's (SiLU; Gemma: gelu_pytorch_tanh), RoPE
// scalings other than linear and llama3, Qwen's windows on some layers only.
inline Status hf_llama_config(const JsonValue& cfg, const Architecture& arch, size_t max_seq_len, LlamaConfig* out) {
  LlamaConfig c;
  Status st = Status::kOk;
  using arch_detail::json_count;
  if (!json_count(cfg, "hidden_size", &c.dim, true, &st) || !json_count(cfg, "intermediate_size", &c.hidden, true, &st) ||
      !json_count(cfg, "num_hidden_layers", &c.layers, true, &st) ||
      !json_count(cfg, "num_attention_heads", &c.heads, true, &st) || !json_count(cfg, "vocab_size", &c.vocab, true, &st) ||
      !json_count(cfg, "max_position_embeddings", &c.max_seq_len, true, &st)) {
    return st;
  }
  set_family(&c, arch.family);
  c.kv_heads = c.heads;
  if (!json_count(cfg, "num_key_value_heads", &c.kv_heads, false, &st) && st != Status::kOk) return st;
  size_t head_dim = 0;
  if (json_count(cfg, "head_dim", &head_dim, false, &st) && head_dim * c.heads != c.dim) c.attn_head_dim = head_dim;
  if (st != Status::kOk) return st;
  for (const char* flag : {"attention_bias", "mlp_bias"}) {
    if (arch_detail::json_true(cfg, flag)) return fail(Status::kUnsupported, "config.json: %s is true (biases are not read)", flag);
  }
  const bool gemma = is_gemma(arch.family);
  const JsonValue* act = gemma ? cfg.get("hidden_activation") : nullptr;
  if (!act || act->kind == JsonValue::kNull) act = cfg.get("hidden_act");
  const char* want = gemma ? "gelu_pytorch_tanh" : "silu";
  if (act && (act->kind != JsonValue::kString || act->text != want)) {
    return fail(Status::kUnsupported, "config.json: the activation is not %s", want);
  }
  double eps = 1e-6, theta = 10000.0;
  if (!arch_detail::json_real(cfg, "rms_norm_eps", &eps, &st) && st != Status::kOk) return st;
  if (!arch_detail::json_real(cfg, "rope_theta", &theta, &st) && st != Status::kOk) return st;
  if (!(eps >= 0 && eps < 1) || !(theta > 1 && theta < 1e12)) {
    return fail(Status::kInvalidArgument, "config.json: rms_norm_eps %g or rope_theta %g out of range", eps, theta);
  }
  c.norm_eps = static_cast<float>(eps);
  c.rope.theta = theta;
  c.rope.pairing = arch.pairing;
  if (const JsonValue* rs = cfg.get("rope_scaling")) {
    if (rs->kind != JsonValue::kNull) {
      const JsonValue* type = rs->get("rope_type");
      if (!type) type = rs->get("type");
      const std::string t = type && type->kind == JsonValue::kString ? type->text : "";
      double factor = 0;
      if (!arch_detail::json_real(*rs, "factor", &factor, &st) || !(factor >= 1 && factor < 1e6)) {
        return fail(Status::kUnsupported, "config.json: rope_scaling without a factor >= 1");
      }
      c.rope.factor = factor;
      if (t == "linear") {
        c.rope.scaling = RopeScaling::kLinear;
      } else if (t == "llama3") {
        c.rope.scaling = RopeScaling::kLlama3;
        size_t original = 0;
        if (!json_count(*rs, "original_max_position_embeddings", &original, true, &st)) return st;
        c.rope.original_max_positions = original;
        arch_detail::json_real(*rs, "low_freq_factor", &c.rope.low_freq_factor, &st);
        arch_detail::json_real(*rs, "high_freq_factor", &c.rope.high_freq_factor, &st);
        if (st != Status::kOk) return st;
      } else {
        return fail(Status::kUnsupported, "config.json: rope_scaling '%s' (linear and llama3 are read)", t.c_str());
      }
    }
  }
  if ((st = arch_detail::json_windows(cfg, arch.family, &c)) != Status::kOk) return st;
  if (gemma && (st = arch_detail::json_gemma(cfg, arch.family, &c)) != Status::kOk) return st;
  const JsonValue* tie = cfg.get("tie_word_embeddings");
  // transformers' defaults: tied for Gemma, untied for the others
  c.tied_embeddings = tie && tie->kind == JsonValue::kBool ? tie->boolean : gemma;
  c.max_seq_len = capped_positions(c.max_seq_len, max_seq_len);
  if ((st = check_llama_config(c)) != Status::kOk) return st;
  *out = c;
  return Status::kOk;
}

}  // namespace tilekit

#endif  // TILEKIT_LOADERS_ARCHITECTURES_H_

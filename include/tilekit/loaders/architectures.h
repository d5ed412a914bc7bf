// What a model file's architecture means for tilekit's model description:
// one row per (format, architecture) with its tensor names, its RoPE pairing
// and the reader of its hyper-parameters into a LlamaConfig. An architecture
// plugs in as a row (Gemma, Qwen, Mistral with a window: rows to add when the
// model description grows what they need); files of architectures with no
// row are refused with their name.
//
// RoPE pairing is the file's, not the model's: Hugging Face checkpoints rotate
// dimension i with i + head_dim/2 (kHalfSplit); llama.cpp's convert script
// permutes the rows of Q and K so that GGUF llama files rotate i with i + 1
// (kInterleaved, ggml's "normal" rope), as Meta's original checkpoints do.
#ifndef TILEKIT_LOADERS_ARCHITECTURES_H_
#define TILEKIT_LOADERS_ARCHITECTURES_H_

#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <string>

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
};

constexpr LlamaTensorNames kGgufLlamaNames = {
    "token_embd.weight",        "output_norm.weight",       "output.weight",
    "blk.%zu.attn_norm.weight", "blk.%zu.attn_q.weight",    "blk.%zu.attn_k.weight",
    "blk.%zu.attn_v.weight",    "blk.%zu.attn_output.weight", "blk.%zu.ffn_norm.weight",
    "blk.%zu.ffn_gate.weight",  "blk.%zu.ffn_down.weight",  "blk.%zu.ffn_up.weight",
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
};

constexpr Architecture kArchitectures[] = {
    {ModelFormat::kGguf, "llama", &kGgufLlamaNames, RopePairing::kInterleaved},
    {ModelFormat::kSafetensors, "LlamaForCausalLM", &kHfLlamaNames, RopePairing::kHalfSplit},
    {ModelFormat::kSafetensors, "MistralForCausalLM", &kHfLlamaNames, RopePairing::kHalfSplit},
};

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
    return fail(Status::kUnsupported, "gguf: a mixture of %zu experts (only dense Llama models for now)", experts);
  }
  st = Status::kOk;
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
  if (c.heads && c.dim % c.heads == 0) {
    size_t rot = 0;
    if (arch_detail::gguf_count(f, a + "rope.dimension_count", &rot, false, &st) && rot != c.dim / c.heads) {
      return fail(Status::kUnsupported, "gguf: RoPE over %zu of %zu dimensions per head (partial rotary)", rot, c.dim / c.heads);
    }
    size_t key_length = 0;
    if (arch_detail::gguf_count(f, a + "attention.key_length", &key_length, false, &st) && key_length != c.dim / c.heads) {
      return fail(Status::kUnsupported, "gguf: heads of %zu dimensions, not dim / heads = %zu", key_length, c.dim / c.heads);
    }
  }
  size_t file_vocab = 0;
  st = Status::kOk;
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
    return fail(Status::kUnsupported, "config.json: architecture %s is not supported (LlamaForCausalLM and MistralForCausalLM for now)",
                archs->items[0].text.c_str());
  }
  *out = a;
  return Status::kOk;
}

// A config.json's hyper-parameters. Refused: biases in attention or MLP, an
// activation other than SiLU, a head_dim other than hidden / heads, RoPE
// scalings other than linear and llama3. A sliding window (Mistral) caps the
// positions served instead: attention over at most `window` tokens is full
// attention, so the model is exact up to it.
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
  c.kv_heads = c.heads;
  if (!json_count(cfg, "num_key_value_heads", &c.kv_heads, false, &st) && st != Status::kOk) return st;
  size_t head_dim = 0;
  if (json_count(cfg, "head_dim", &head_dim, false, &st) && head_dim * c.heads != c.dim) {
    return fail(Status::kUnsupported, "config.json: head_dim %zu is not hidden_size / heads = %zu", head_dim, c.dim / c.heads);
  }
  if (st != Status::kOk) return st;
  for (const char* flag : {"attention_bias", "mlp_bias"}) {
    const JsonValue* b = cfg.get(flag);
    if (b && b->kind == JsonValue::kBool && b->boolean) return fail(Status::kUnsupported, "config.json: %s is true (biases are not read)", flag);
  }
  if (const JsonValue* act = cfg.get("hidden_act")) {
    if (act->kind != JsonValue::kString || act->text != "silu") return fail(Status::kUnsupported, "config.json: hidden_act is not silu");
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
  size_t window = 0;
  if (json_count(cfg, "sliding_window", &window, false, &st)) c.max_seq_len = capped_positions(c.max_seq_len, window);
  if (st != Status::kOk) return st;
  const JsonValue* tie = cfg.get("tie_word_embeddings");
  c.tied_embeddings = tie && tie->kind == JsonValue::kBool && tie->boolean;  // transformers' Llama default: false
  c.max_seq_len = capped_positions(c.max_seq_len, max_seq_len);
  if ((st = check_llama_config(c)) != Status::kOk) return st;
  *out = c;
  return Status::kOk;
}

}  // namespace tilekit

#endif  // TILEKIT_LOADERS_ARCHITECTURES_H_

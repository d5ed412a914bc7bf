// Small random Llama models as GGUF and safetensors files (loaders/writers.h),
// for gguf_fuzz and safetensors_fuzz: a config decoded from the fuzzer's
// bytes, weights from a seed, every tensor in one stored type (GGUF keeps
// norms in F32), and the corruptions both targets apply to a valid file.
#ifndef TILEKIT_TESTS_FUZZ_MODEL_FILES_H_
#define TILEKIT_TESTS_FUZZ_MODEL_FILES_H_

#include <string>
#include <vector>

#include "fuzz.h"
#include "tilekit/loaders/model.h"
#include "tilekit/loaders/writers.h"

namespace tilekit {
namespace fuzz {

// Every K a multiple of 32 (GGUF blocks), head_dim even, heads divisible.
inline LlamaConfig SmallConfig(FuzzedDataProvider& in) {
  LlamaConfig c;
  c.dim = 32 * in.ConsumeIntegralInRange<size_t>(1, 2);
  c.heads = Pick<size_t>(in, {1, 2, 4});
  c.kv_heads = c.heads / Pick<size_t>(in, {1, c.heads});
  c.hidden = 32 * in.ConsumeIntegralInRange<size_t>(1, 3);
  c.layers = in.ConsumeIntegralInRange<size_t>(1, 2);
  c.vocab = in.ConsumeIntegralInRange<size_t>(1, 40);
  c.max_seq_len = 16;
  c.tied_embeddings = in.ConsumeBool();
  c.rope.theta = 10000.0;
  return c;
}

struct NamedTensor {
  std::string gguf, hf;
  size_t n, k;  // [n][k]; k = 0: a vector
};

inline std::vector<NamedTensor> ModelTensors(const LlamaConfig& c) {
  const size_t D = c.dim, H = c.hidden, qd = c.heads * c.head_dim(), kvd = c.kv_heads * c.head_dim();
  std::vector<NamedTensor> t = {{"token_embd.weight", "model.embed_tokens.weight", c.vocab, D},
                                {"output_norm.weight", "model.norm.weight", D, 0}};
  if (!c.tied_embeddings) t.push_back({"output.weight", "lm_head.weight", c.vocab, D});
  for (size_t l = 0; l < c.layers; ++l) {
    const std::string g = "blk." + std::to_string(l) + ".", h = "model.layers." + std::to_string(l) + ".";
    t.push_back({g + "attn_norm.weight", h + "input_layernorm.weight", D, 0});
    t.push_back({g + "attn_q.weight", h + "self_attn.q_proj.weight", qd, D});
    t.push_back({g + "attn_k.weight", h + "self_attn.k_proj.weight", kvd, D});
    t.push_back({g + "attn_v.weight", h + "self_attn.v_proj.weight", kvd, D});
    t.push_back({g + "attn_output.weight", h + "self_attn.o_proj.weight", D, qd});
    t.push_back({g + "ffn_norm.weight", h + "post_attention_layernorm.weight", D, 0});
    t.push_back({g + "ffn_gate.weight", h + "mlp.gate_proj.weight", H, D});
    t.push_back({g + "ffn_down.weight", h + "mlp.down_proj.weight", D, H});
    t.push_back({g + "ffn_up.weight", h + "mlp.up_proj.weight", H, D});
  }
  return t;
}

// 0 F32, 1 F16, 2 BF16, 3 Q8_0, 4 Q4_0 (GGUF only), as stored bytes.
inline std::vector<unsigned char> StoreAs(const std::vector<float>& x, size_t n, size_t k, int type) {
  if (type == 0) return as_bytes(x);
  if (type == 3) return quantize_q8_0(x.data(), k ? n : 1, k ? k : n);
  if (type == 4) return quantize_q4_0(x.data(), k ? n : 1, k ? k : n);
  std::vector<uint16_t> h(x.size());
  for (size_t i = 0; i < x.size(); ++i) h[i] = type == 1 ? f32_to_f16(x[i]) : f32_to_bf16(x[i]).bits;
  return as_bytes(h);
}

inline std::vector<unsigned char> GgufModel(const LlamaConfig& c, int type, Values& values) {
  GgufWriter w;
  w.add_string("general.architecture", "llama");
  w.add_u32("llama.context_length", static_cast<uint32_t>(c.max_seq_len));
  w.add_u32("llama.embedding_length", static_cast<uint32_t>(c.dim));
  w.add_u32("llama.block_count", static_cast<uint32_t>(c.layers));
  w.add_u32("llama.feed_forward_length", static_cast<uint32_t>(c.hidden));
  w.add_u32("llama.attention.head_count", static_cast<uint32_t>(c.heads));
  w.add_u32("llama.attention.head_count_kv", static_cast<uint32_t>(c.kv_heads));
  w.add_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  std::vector<std::string> tokens(c.vocab, "x");
  w.add_strings("tokenizer.ggml.tokens", tokens);
  static const uint32_t kGgml[] = {0, 1, 30, 8, 2};
  for (const NamedTensor& t : ModelTensors(c)) {
    std::vector<float> x(t.k ? t.n * t.k : t.n);
    values.fill(x);
    const int s = t.k ? type : 0;
    w.add_tensor(t.gguf, kGgml[s], t.k ? std::vector<uint64_t>{t.k, t.n} : std::vector<uint64_t>{t.n}, StoreAs(x, t.n, t.k, s));
  }
  return w.bytes();
}

inline std::string HfConfigJson(const LlamaConfig& c) {
  char buf[640];
  std::snprintf(buf, sizeof(buf),
                "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":%zu,\"intermediate_size\":%zu,"
                "\"num_hidden_layers\":%zu,\"num_attention_heads\":%zu,\"num_key_value_heads\":%zu,\"rms_norm_eps\":1e-5,"
                "\"vocab_size\":%zu,\"tie_word_embeddings\":%s,\"max_position_embeddings\":%zu}",
                c.dim, c.hidden, c.layers, c.heads, c.kv_heads, c.vocab, c.tied_embeddings ? "true" : "false", c.max_seq_len);
  return buf;
}

inline std::vector<unsigned char> SafetensorsModel(const LlamaConfig& c, int type, Values& values) {
  SafetensorsWriter w;
  static const char* const kDtype[] = {"F32", "F16", "BF16"};
  for (const NamedTensor& t : ModelTensors(c)) {
    std::vector<float> x(t.k ? t.n * t.k : t.n);
    values.fill(x);
    w.add(t.hf, kDtype[type], t.k ? std::vector<size_t>{t.n, t.k} : std::vector<size_t>{t.n}, StoreAs(x, t.n, t.k, type));
  }
  return w.bytes();
}

// One corruption of a valid file: 0 none, 1 truncated (must be refused),
// 2 a few bytes overwritten, 3 a u64 of the header region set to an edge.
inline int Corrupt(FuzzedDataProvider& in, std::vector<unsigned char>* file, size_t header) {
  const int kind = in.ConsumeIntegralInRange<int>(0, 3);
  if (kind == 1) {
    file->resize(in.ConsumeIntegralInRange<size_t>(0, file->size() - 1));
  } else if (kind == 2) {
    for (int i = in.ConsumeIntegralInRange<int>(1, 4); i > 0; --i) {
      (*file)[in.ConsumeIntegralInRange<size_t>(0, file->size() - 1)] = in.ConsumeIntegral<uint8_t>();
    }
  } else if (kind == 3 && file->size() >= 8) {
    const uint64_t v = Pick<uint64_t>(in, {0, 1, 0xFFFFFFFFull, 1ull << 32, 1ull << 62, UINT64_MAX, UINT64_MAX - 7});
    const size_t at = in.ConsumeIntegralInRange<size_t>(0, std::min(header, file->size() - 8));
    for (int i = 0; i < 8; ++i) (*file)[at + i] = static_cast<unsigned char>(v >> (8 * i));
  }
  return kind;
}

// A loaded model runs: built with the options it was loaded for, two tokens
// decoded, every logit finite for the valid file's random weights (anything
// but a crash for a corrupted one that still loads).
inline void RunLoaded(const LoadedModel& m, const LoadOptions& o, bool valid) {
  LlamaOptions lo;
  lo.max_tokens = 2;
  lo.weights = o.weights;
  lo.weight_group = o.weight_group;
  LlamaModel model;
  const Status st = model.build(m.config, m.weights, lo);
  if (st != Status::kOk) {
    TILEKIT_FUZZ_CHECK(!valid, "a valid file's model did not build");
    return;
  }
  KvSlot slot;
  TILEKIT_FUZZ_CHECK(slot.init(model.cache(), m.config.max_seq_len) == Status::kOk, "slot");
  const int32_t tokens[2] = {0, static_cast<int32_t>(m.config.vocab - 1)};
  TILEKIT_FUZZ_CHECK(model.forward(slot, tokens, 2) == Status::kOk, "forward");
  if (valid) {
    for (size_t j = 0; j < m.config.vocab; ++j) TILEKIT_FUZZ_CHECK(std::isfinite(model.logits().data[j]), "logit %zu", j);
  }
}

// Weights of an accepted model lie inside the bytes it was loaded from or in
// its own buffers.
inline bool Inside(const void* p, const void* base, size_t size, const LoadedModel& m) {
  const unsigned char* q = static_cast<const unsigned char*>(p);
  const unsigned char* b = static_cast<const unsigned char*>(base);
  if (q >= b && q < b + size) return true;
  for (const auto& o : m.owned) {
    if (static_cast<const void*>(o.get()) == p) return true;
  }
  return false;
}

}  // namespace fuzz
}  // namespace tilekit

#endif  // TILEKIT_TESTS_FUZZ_MODEL_FILES_H_

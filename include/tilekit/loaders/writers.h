// Writers of small GGUF and safetensors files, for tests and tools that need a
// model file without downloading one (tests/loaders_test.cc,
// examples/load_model/make_random_model.cc), and the quantizers of GGUF's
// Q8_0 / Q4_0 blocks by ggml's reference rule (ggml-quants.c,
// quantize_row_q8_0_ref / quantize_row_q4_0_ref):
//   Q8_0: d = max|x| / 127, q = round(x / d);
//   Q4_0: m = the value of largest magnitude (sign kept), d = m / -8,
//         q = min(15, trunc(x / d + 8.5)) stored as a nibble (value q - 8).
// Both write the bytes the parsers of gguf.h and safetensors.h read, in the
// order they are added; nothing here checks a model's consistency (tests
// write inconsistent files on purpose). add_gguf_model_keys and
// hf_config_json write a LlamaConfig's hyper-parameters as each format keeps
// them for each decoder family (loaders/architectures.h says which);
// the tensors, their names and conventions (llama.cpp's Q / K permutation of
// llama files, its 1 + w Gemma norms) are the caller's.
#ifndef TILEKIT_LOADERS_WRITERS_H_
#define TILEKIT_LOADERS_WRITERS_H_

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "tilekit/base/bf16.h"
#include "tilekit/base/size_math.h"
#include "tilekit/base/status.h"
#include "tilekit/graph/llama.h"
#include "tilekit/loaders/gguf.h"

namespace tilekit {

// fp32 to IEEE half, round to nearest even (overflow to Inf, NaN kept NaN).
inline uint16_t f32_to_f16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint32_t sign = (u >> 16) & 0x8000u;
  const uint32_t a = u & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return static_cast<uint16_t>(sign | 0x7E00u);
  if (a >= 0x477FF000u) return static_cast<uint16_t>(sign | 0x7C00u);  // rounds to >= 65520: Inf
  if (a < 0x38800000u) {  // below half's smallest normal: a subnormal (or 0)
    if (a < 0x33000000u) return static_cast<uint16_t>(sign);  // below half the smallest subnormal
    const uint32_t mant = (a & 0x7FFFFFu) | 0x800000u;
    const int shift = 126 - static_cast<int>(a >> 23);  // 14 + 113 - exp - 1
    const uint32_t q = mant >> (shift + 0), rest = mant & ((1u << shift) - 1), halfway = 1u << (shift - 1);
    uint32_t h = q;
    if (rest > halfway || (rest == halfway && (q & 1))) ++h;
    return static_cast<uint16_t>(sign | h);
  }
  uint32_t h = ((a >> 23) - 112) << 10 | ((a >> 13) & 0x3FFu);
  const uint32_t rest = a & 0x1FFFu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1))) ++h;  // a carry bumps the exponent correctly
  return static_cast<uint16_t>(sign | h);
}

// [n][k] fp32 rows (k a multiple of 32) as Q8_0 / Q4_0 blocks.
inline std::vector<unsigned char> quantize_q8_0(const float* x, size_t n, size_t k) {
  std::vector<unsigned char> out(n * (k / 32) * 34);
  unsigned char* o = out.data();
  for (size_t b = 0; b < n * k / 32; ++b, o += 34) {
    const float* v = x + b * 32;
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(v[j]));
    const float d = amax / 127, id = d ? 1 / d : 0;
    const uint16_t h = f32_to_f16(d);
    o[0] = static_cast<unsigned char>(h), o[1] = static_cast<unsigned char>(h >> 8);
    for (int j = 0; j < 32; ++j) o[2 + j] = static_cast<unsigned char>(static_cast<int8_t>(std::nearbyint(v[j] * id)));
  }
  return out;
}
inline std::vector<unsigned char> quantize_q4_0(const float* x, size_t n, size_t k) {
  std::vector<unsigned char> out(n * (k / 32) * 18);
  unsigned char* o = out.data();
  for (size_t b = 0; b < n * k / 32; ++b, o += 18) {
    const float* v = x + b * 32;
    float amax = 0, m = 0;
    for (int j = 0; j < 32; ++j) {
      if (std::fabs(v[j]) > amax) amax = std::fabs(v[j]), m = v[j];
    }
    const float d = m / -8, id = d ? 1 / d : 0;
    const uint16_t h = f32_to_f16(d);
    o[0] = static_cast<unsigned char>(h), o[1] = static_cast<unsigned char>(h >> 8);
    for (int j = 0; j < 16; ++j) {
      const int lo = std::min(15, static_cast<int>(v[j] * id + 8.5f));
      const int hi = std::min(15, static_cast<int>(v[j + 16] * id + 8.5f));
      o[2 + j] = static_cast<unsigned char>(lo | hi << 4);
    }
  }
  return out;
}

// Raw little-endian bytes of a vector of values (this library's targets are
// little-endian, as both formats are).
template <typename T>
std::vector<unsigned char> as_bytes(const std::vector<T>& v) {
  std::vector<unsigned char> b(v.size() * sizeof(T));
  if (!b.empty()) std::memcpy(b.data(), v.data(), b.size());
  return b;
}

inline Status write_file(const char* path, const std::vector<unsigned char>& bytes) {
  std::FILE* f = path ? std::fopen(path, "wb") : nullptr;
  if (!f) return fail(Status::kInvalidArgument, "writer: cannot create %s", path ? path : "(null)");
  const bool ok = bytes.empty() || std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  if (std::fclose(f) != 0 || !ok) return fail(Status::kInvalidArgument, "writer: cannot write %s", path);
  return Status::kOk;
}

class GgufWriter {
 public:
  explicit GgufWriter(size_t alignment = kGgufDefaultAlignment) : alignment_(alignment) {}

  void add_string(const std::string& key, const std::string& v) { kv(key, GgufValueType::kString), str(&meta_, v); }
  void add_u32(const std::string& key, uint32_t v) { kv(key, GgufValueType::kU32), num(&meta_, v, 4); }
  void add_f32(const std::string& key, float v) {
    uint32_t b;
    std::memcpy(&b, &v, 4);
    kv(key, GgufValueType::kF32), num(&meta_, b, 4);
  }
  void add_strings(const std::string& key, const std::vector<std::string>& v) {
    kv(key, GgufValueType::kArray);
    num(&meta_, static_cast<uint32_t>(GgufValueType::kString), 4);
    num(&meta_, v.size(), 8);
    for (const std::string& s : v) str(&meta_, s);
  }
  // A tensor of ggml type `type`, ne fastest-varying first (a Linear's
  // [out][in] weight: {in, out}), its bytes as stored.
  void add_tensor(const std::string& name, uint32_t type, const std::vector<uint64_t>& ne, std::vector<unsigned char> data) {
    str(&infos_, name);
    num(&infos_, ne.size(), 4);
    for (uint64_t d : ne) num(&infos_, d, 8);
    num(&infos_, type, 4);
    data_.resize(round_up(data_.size(), alignment_), 0);  // padding before, so the file ends with the last tensor
    num(&infos_, data_.size(), 8);
    data_.insert(data_.end(), data.begin(), data.end());
    ++tensors_;
  }

  std::vector<unsigned char> bytes() const {
    std::vector<unsigned char> out;
    num(&out, kGgufMagic, 4);
    num(&out, 3, 4);
    num(&out, tensors_, 8);
    num(&out, kvs_, 8);
    out.insert(out.end(), meta_.begin(), meta_.end());
    out.insert(out.end(), infos_.begin(), infos_.end());
    out.resize(round_up(out.size(), alignment_), 0);
    out.insert(out.end(), data_.begin(), data_.end());
    return out;
  }
  Status write(const char* path) const { return write_file(path, bytes()); }

 private:
  static void num(std::vector<unsigned char>* out, uint64_t v, size_t bytes) {
    for (size_t i = 0; i < bytes; ++i) out->push_back(static_cast<unsigned char>(v >> (8 * i)));
  }
  static void str(std::vector<unsigned char>* out, const std::string& s) {
    num(out, s.size(), 8);
    out->insert(out->end(), s.begin(), s.end());
  }
  void kv(const std::string& key, GgufValueType t) {
    str(&meta_, key);
    num(&meta_, static_cast<uint32_t>(t), 4);
    ++kvs_;
  }

  size_t alignment_;
  std::vector<unsigned char> meta_, infos_, data_;
  uint64_t kvs_ = 0, tensors_ = 0;
};

// The metadata llama.cpp's convert writes for a model of `c` under GGUF
// architecture `arch` (llama, qwen2, qwen3, gemma2, gemma3): the
// hyper-parameters under "<arch>.", head_dim as attention.key_length /
// value_length outside llama, and Gemma's window and softcaps (its window
// pattern, local theta and attention scale are the architecture's, not keys).
inline void add_gguf_model_keys(GgufWriter& w, const LlamaConfig& c, const std::string& arch) {
  const std::string a = arch + ".";
  const auto u32 = [&](const char* key, size_t v) { w.add_u32(a + key, static_cast<uint32_t>(v)); };
  w.add_string("general.architecture", arch);
  u32("context_length", c.max_seq_len);
  u32("embedding_length", c.dim);
  u32("block_count", c.layers);
  u32("feed_forward_length", c.hidden);
  u32("attention.head_count", c.heads);
  u32("attention.head_count_kv", c.kv_heads);
  u32("rope.dimension_count", c.head_dim());
  w.add_f32(a + "attention.layer_norm_rms_epsilon", c.norm_eps);
  w.add_f32(a + "rope.freq_base", static_cast<float>(c.rope.theta));
  if (arch != "llama") u32("attention.key_length", c.head_dim()), u32("attention.value_length", c.head_dim());
  if (arch.compare(0, 5, "gemma") == 0) {
    u32("attention.sliding_window", c.sliding_window);
    if (c.attn_softcap > 0) w.add_f32(a + "attn_logit_softcapping", c.attn_softcap);
    if (c.final_softcap > 0) w.add_f32(a + "final_logit_softcapping", c.final_softcap);
  }
}

// A Hugging Face config.json for `c` as class `arch` (LlamaForCausalLM,
// MistralForCausalLM, Qwen2 / Qwen3 / Gemma2 / Gemma3ForCausalLM): the
// hyper-parameters, and the keys of the switches `c` sets (head_dim, the
// window, Gemma's activation, scale, softcaps, pattern and local theta; Qwen2's
// biases and Gemma's norms are the class's). `extra` (", \"key\": value"...)
// goes at the end.
inline std::string hf_config_json(const LlamaConfig& c, const std::string& arch, const std::string& extra = "") {
  char buf[2048];
  size_t at = 0;
  const auto add = [&](const char* format, auto... v) {
    const int n = std::snprintf(buf + at, sizeof(buf) - at, format, v...);
    at = std::min(sizeof(buf) - 1, at + static_cast<size_t>(n > 0 ? n : 0));
  };
  add("{\"architectures\": [\"%s\"], \"hidden_size\": %zu, \"intermediate_size\": %zu, \"num_hidden_layers\": %zu,"
      " \"num_attention_heads\": %zu, \"num_key_value_heads\": %zu, \"rms_norm_eps\": %g, \"rope_theta\": %.1f,"
      " \"vocab_size\": %zu, \"tie_word_embeddings\": %s, \"max_position_embeddings\": %zu, \"hidden_act\": \"%s\","
      " \"rope_scaling\": null, \"torch_dtype\": \"float32\"",
      arch.c_str(), c.dim, c.hidden, c.layers, c.heads, c.kv_heads, static_cast<double>(c.norm_eps), c.rope.theta, c.vocab,
      c.tied_embeddings ? "true" : "false", c.max_seq_len, c.norm_weight_offset ? "gelu_pytorch_tanh" : "silu");
  if (c.attn_head_dim) add(", \"head_dim\": %zu", c.attn_head_dim);
  if (c.sliding_window) add(", \"sliding_window\": %zu", c.sliding_window);
  if (c.norm_weight_offset) {
    add(", \"hidden_activation\": \"gelu_pytorch_tanh\", \"query_pre_attn_scalar\": %g", static_cast<double>(c.query_pre_attn_scalar));
    add(c.attn_softcap > 0 ? ", \"attn_logit_softcapping\": %g" : ", \"attn_logit_softcapping\": null", static_cast<double>(c.attn_softcap));
    add(c.final_softcap > 0 ? ", \"final_logit_softcapping\": %g" : ", \"final_logit_softcapping\": null", static_cast<double>(c.final_softcap));
  }
  if (c.rope_local_theta > 0) add(", \"sliding_window_pattern\": %zu, \"rope_local_base_freq\": %.1f", c.sliding_window_pattern, c.rope_local_theta);
  return std::string(buf, at) + extra + "}";
}

class SafetensorsWriter {
 public:
  // A tensor of `dtype` ("F32", "F16", "BF16", ...), shape outermost first.
  void add(const std::string& name, const std::string& dtype, const std::vector<size_t>& shape, std::vector<unsigned char> data) {
    std::string e = "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":[";
    for (size_t i = 0; i < shape.size(); ++i) e += (i ? "," : "") + std::to_string(shape[i]);
    e += "],\"data_offsets\":[" + std::to_string(data_.size()) + "," + std::to_string(data_.size() + data.size()) + "]}";
    entries_.push_back(std::move(e));
    data_.insert(data_.end(), data.begin(), data.end());
  }
  void add_metadata(const std::string& key, const std::string& value) { metadata_.emplace_back(key, value); }

  std::vector<unsigned char> bytes() const {
    std::string h = "{";
    if (!metadata_.empty()) {
      h += "\"__metadata__\":{";
      for (size_t i = 0; i < metadata_.size(); ++i) h += (i ? ",\"" : "\"") + metadata_[i].first + "\":\"" + metadata_[i].second + "\"";
      h += "}";
      if (!entries_.empty()) h += ",";
    }
    for (size_t i = 0; i < entries_.size(); ++i) h += (i ? "," : "") + entries_[i];
    h += "}";
    h.resize(round_up(h.size(), 8), ' ');  // as the reference writer pads: the data section starts 8-aligned
    std::vector<unsigned char> out;
    for (size_t i = 0; i < 8; ++i) out.push_back(static_cast<unsigned char>(static_cast<uint64_t>(h.size()) >> (8 * i)));
    out.insert(out.end(), h.begin(), h.end());
    out.insert(out.end(), data_.begin(), data_.end());
    return out;
  }
  Status write(const char* path) const { return write_file(path, bytes()); }

 private:
  std::vector<std::string> entries_;
  std::vector<std::pair<std::string, std::string>> metadata_;
  std::vector<unsigned char> data_;
};

}  // namespace tilekit

#endif  // TILEKIT_LOADERS_WRITERS_H_

// GGUF files and safetensors checkpoints into LlamaConfig + LlamaWeights
// (graph/llama.h), ready for LlamaModel::build:
//
//   LoadedModel m;
//   LoadOptions o;  o.weights = WeightType::kInt8;  o.max_seq_len = 2048;
//   if (load_model("model.gguf", o, &m) != Status::kOk) puts(last_error());
//   LlamaOptions lo;  lo.weights = o.weights;  lo.weight_group = o.weight_group;
//   model.build(m.config, m.weights, lo);   // m must outlive the model
//
// How each stored type reaches the model (none is rounded on the way):
//   F32   pointed into the mapped file (copied where it is not 4-byte aligned);
//   BF16  linears: handed to packing as bf16 sources (it widens or quantizes
//         them); norms and the embedding table: widened to fp32;
//   F16   widened to fp32 (exact);
//   Q8_0, Q4_0  linears, with LoadOptions::weights kInt8 / kInt4 respectively
//         and weight_group 32: packed from their blocks as stored
//         (weights_gguf), so the model multiplies exactly the file's values;
//         otherwise (another weight type or group, the embedding table, and
//         the norms) dequantized to fp32 exactly (a half scale times a value
//         of at most 8 bits fits in fp32's 24-bit significand), which the
//         model then packs as LoadOptions::weights says;
//   any other type (K-quants, Q4_1, ...) is refused with the tensor's name.
// The architecture's row (loaders/architectures.h) names the tensors and
// says the RoPE pairing; a missing tensor, a shape other than the config's,
// or a file of another architecture is refused with what was found.
#ifndef TILEKIT_LOADERS_MODEL_H_
#define TILEKIT_LOADERS_MODEL_H_

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <sys/stat.h>

#include "tilekit/base/bf16.h"
#include "tilekit/base/fp16.h"
#include "tilekit/base/size_math.h"
#include "tilekit/base/status.h"
#include "tilekit/graph/llama.h"
#include "tilekit/loaders/architectures.h"
#include "tilekit/loaders/file.h"
#include "tilekit/loaders/gguf.h"
#include "tilekit/loaders/json.h"
#include "tilekit/loaders/safetensors.h"

namespace tilekit {

struct LoadOptions {
  // The weight type the model will be built with (LlamaOptions::weights) and
  // its group: they decide whether Q8_0 / Q4_0 tensors are packed as stored.
  WeightType weights = WeightType::kF32;
  size_t weight_group = 32;
  size_t max_seq_len = 0;  // positions to serve, at most the file's (0: the file's)
};

// The stored types a model can take, whichever format they come from.
enum class StoredType : uint8_t { kF32, kF16, kBf16, kQ8_0, kQ4_0, kOther };

// One tensor as a file stores it: dims outermost first (a Linear's [out][in]).
struct StoredTensor {
  StoredType type = StoredType::kOther;
  const char* type_name = "";
  size_t dims = 0;
  size_t shape[kSafetensorsMaxDims] = {};
  const unsigned char* data = nullptr;
  size_t bytes = 0;
};
using StoredTensors = std::map<std::string, StoredTensor>;

struct LoadedModel {
  LlamaConfig config;
  LlamaWeights weights;
  ModelFormat format = ModelFormat::kGguf;
  std::string architecture;
  // GGUF's tokenizer.ggml.*: one string per id (empty when the file has none;
  // safetensors checkpoints keep theirs in tokenizer.json, not read here),
  // the tokenizer model ("llama": SentencePiece pieces, "gpt2": byte-level
  // BPE), and the BOS / EOS ids (-1: none).
  std::vector<std::string> tokens;
  std::string tokenizer;
  int32_t bos = -1, eos = -1;
  // Tensors by how they reach the model.
  size_t mapped = 0, packed_from_source = 0, converted = 0;

  LoadedModel() = default;
  LoadedModel(LoadedModel&&) = default;  // moves keep every buffer the weights point into
  LoadedModel& operator=(LoadedModel&&) = default;

  std::vector<MappedFile> files;
  std::vector<std::unique_ptr<float[]>> owned;  // converted tensors
};

namespace model_detail {

inline StoredType gguf_stored_type(uint32_t t) {
  switch (t) {
    case 0: return StoredType::kF32;
    case 1: return StoredType::kF16;
    case 2: return StoredType::kQ4_0;
    case 8: return StoredType::kQ8_0;
    case 30: return StoredType::kBf16;
    default: return StoredType::kOther;
  }
}
inline StoredType safetensors_stored_type(const std::string& d) {
  return d == "F32" ? StoredType::kF32 : d == "F16" ? StoredType::kF16 : d == "BF16" ? StoredType::kBf16 : StoredType::kOther;
}

inline StoredTensors from_gguf(const GgufFile& f) {
  StoredTensors out;
  for (const GgufTensorInfo& t : f.tensors) {
    StoredTensor s;
    s.type = gguf_stored_type(t.type);
    s.type_name = ggml_type_name(t.type);
    s.dims = t.dims;
    for (size_t d = 0; d < t.dims; ++d) s.shape[d] = static_cast<size_t>(t.ne[t.dims - 1 - d]);
    s.data = t.data;
    s.bytes = t.bytes;
    out.emplace(t.name, s);
  }
  return out;
}

inline Status add_safetensors(const SafetensorsFile& f, size_t file, StoredTensors* out) {
  for (const SafetensorsTensor& t : f.tensors) {
    StoredTensor s;
    s.type = safetensors_stored_type(t.dtype);
    s.type_name = s.type == StoredType::kF32 ? "F32" : s.type == StoredType::kF16 ? "F16" : s.type == StoredType::kBf16 ? "BF16" : "another dtype";
    s.dims = t.shape.size();
    for (size_t d = 0; d < s.dims; ++d) s.shape[d] = t.shape[d];
    s.data = t.data;
    s.bytes = t.bytes;
    if (!out->emplace(t.name, s).second) return fail(Status::kInvalidArgument, "safetensors: tensor %s is in two files (again in file %zu)", t.name.c_str(), file);
  }
  return Status::kOk;
}

// Builds the weights of one model from its stored tensors.
class WeightMapper {
 public:
  WeightMapper(const StoredTensors& tensors, const LoadOptions& o, LoadedModel* m) : t_(tensors), o_(o), m_(m) {}

  const LlamaConfig& config() const { return m_->config; }

  // The tensor `name`, which must be [n][k] (k = 0: a vector of n).
  Status find(const std::string& name, size_t n, size_t k, const StoredTensor** out) const {
    const auto it = t_.find(name);
    if (it == t_.end()) return fail(Status::kInvalidArgument, "loader: tensor %s is missing", name.c_str());
    const StoredTensor& s = it->second;
    const bool ok = k ? s.dims == 2 && s.shape[0] == n && s.shape[1] == k : s.dims == 1 && s.shape[0] == n;
    if (!ok) {
      char got[96] = "";
      size_t at = 0;
      for (size_t d = 0; d < s.dims && at < sizeof(got) - 24; ++d) at += std::snprintf(got + at, sizeof(got) - at, "[%zu]", s.shape[d]);
      return fail(Status::kShapeMismatch, "loader: tensor %s is %s, the config needs [%zu]%s", name.c_str(), got, n,
                  k ? ("[" + std::to_string(k) + "]").c_str() : "");
    }
    if (s.type == StoredType::kOther) {
      return fail(Status::kUnsupported, "loader: tensor %s is %s (F32, F16, BF16, Q8_0 and Q4_0 are read)", name.c_str(), s.type_name);
    }
    *out = &s;
    return Status::kOk;
  }

  // fp32 values of a tensor: in place when it is aligned fp32, else converted.
  Status floats(const std::string& name, size_t n, size_t k, const float** out) {
    const StoredTensor* s;
    Status st = find(name, n, k, &s);
    if (st != Status::kOk) return st;
    if (s->type == StoredType::kF32 && reinterpret_cast<uintptr_t>(s->data) % alignof(float) == 0) {
      *out = reinterpret_cast<const float*>(s->data);
      ++m_->mapped;
      return Status::kOk;
    }
    const size_t count = k ? n * k : n;  // find() checked: the file holds count values
    std::unique_ptr<float[]> buf(new (std::nothrow) float[count]);
    if (!buf) return fail(Status::kOutOfMemory, "loader: %zu floats for %s", count, name.c_str());
    if ((st = convert(*s, count, name, buf.get())) != Status::kOk) return st;
    *out = buf.get();
    m_->owned.push_back(std::move(buf));
    ++m_->converted;
    return Status::kOk;
  }

  // A linear's [n][k] weights: a source packing reads as stored (aligned
  // bf16; Q8_0 / Q4_0 matching the options), else fp32 (floats()).
  Status linear(const std::string& name, size_t n, size_t k, const float** f, WeightSource* src) {
    const StoredTensor* s;
    const Status st = find(name, n, k, &s);
    if (st != Status::kOk) return st;
    if (source(*s, n, k, src)) {
      ++m_->packed_from_source;
      return Status::kOk;
    }
    return floats(name, n, k, f);
  }

  // Whether packing can read the tensor as stored; the source if so.
  bool source(const StoredTensor& s, size_t n, size_t k, WeightSource* src) const {
    if (s.type == StoredType::kBf16 && reinterpret_cast<uintptr_t>(s.data) % alignof(bf16) == 0) {
      *src = weights_nk(reinterpret_cast<const bf16*>(s.data), n, k);
      return true;
    }
    const bool blocks = o_.weight_group == kGgufBlockValues &&
                        ((s.type == StoredType::kQ8_0 && o_.weights == WeightType::kInt8) ||
                         (s.type == StoredType::kQ4_0 && o_.weights == WeightType::kInt4));
    if (!blocks) return false;
    *src = weights_gguf(s.data, s.type == StoredType::kQ8_0 ? SourceType::kGgufQ8_0 : SourceType::kGgufQ4_0, n, k);
    return true;
  }

 private:
  // `count` values into fp32, exactly.
  static Status convert(const StoredTensor& s, size_t count, const std::string& name, float* out) {
    const unsigned char* p = s.data;
    switch (s.type) {
      case StoredType::kF32: std::memcpy(out, p, count * 4); return Status::kOk;
      case StoredType::kF16:
        for (size_t i = 0; i < count; ++i) out[i] = f16_to_f32(static_cast<uint16_t>(p[2 * i] | p[2 * i + 1] << 8));
        return Status::kOk;
      case StoredType::kBf16:
        for (size_t i = 0; i < count; ++i) out[i] = bf16_to_f32(bf16{static_cast<uint16_t>(p[2 * i] | p[2 * i + 1] << 8)});
        return Status::kOk;
      case StoredType::kQ8_0:
      case StoredType::kQ4_0: {
        // Blocks of 32 values (GGUF rows are whole blocks: parse_gguf checked).
        const bool q8 = s.type == StoredType::kQ8_0;
        const size_t block = q8 ? 34 : 18;
        for (size_t b = 0; b < count / kGgufBlockValues; ++b) {
          const unsigned char* blk = p + b * block;
          const float d = f16_to_f32(static_cast<uint16_t>(blk[0] | blk[1] << 8));
          if (!std::isfinite(d)) {
            return fail(Status::kInvalidArgument, "loader: tensor %s: block %zu has a scale that is not finite", name.c_str(), b);
          }
          float* o = out + b * kGgufBlockValues;
          for (size_t j = 0; j < kGgufBlockValues; ++j) {
            const int q = q8 ? static_cast<int8_t>(blk[2 + j]) : (j < 16 ? blk[2 + j] & 0xF : blk[2 + j - 16] >> 4) - 8;
            o[j] = d * static_cast<float>(q);
          }
        }
        return Status::kOk;
      }
      case StoredType::kOther: break;
    }
    return fail(Status::kUnsupported, "loader: tensor %s: type %s", name.c_str(), s.type_name);
  }

  const StoredTensors& t_;
  LoadOptions o_;
  LoadedModel* m_;
};

// A layer's tensors of the families beyond Llama, those the config switches
// on; an architecture without a name for one it needs is refused.
inline Status map_family(WeightMapper& w, const LlamaTensorNames& names, size_t l, LlamaLayerWeights* y) {
  const LlamaConfig& c = w.config();
  const size_t hd = c.head_dim(), qd = c.heads * hd, kvd = c.kv_heads * hd;
  const auto vec = [&](const char* format, size_t n, const float** out) {
    if (!format) return fail(Status::kUnsupported, "loader: the architecture has no tensor for a switch its config sets");
    return w.floats(layer_tensor_name(format, l), n, 0, out);
  };
  Status st = Status::kOk;
  if (c.qkv_bias && ((st = vec(names.bq, qd, &y->bq)) != Status::kOk || (st = vec(names.bk, kvd, &y->bk)) != Status::kOk ||
                     (st = vec(names.bv, kvd, &y->bv)) != Status::kOk)) {
    return st;
  }
  if (c.qk_norm && ((st = vec(names.q_norm, hd, &y->q_norm)) != Status::kOk || (st = vec(names.k_norm, hd, &y->k_norm)) != Status::kOk)) {
    return st;
  }
  if (c.sandwich_norms && ((st = vec(names.attn_out_norm, c.dim, &y->attn_out_norm)) != Status::kOk ||
                           (st = vec(names.ffn_out_norm, c.dim, &y->ffn_out_norm)) != Status::kOk)) {
    return st;
  }
  return Status::kOk;
}

// The weights of `c` named by `names` (c.vocab, c.dim... already read).
inline Status map_llama(const StoredTensors& tensors, const LlamaTensorNames& names, const LoadOptions& o, LoadedModel* m) {
  const LlamaConfig& c = m->config;
  WeightMapper w(tensors, o, m);
  LlamaWeights& lw = m->weights;
  const size_t D = c.dim, H = c.hidden, qd = c.heads * c.head_dim(), kvd = c.kv_heads * c.head_dim();
  Status st;
  if ((st = w.floats(names.embedding, c.vocab, D, &lw.embedding)) != Status::kOk) return st;
  if ((st = w.floats(names.final_norm, D, 0, &lw.final_norm)) != Status::kOk) return st;
  if (!c.tied_embeddings) {
    if ((st = w.linear(names.classifier, c.vocab, D, &lw.classifier, &lw.classifier_source)) != Status::kOk) return st;
  } else {
    // The classifier is the table: packed from its stored form where packing
    // reads it (the lookup reads the fp32 table above).
    const StoredTensor* s;
    if ((st = w.find(names.embedding, c.vocab, D, &s)) != Status::kOk) return st;
    if (w.source(*s, c.vocab, D, &lw.classifier_source)) ++m->packed_from_source;
  }
  // Each layer has at least 9 tensors: a layer count far beyond what the
  // file holds is refused before anything is sized by it (near misses name
  // the first missing tensor below).
  if (c.layers > tensors.size()) {
    return fail(Status::kShapeMismatch, "loader: %zu layers, but the file has %zu tensors", c.layers, tensors.size());
  }
  lw.layers.assign(c.layers, LlamaLayerWeights{});
  for (size_t l = 0; l < c.layers; ++l) {
    LlamaLayerWeights& y = lw.layers[l];
    LlamaLinearSources& s = y.sources;
    const auto name = [l](const char* f) { return layer_tensor_name(f, l); };
    if ((st = w.floats(name(names.attn_norm), D, 0, &y.attn_norm)) != Status::kOk ||
        (st = w.floats(name(names.ffn_norm), D, 0, &y.ffn_norm)) != Status::kOk ||
        (st = w.linear(name(names.wq), qd, D, &y.wq, &s.wq)) != Status::kOk ||
        (st = w.linear(name(names.wk), kvd, D, &y.wk, &s.wk)) != Status::kOk ||
        (st = w.linear(name(names.wv), kvd, D, &y.wv, &s.wv)) != Status::kOk ||
        (st = w.linear(name(names.wo), D, qd, &y.wo, &s.wo)) != Status::kOk ||
        (st = w.linear(name(names.w1), H, D, &y.w1, &s.w1)) != Status::kOk ||
        (st = w.linear(name(names.w2), D, H, &y.w2, &s.w2)) != Status::kOk ||
        (st = w.linear(name(names.w3), H, D, &y.w3, &s.w3)) != Status::kOk) {
      return st;
    }
    if ((st = map_family(w, names, l, &y)) != Status::kOk) return st;
  }
  return Status::kOk;
}

inline Status check_options(const LoadOptions& o) {
  if (static_cast<unsigned>(o.weights) > static_cast<unsigned>(WeightType::kInt4)) {
    return fail(Status::kInvalidArgument, "loader: unknown weight type %d", static_cast<int>(o.weights));
  }
  return Status::kOk;
}

}  // namespace model_detail

// A GGUF file already in memory (`bytes` must outlive `out`'s weights).
inline Status load_gguf_memory(const void* bytes, size_t size, const LoadOptions& o, LoadedModel* out) {
  if (!out) return fail(Status::kNullPointer, "gguf: no output");
  Status st = model_detail::check_options(o);
  if (st != Status::kOk) return st;
  GgufFile f;
  if ((st = parse_gguf(bytes, size, &f)) != Status::kOk) return st;
  const GgufValue* a = f.find("general.architecture");
  if (!a || a->type != static_cast<uint32_t>(GgufValueType::kString)) {
    return fail(Status::kInvalidArgument, "gguf: general.architecture is missing or not a string");
  }
  const Architecture* arch = find_architecture(ModelFormat::kGguf, a->string());
  if (!arch) {
    return fail(Status::kUnsupported, "gguf: architecture '%s' is not supported (llama, qwen2, qwen3, gemma2 and gemma3 are)",
                a->string().c_str());
  }
  // llama.cpp stores Llama 3.1's RoPE scaling as a tensor of per-frequency
  // factors, not as metadata: running without them would be another model.
  if (f.tensor("rope_freqs.weight")) {
    return fail(Status::kUnsupported, "gguf: rope_freqs.weight (per-frequency RoPE factors, Llama 3.1's scaling) is not read");
  }
  const GgufTensorInfo* embd = f.tensor(arch->names->embedding);
  if (!embd || embd->dims != 2) return fail(Status::kInvalidArgument, "gguf: tensor %s is missing or not 2-D", arch->names->embedding);
  LoadedModel m;
  m.format = ModelFormat::kGguf;
  m.architecture = arch->name;
  if ((st = gguf_llama_config(f, *arch, static_cast<size_t>(embd->ne[1]), o.max_seq_len, &m.config)) != Status::kOk) return st;
  const StoredTensors tensors = model_detail::from_gguf(f);
  m.config.tied_embeddings = !tensors.count(arch->names->classifier);
  if ((st = model_detail::map_llama(tensors, *arch->names, o, &m)) != Status::kOk) return st;
  if (const GgufValue* tok = f.find("tokenizer.ggml.tokens")) {
    if ((st = gguf_strings(f, *tok, &m.tokens)) != Status::kOk) return st;
    if (m.tokens.size() != m.config.vocab) m.tokens.clear();  // not this model's: ids only
  }
  if (const GgufValue* t = f.find("tokenizer.ggml.model")) m.tokenizer = t->string();
  const auto id = [&](const char* key) {
    const GgufValue* v = f.find(key);
    return v && v->is_integer() && v->u < m.config.vocab ? static_cast<int32_t>(v->u) : -1;
  };
  m.bos = id("tokenizer.ggml.bos_token_id");
  m.eos = id("tokenizer.ggml.eos_token_id");
  *out = std::move(m);
  return Status::kOk;
}

// A GGUF file, memory-mapped.
inline Status load_gguf(const char* path, const LoadOptions& o, LoadedModel* out) {
  if (!out) return fail(Status::kNullPointer, "gguf: no output");
  MappedFile file;
  Status st = file.open(path);
  if (st != Status::kOk) return st;
  LoadedModel m;
  if ((st = load_gguf_memory(file.data(), file.size(), o, &m)) != Status::kOk) return st;
  m.files.push_back(std::move(file));  // the mapping's address does not move with it
  *out = std::move(m);
  return Status::kOk;
}

// A safetensors checkpoint in memory: its config.json text and its files
// (shards; each must outlive `out`'s weights).
struct MemoryFile {
  const void* bytes;
  size_t size;
};
inline Status load_safetensors_memory(const char* config_json, size_t config_size, const MemoryFile* files, size_t num_files,
                                      const LoadOptions& o, LoadedModel* out) {
  if (!out) return fail(Status::kNullPointer, "safetensors: no output");
  if (!files && num_files) return fail(Status::kNullPointer, "safetensors: no files");
  Status st = model_detail::check_options(o);
  if (st != Status::kOk) return st;
  JsonValue cfg;
  if ((st = parse_json(config_json, config_size, &cfg)) != Status::kOk) {
    const std::string why = last_error();
    return fail(st, "config.json: %s", why.c_str());
  }
  const Architecture* arch = nullptr;
  if ((st = hf_architecture(cfg, &arch)) != Status::kOk) return st;
  LoadedModel m;
  m.format = ModelFormat::kSafetensors;
  m.architecture = arch->name;
  if ((st = hf_llama_config(cfg, *arch, o.max_seq_len, &m.config)) != Status::kOk) return st;
  StoredTensors tensors;
  for (size_t i = 0; i < num_files; ++i) {
    SafetensorsFile f;
    if ((st = parse_safetensors(files[i].bytes, files[i].size, &f)) != Status::kOk) return st;
    if ((st = model_detail::add_safetensors(f, i, &tensors)) != Status::kOk) return st;
  }
  if ((st = model_detail::map_llama(tensors, *arch->names, o, &m)) != Status::kOk) return st;
  *out = std::move(m);
  return Status::kOk;
}

namespace model_detail {

inline Status read_text(const std::string& path, std::string* out) {
  MappedFile f;
  const Status st = f.open(path.c_str());
  if (st != Status::kOk) return st;
  out->assign(reinterpret_cast<const char*>(f.data()), f.size());
  return Status::kOk;
}

}  // namespace model_detail

// A Hugging Face checkpoint directory: config.json and model.safetensors, or
// the shards model.safetensors.index.json lists in its weight_map.
inline Status load_safetensors(const char* dir, const LoadOptions& o, LoadedModel* out) {
  if (!dir || !out) return fail(Status::kNullPointer, "safetensors: no directory or no output");
  const std::string root = std::string(dir) + "/";
  std::string config, index;
  Status st = model_detail::read_text(root + "config.json", &config);
  if (st != Status::kOk) return st;
  std::vector<std::string> shards;
  struct stat sb;
  if (::stat((root + "model.safetensors.index.json").c_str(), &sb) == 0) {
    if ((st = model_detail::read_text(root + "model.safetensors.index.json", &index)) != Status::kOk) return st;
    JsonValue idx;
    if ((st = parse_json(index.data(), index.size(), &idx)) != Status::kOk) {
      const std::string why = last_error();
      return fail(st, "model.safetensors.index.json: %s", why.c_str());
    }
    const JsonValue* map = idx.get("weight_map");
    if (!map || map->kind != JsonValue::kObject) return fail(Status::kInvalidArgument, "model.safetensors.index.json: no weight_map");
    for (const JsonValue& v : map->items) {
      if (v.kind != JsonValue::kString || v.text.find('/') != std::string::npos) {
        return fail(Status::kInvalidArgument, "model.safetensors.index.json: a weight_map entry is not a file name");
      }
      bool seen = false;
      for (const std::string& s : shards) seen = seen || s == v.text;
      if (!seen) shards.push_back(v.text);
    }
  } else {
    shards.push_back("model.safetensors");
  }
  std::vector<MappedFile> files(shards.size());
  std::vector<MemoryFile> mem;
  for (size_t i = 0; i < shards.size(); ++i) {
    if ((st = files[i].open((root + shards[i]).c_str())) != Status::kOk) return st;
    mem.push_back(MemoryFile{files[i].data(), files[i].size()});
  }
  LoadedModel m;
  if ((st = load_safetensors_memory(config.data(), config.size(), mem.data(), mem.size(), o, &m)) != Status::kOk) return st;
  for (MappedFile& f : files) m.files.push_back(std::move(f));
  *out = std::move(m);
  return Status::kOk;
}

// A GGUF file (a path that is not a directory) or a Hugging Face checkpoint
// directory.
inline Status load_model(const char* path, const LoadOptions& o, LoadedModel* out) {
  struct stat sb;
  if (!path || ::stat(path, &sb) != 0) return fail(Status::kInvalidArgument, "loader: cannot open %s", path ? path : "(null)");
  return S_ISDIR(sb.st_mode) ? load_safetensors(path, o, out) : load_gguf(path, o, out);
}

}  // namespace tilekit

#endif  // TILEKIT_LOADERS_MODEL_H_

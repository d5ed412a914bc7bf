// A loader: reads checkpoints in llama2.c's published format into the Llama
// description of graph/llama.h (LlamaConfig, LlamaWeights; LlamaModel builds
// from them), and writes them. The format (karpathy/llama2.c, run.c):
//   header: 7 int32: dim, hidden_dim, n_layers, n_heads, n_kv_heads,
//           vocab_size (negative: the classifier is stored, not shared), seq_len
//   fp32 arrays, in order: token_embedding [vocab][dim], rms_att [layers][dim],
//   wq [layers][heads·hs][dim], wk [layers][kv·hs][dim], wv [layers][kv·hs][dim],
//   wo [layers][dim][heads·hs], rms_ffn [layers][dim], w1 [layers][hidden][dim],
//   w2 [layers][dim][hidden], w3 [layers][hidden][dim], rms_final [dim],
//   two legacy RoPE tables of seq_len·hs/2 floats each (skipped),
//   and wcls [vocab][dim] when vocab_size was negative.
// RoPE is interleaved with theta 10000, RMSNorm eps 1e-5 (run.c's constants).
#ifndef TILEKIT_LOADERS_LLAMA2C_H_
#define TILEKIT_LOADERS_LLAMA2C_H_

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "tilekit/graph/llama.h"

namespace tilekit {

struct Llama2cHeader {
  int32_t dim = 0, hidden_dim = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0, vocab_size = 0, seq_len = 0;
};

// The header as a LlamaConfig (validated).
inline Status llama2c_config(const Llama2cHeader& h, LlamaConfig* c) {
  if (h.dim <= 0 || h.hidden_dim <= 0 || h.n_layers <= 0 || h.n_heads <= 0 || h.n_kv_heads <= 0 || h.vocab_size == 0 ||
      h.seq_len <= 0) {
    return fail(Status::kInvalidArgument, "llama2c: header has a size <= 0 (dim %d hidden %d layers %d heads %d kv %d vocab %d seq %d)",
                h.dim, h.hidden_dim, h.n_layers, h.n_heads, h.n_kv_heads, h.vocab_size, h.seq_len);
  }
  LlamaConfig out;
  out.dim = static_cast<size_t>(h.dim);
  out.hidden = static_cast<size_t>(h.hidden_dim);
  out.layers = static_cast<size_t>(h.n_layers);
  out.heads = static_cast<size_t>(h.n_heads);
  out.kv_heads = static_cast<size_t>(h.n_kv_heads);
  out.vocab = static_cast<size_t>(h.vocab_size < 0 ? -static_cast<int64_t>(h.vocab_size) : h.vocab_size);
  out.max_seq_len = static_cast<size_t>(h.seq_len);
  out.norm_eps = 1e-5f;
  out.rope.pairing = RopePairing::kInterleaved;
  out.rope.theta = 10000.0;
  out.tied_embeddings = h.vocab_size > 0;
  const Status st = check_llama_config(out);
  if (st != Status::kOk) return st;
  *c = out;
  return Status::kOk;
}

// Floats after the header of a checkpoint of this config (overflow-checked:
// false when it does not fit in size_t).
inline bool llama2c_floats(const LlamaConfig& c, size_t* count) {
  const size_t hs = c.head_dim(), qd = c.heads * hs, kvd = c.kv_heads * hs;
  const double approx = static_cast<double>(c.vocab) * c.dim * 2 +
                        static_cast<double>(c.layers) * (2.0 * c.dim + 2.0 * c.dim * qd + 2.0 * c.dim * kvd + 3.0 * c.dim * c.hidden) +
                        c.dim + static_cast<double>(c.max_seq_len) * hs;
  if (approx > static_cast<double>(SIZE_MAX / 8)) return false;
  size_t n = c.vocab * c.dim;
  n += c.layers * (2 * c.dim + c.dim * qd + 2 * c.dim * kvd + qd * c.dim + 3 * c.dim * c.hidden);
  n += c.dim + c.max_seq_len * hs;  // final norm, the two legacy half-tables
  if (!c.tied_embeddings) n += c.vocab * c.dim;
  *count = n;
  return true;
}

// A loaded checkpoint: its config, and weights pointing into `data`.
struct Llama2cCheckpoint {
  LlamaConfig config;
  LlamaWeights weights;
  std::vector<float> data;
};

// Points `weights` at the arrays of a checkpoint body laid out as above.
inline void llama2c_weights(const LlamaConfig& c, const float* p, LlamaWeights* w) {
  const size_t hs = c.head_dim(), qd = c.heads * hs, kvd = c.kv_heads * hs, L = c.layers, D = c.dim, H = c.hidden;
  w->embedding = p;
  const float* rms_att = p + c.vocab * D;
  const float* wq = rms_att + L * D;
  const float* wk = wq + L * D * qd;
  const float* wv = wk + L * D * kvd;
  const float* wo = wv + L * D * kvd;
  const float* rms_ffn = wo + L * qd * D;
  const float* w1 = rms_ffn + L * D;
  const float* w2 = w1 + L * D * H;
  const float* w3 = w2 + L * H * D;
  w->final_norm = w3 + L * D * H;
  w->classifier = c.tied_embeddings ? p : w->final_norm + D + c.max_seq_len * hs;
  w->layers.assign(L, LlamaLayerWeights{});
  for (size_t l = 0; l < L; ++l) {
    LlamaLayerWeights& lw = w->layers[l];
    lw.attn_norm = rms_att + l * D;
    lw.wq = wq + l * D * qd;
    lw.wk = wk + l * D * kvd;
    lw.wv = wv + l * D * kvd;
    lw.wo = wo + l * qd * D;
    lw.ffn_norm = rms_ffn + l * D;
    lw.w1 = w1 + l * D * H;
    lw.w2 = w2 + l * H * D;
    lw.w3 = w3 + l * D * H;
  }
}

// The body's size check shared by the readers: the header's config and float
// count, and the refusal of a body whose size is not the header's (a truncated
// download, or a file of another format). It runs before anything is
// allocated, so a header claiming 2^40 floats in a 100-byte file costs nothing.
inline Status llama2c_check(const int32_t raw[7], size_t body_bytes, const char* name, LlamaConfig* c, size_t* count) {
  Llama2cHeader h;
  h.dim = raw[0], h.hidden_dim = raw[1], h.n_layers = raw[2], h.n_heads = raw[3], h.n_kv_heads = raw[4];
  h.vocab_size = raw[5], h.seq_len = raw[6];
  const Status st = llama2c_config(h, c);
  if (st != Status::kOk) return st;
  if (!llama2c_floats(*c, count)) return fail(Status::kOverflow, "llama2c: %s: the header's sizes overflow", name);
  if (body_bytes != *count * sizeof(float)) {
    return fail(Status::kShapeMismatch, "llama2c: %s has %zu bytes, its header says %zu (truncated or not this format)",
                name, 28 + body_bytes, 28 + *count * sizeof(float));
  }
  return Status::kOk;
}

// Reads a checkpoint from `size` bytes in memory (a mapped or embedded file).
inline Status load_llama2c_memory(const void* bytes, size_t size, Llama2cCheckpoint* out) {
  if (!bytes || size < 28) return fail(Status::kInvalidArgument, "llama2c: memory is shorter than the 28-byte header");
  int32_t raw[7];
  std::memcpy(raw, bytes, sizeof(raw));
  Llama2cCheckpoint ck;
  size_t count = 0;
  const Status st = llama2c_check(raw, size - 28, "memory", &ck.config, &count);
  if (st != Status::kOk) return st;
  ck.data.resize(count);
  if (count) std::memcpy(ck.data.data(), static_cast<const unsigned char*>(bytes) + 28, count * sizeof(float));
  llama2c_weights(ck.config, ck.data.data(), &ck.weights);
  *out = std::move(ck);  // the move keeps the vector's buffer, so the pointers stay valid
  return Status::kOk;
}

// Reads a checkpoint from a seekable stream, from its position to its end
// (`name` is for messages); the stream stays open.
inline Status load_llama2c_stream(std::FILE* f, const char* name, Llama2cCheckpoint* out) {
  if (!name) name = "(stream)";
  if (!f) return fail(Status::kNullPointer, "llama2c: %s: no stream", name);
  const long start = std::ftell(f);
  int32_t raw[7];
  if (start < 0 || std::fread(raw, sizeof(int32_t), 7, f) != 7) {
    return fail(Status::kInvalidArgument, "llama2c: %s is shorter than the 28-byte header", name);
  }
  const long body = std::ftell(f);
  if (body < 0 || std::fseek(f, 0, SEEK_END) != 0) return fail(Status::kInvalidArgument, "llama2c: %s cannot seek", name);
  const long end = std::ftell(f);
  if (end < body || std::fseek(f, body, SEEK_SET) != 0) return fail(Status::kInvalidArgument, "llama2c: %s cannot seek", name);
  Llama2cCheckpoint ck;
  size_t count = 0;
  const Status st = llama2c_check(raw, static_cast<size_t>(end - body), name, &ck.config, &count);
  if (st != Status::kOk) return st;
  ck.data.resize(count);
  const size_t read = std::fread(ck.data.data(), sizeof(float), count, f);
  if (read != count) return fail(Status::kInvalidArgument, "llama2c: %s: read %zu of %zu floats", name, read, count);
  llama2c_weights(ck.config, ck.data.data(), &ck.weights);
  *out = std::move(ck);  // the move keeps the vector's buffer, so the pointers stay valid
  return Status::kOk;
}

// Reads a whole checkpoint file.
inline Status load_llama2c(const char* path, Llama2cCheckpoint* out) {
  std::FILE* f = path ? std::fopen(path, "rb") : nullptr;
  if (!f) return fail(Status::kInvalidArgument, "llama2c: cannot open %s", path ? path : "(null)");
  const Status st = load_llama2c_stream(f, path, out);
  std::fclose(f);
  return st;
}

// Writes a checkpoint: the header, then `count` floats laid out as above.
inline Status save_llama2c(const char* path, const Llama2cHeader& h, const float* data, size_t count) {
  std::FILE* f = path ? std::fopen(path, "wb") : nullptr;
  if (!f) return fail(Status::kInvalidArgument, "llama2c: cannot create %s", path ? path : "(null)");
  const int32_t raw[7] = {h.dim, h.hidden_dim, h.n_layers, h.n_heads, h.n_kv_heads, h.vocab_size, h.seq_len};
  const bool ok = std::fwrite(raw, sizeof(int32_t), 7, f) == 7 && std::fwrite(data, sizeof(float), count, f) == count;
  if (std::fclose(f) != 0 || !ok) return fail(Status::kInvalidArgument, "llama2c: cannot write %s", path);
  return Status::kOk;
}

}  // namespace tilekit

#endif  // TILEKIT_LOADERS_LLAMA2C_H_

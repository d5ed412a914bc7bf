// GGUF and safetensors loaders (loaders/model.h): random Llama models written
// in both formats by loaders/writers.h, read back, built and run on every
// path against the fp64 reference of tests/llama_reference.h; the RoPE
// pairing each format implies (a GGUF file written without llama.cpp's Q/K
// permutation must fail the same check); tied and untied classifiers; F32,
// F16, BF16 and Q8_0 / Q4_0 tensors, the latter packed from their blocks as
// stored; and refusals: truncation at every cut point of the header and many
// of the data, bad magic and version, unknown and unsupported types, missing
// tensors, wrong shapes, absurd counts and sizes, duplicates, overlaps.
//
// Error bounds: the loaders add no arithmetic of their own. Every stored
// value reaches the model exactly (F16 and BF16 widen exactly, a Q8_0 / Q4_0
// value is d·q with d a half and |q| <= 128, exact in fp32, or is packed as
// stored), so the reference runs on the very values the file holds and
// carries the bound llama_reference.h derives for the kernels' own roundings
// (fp32: an inner product's u·√n·Σ|x·w|; quantized weights: roundings scaled
// by (|q| + 2z)·d per product, plus the activations' quantization where the
// path's kernel quantizes them), at kSigmas standard deviations.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <unistd.h>

#include "harness.h"
#include "llama_reference.h"
#include "quant_reference.h"
#include "tilekit/loaders/llama2c.h"
#include "tilekit/loaders/model.h"
#include "tilekit/loaders/writers.h"
#include "tilekit/tilekit.h"

namespace tilekit {
namespace {

using testing::EV;
using testing::FailsWith;
using testing::kSigmas;
using testing::PathTest;
using testing::Rng;
using testing::WithinBound;

// K of every linear a multiple of 32 (GGUF blocks): dim 64, hidden 96, q/kv
// widths 64 / 32 (GQA 4 / 2 heads of 16); vocab 97 (a prime number of rows).
LlamaConfig Config(bool tied) {
  LlamaConfig c;
  c.dim = 64;
  c.hidden = 96;
  c.layers = 2;
  c.heads = 4;
  c.kv_heads = 2;
  c.vocab = 97;
  c.max_seq_len = 64;
  c.norm_eps = 1e-5f;
  c.rope.pairing = RopePairing::kHalfSplit;  // Hugging Face's: the weights are in HF's row order
  c.rope.theta = 10000.0;
  c.tied_embeddings = tied;
  return c;
}

// Floats of a model in llama2.c's buffer layout, then per layer the family
// tensors its config switches on: bq, bk, bv; q_norm, k_norm; attn_out_norm,
// ffn_out_norm.
size_t ModelFloats(const LlamaConfig& c) {
  size_t count = 0;
  EXPECT_TRUE(llama2c_floats(c, &count));
  const size_t hd = c.head_dim();
  const size_t extra = (c.qkv_bias ? (c.heads + 2 * c.kv_heads) * hd : 0) + (c.qk_norm ? 2 * hd : 0) + (c.sandwich_norms ? 2 * c.dim : 0);
  return count + c.layers * extra;
}

// Points `w` into a buffer of ModelFloats(c).
void PointWeights(const LlamaConfig& c, const float* p, LlamaWeights* w) {
  size_t count = 0;
  EXPECT_TRUE(llama2c_floats(c, &count));
  llama2c_weights(c, p, w);
  const float* e = p + count;
  const size_t hd = c.head_dim();
  const auto take = [&e](size_t n) { const float* at = e; e += n; return at; };
  for (LlamaLayerWeights& y : w->layers) {
    if (c.qkv_bias) y.bq = take(c.heads * hd), y.bk = take(c.kv_heads * hd), y.bv = take(c.kv_heads * hd);
    if (c.qk_norm) y.q_norm = take(hd), y.k_norm = take(hd);
    if (c.sandwich_norms) y.attn_out_norm = take(c.dim), y.ffn_out_norm = take(c.dim);
  }
}

// A random model in one allocation, pointers in: llama_reference.h's values,
// biases in [-0.5, 0.5], norms scaling by [0.5, 1.5] (stored as w - 1 where
// the family scales by 1 + w).
struct RandomModel {
  LlamaConfig config;
  std::vector<float> data;
  LlamaWeights weights;
  RandomModel(const LlamaConfig& c, uint64_t stream) : config(c) {
    Rng rng(stream);
    data.resize(ModelFloats(c));
    PointWeights(c, data.data(), &weights);
    testing::FillLlamaWeights(c, weights, [&](float lo, float hi) { return rng.uniform(lo, hi); });
    const auto fill = [&](const float* p, size_t n, float lo) {
      for (size_t i = 0; i < n; ++i) const_cast<float*>(p)[i] = rng.uniform(lo, lo + 1.f);
    };
    const size_t hd = c.head_dim();
    std::vector<std::pair<const float*, size_t>> norms = {{weights.final_norm, c.dim}};
    for (const LlamaLayerWeights& y : weights.layers) {
      if (c.qkv_bias) fill(y.bq, c.heads * hd, -0.5f), fill(y.bk, c.kv_heads * hd, -0.5f), fill(y.bv, c.kv_heads * hd, -0.5f);
      if (c.qk_norm) fill(y.q_norm, hd, 0.5f), fill(y.k_norm, hd, 0.5f), norms.push_back({y.q_norm, hd}), norms.push_back({y.k_norm, hd});
      if (c.sandwich_norms) {
        fill(y.attn_out_norm, c.dim, 0.5f), fill(y.ffn_out_norm, c.dim, 0.5f);
        norms.push_back({y.attn_out_norm, c.dim}), norms.push_back({y.ffn_out_norm, c.dim});
      }
      norms.push_back({y.attn_norm, c.dim}), norms.push_back({y.ffn_norm, c.dim});
    }
    if (c.norm_weight_offset) {
      for (const auto& n : norms) {
        for (size_t i = 0; i < n.second; ++i) const_cast<float*>(n.first)[i] -= 1.f;  // exact: Sterbenz
      }
    }
  }
};

// One tensor of the model: where it lives in the buffer, its [n][k] shape
// (k = 0: a vector), its names, and the heads whose rows llama.cpp permutes
// (Q: heads, K: kv_heads; 0: not permuted).
struct Role {
  const float* w;
  size_t n, k;
  std::string gguf, hf;
  size_t permute_heads;
  bool norm = false;  // an RMSNorm's weights (llama.cpp stores Gemma's as 1 + w)
};

std::vector<Role> Roles(const LlamaConfig& c, const LlamaWeights& w) {
  const size_t D = c.dim, H = c.hidden, qd = c.heads * c.head_dim(), kvd = c.kv_heads * c.head_dim();
  std::vector<Role> r = {{w.embedding, c.vocab, D, "token_embd.weight", "model.embed_tokens.weight", 0},
                         {w.final_norm, D, 0, "output_norm.weight", "model.norm.weight", 0, true}};
  if (!c.tied_embeddings) r.push_back({w.classifier, c.vocab, D, "output.weight", "lm_head.weight", 0});
  for (size_t l = 0; l < c.layers; ++l) {
    const LlamaLayerWeights& y = w.layers[l];
    const std::string g = "blk." + std::to_string(l) + ".", h = "model.layers." + std::to_string(l) + ".";
    r.push_back({y.attn_norm, D, 0, g + "attn_norm.weight", h + "input_layernorm.weight", 0, true});
    r.push_back({y.wq, qd, D, g + "attn_q.weight", h + "self_attn.q_proj.weight", c.heads});
    r.push_back({y.wk, kvd, D, g + "attn_k.weight", h + "self_attn.k_proj.weight", c.kv_heads});
    r.push_back({y.wv, kvd, D, g + "attn_v.weight", h + "self_attn.v_proj.weight", 0});
    r.push_back({y.wo, D, qd, g + "attn_output.weight", h + "self_attn.o_proj.weight", 0});
    // Gemma's MLP input norm is HF's pre_feedforward_layernorm, its
    // post_attention_layernorm the sandwich norm after attention.
    r.push_back({y.ffn_norm, D, 0, g + "ffn_norm.weight",
                 h + (c.sandwich_norms ? "pre_feedforward_layernorm.weight" : "post_attention_layernorm.weight"), 0, true});
    r.push_back({y.w1, H, D, g + "ffn_gate.weight", h + "mlp.gate_proj.weight", 0});
    r.push_back({y.w2, D, H, g + "ffn_down.weight", h + "mlp.down_proj.weight", 0});
    r.push_back({y.w3, H, D, g + "ffn_up.weight", h + "mlp.up_proj.weight", 0});
    const size_t hd = c.head_dim();
    if (c.qkv_bias) {
      r.push_back({y.bq, qd, 0, g + "attn_q.bias", h + "self_attn.q_proj.bias", 0});
      r.push_back({y.bk, kvd, 0, g + "attn_k.bias", h + "self_attn.k_proj.bias", 0});
      r.push_back({y.bv, kvd, 0, g + "attn_v.bias", h + "self_attn.v_proj.bias", 0});
    }
    if (c.qk_norm) {
      r.push_back({y.q_norm, hd, 0, g + "attn_q_norm.weight", h + "self_attn.q_norm.weight", 0, true});
      r.push_back({y.k_norm, hd, 0, g + "attn_k_norm.weight", h + "self_attn.k_norm.weight", 0, true});
    }
    if (c.sandwich_norms) {
      r.push_back({y.attn_out_norm, D, 0, g + "post_attention_norm.weight", h + "post_attention_layernorm.weight", 0, true});
      r.push_back({y.ffn_out_norm, D, 0, g + "post_ffw_norm.weight", h + "post_feedforward_layernorm.weight", 0, true});
    }
  }
  return r;
}

// llama.cpp's convert permutation of Q / K rows (convert_hf_to_gguf.py,
// LlamaModel.permute): per head, row a·hd/2 + j (a in {0, 1}) moves to
// 2j + a, so HF's half-split pairs (j, j + hd/2) become adjacent pairs.
// inverse: the way back.
std::vector<float> PermuteRows(const float* w, size_t n, size_t k, size_t heads, bool inverse = false) {
  std::vector<float> out(n * k);
  const size_t hd = n / heads;
  for (size_t h = 0; h < heads; ++h) {
    for (size_t j = 0; j < hd / 2; ++j) {
      for (size_t a = 0; a < 2; ++a) {
        const size_t hf = h * hd + a * hd / 2 + j, gg = h * hd + 2 * j + a;
        std::memcpy(&out[(inverse ? hf : gg) * k], &w[(inverse ? gg : hf) * k], k * sizeof(float));
      }
    }
  }
  return out;
}

// How tensors are stored in a written file: every tensor in `type`, except
// that GGUF keeps norms in F32 (as llama.cpp's convert does).
enum class Stored { kF32, kF16, kBf16, kQ8_0, kQ4_0 };
uint32_t GgmlId(Stored s) {
  switch (s) {
    case Stored::kF32: return 0;
    case Stored::kF16: return 1;
    case Stored::kBf16: return 30;
    case Stored::kQ8_0: return 8;
    case Stored::kQ4_0: return 2;
  }
  return 0;
}

// A tensor's stored bytes, and the values (and, for quantized blocks, the
// kernels' rounding magnitudes (|q| + 2z)·d) they hold, decoded independently
// of the loader (quant_reference.h's arithmetic half decode).
struct Encoded {
  std::vector<unsigned char> bytes;
  std::vector<float> values, mag;
};
Encoded Encode(const std::vector<float>& x, size_t n, size_t k, Stored s) {
  Encoded e;
  const size_t count = x.size(), kk = k ? k : n, rows = k ? n : 1;
  e.values.resize(count);
  e.mag.assign(count, 0.f);
  switch (s) {
    case Stored::kF32:
      e.bytes = as_bytes(x);
      e.values = x;
      break;
    case Stored::kF16:
    case Stored::kBf16: {
      std::vector<uint16_t> h(count);
      for (size_t i = 0; i < count; ++i) {
        h[i] = s == Stored::kF16 ? f32_to_f16(x[i]) : f32_to_bf16(x[i]).bits;
        const uint32_t b = static_cast<uint32_t>(h[i]) << 16;
        float bf;
        std::memcpy(&bf, &b, 4);
        e.values[i] = s == Stored::kF16 ? static_cast<float>(testing::HalfValue(h[i])) : bf;
      }
      e.bytes = as_bytes(h);
      break;
    }
    case Stored::kQ8_0:
    case Stored::kQ4_0: {
      const bool q8 = s == Stored::kQ8_0;
      e.bytes = q8 ? quantize_q8_0(x.data(), rows, kk) : quantize_q4_0(x.data(), rows, kk);
      const SourceType t = q8 ? SourceType::kGgufQ8_0 : SourceType::kGgufQ4_0;
      const double z = q8 ? 128 : 8;
      for (size_t r = 0; r < rows; ++r) {
        for (size_t i = 0; i < kk; ++i) {
          uint16_t d;
          int q;
          testing::GgufBlockValue(e.bytes.data(), t, kk / 32 * (q8 ? 34 : 18), r, i, &d, &q);
          e.values[r * kk + i] = static_cast<float>(testing::HalfValue(d) * q);
          e.mag[r * kk + i] = static_cast<float>((std::abs(q) + 2 * z) * std::fabs(testing::HalfValue(d)));
        }
      }
      break;
    }
  }
  return e;
}

// A written file and the model its values make, in HF's row order with HF's
// pairing (the reference's model), quantization magnitudes beside it.
struct Written {
  std::vector<unsigned char> file;
  std::string config_json;  // safetensors
  LlamaConfig config;       // the reference's
  std::vector<float> data, mag, classifier, classifier_mag;
  LlamaWeights weights, magnitudes;
};

// What a model packs from `w`'s values when it quantizes them itself (a
// Q8_0 file run with int4 weights: dequantized exactly, then quantized by
// pack_weights' documented rule, quant_reference.h): every linear requantized,
// the classifier too (untied from the fp32 table the lookup reads).
std::unique_ptr<Written> Requantized(const Written& w, WeightType type) {
  auto out = std::make_unique<Written>();
  out->config = w.config;
  out->data = w.data;
  out->mag.assign(w.data.size(), 0.f);
  PointWeights(w.config, out->data.data(), &out->weights);
  PointWeights(w.config, out->mag.data(), &out->magnitudes);
  const auto quantize = [&](const float* src, size_t n, size_t k, float* values, float* mag) {
    const testing::Dequantized d = testing::Quantize(src, k, n, SourceLayout::kNK, type, 32);
    std::copy(d.w.begin(), d.w.end(), values);
    std::copy(d.mag.begin(), d.mag.end(), mag);
  };
  for (const Role& r : Roles(w.config, w.weights)) {
    if (!r.k || r.w == w.weights.embedding) continue;
    const size_t at = static_cast<size_t>(r.w - w.data.data());
    quantize(r.w, r.n, r.k, out->data.data() + at, out->mag.data() + at);
  }
  if (w.config.tied_embeddings) {
    const size_t n = w.config.vocab * w.config.dim;
    out->classifier.resize(n);
    out->classifier_mag.resize(n);
    quantize(w.weights.embedding, w.config.vocab, w.config.dim, out->classifier.data(), out->classifier_mag.data());
    out->weights.classifier = out->classifier.data();
    out->magnitudes.classifier = out->classifier_mag.data();
    out->config.tied_embeddings = false;
  }
  return out;
}

void SetReference(const RandomModel& m, Written* out) {
  out->config = m.config;
  out->data = m.data;
  out->mag.assign(m.data.size(), 0.f);
  PointWeights(m.config, out->data.data(), &out->weights);
  PointWeights(m.config, out->mag.data(), &out->magnitudes);
}

// Stores the decoded values (and magnitudes) of role `r` into the reference's buffers.
void Keep(const RandomModel& m, const Role& r, const std::vector<float>& values, const std::vector<float>& mag, Written* out) {
  const size_t at = static_cast<size_t>(r.w - m.data.data());
  std::copy(values.begin(), values.end(), out->data.begin() + at);
  std::copy(mag.begin(), mag.end(), out->mag.begin() + at);
}

struct GgufSpec {
  Stored type = Stored::kF32;
  const char* arch = "llama";
  bool permute = true;     // llama.cpp's Q/K permutation of llama files (false: a wrongly converted file)
  bool norm_shift = true;  // Gemma's norms stored as 1 + w, as llama.cpp's convert does (false: wrongly converted)
  size_t alignment = 32;
  std::string skip;  // a tensor left out
};

// A file as llama.cpp's convert writes it: `spec.arch`'s keys (Gemma's
// window, softcaps and head_dim; its pattern, local theta and attention
// scale are the architecture's: the reference takes llama.cpp's), Q / K rows
// permuted for llama only, Gemma's norms as 1 + w in F32 (the reference runs
// on those values, with plain norms).
Written WriteGguf(const RandomModel& m, const GgufSpec& spec) {
  Written out;
  SetReference(m, &out);
  const LlamaConfig& c = m.config;
  const bool llama = std::string(spec.arch) == "llama", shift = c.norm_weight_offset && spec.norm_shift;
  if (c.norm_weight_offset) out.config.query_pre_attn_scalar = static_cast<float>(c.head_dim());
  if (shift) out.config.norm_weight_offset = false;
  GgufWriter w(spec.alignment);
  add_gguf_model_keys(w, c, spec.arch);
  w.add_u32("general.alignment", static_cast<uint32_t>(spec.alignment));
  w.add_string("tokenizer.ggml.model", "llama");
  std::vector<std::string> tokens(c.vocab);
  for (size_t i = 0; i < c.vocab; ++i) tokens[i] = "t" + std::to_string(i);
  w.add_strings("tokenizer.ggml.tokens", tokens);
  w.add_u32("tokenizer.ggml.bos_token_id", 1);
  for (const Role& r : Roles(c, m.weights)) {
    if (r.gguf == spec.skip) continue;
    const size_t count = r.k ? r.n * r.k : r.n;
    std::vector<float> x(r.w, r.w + count);
    const bool permute = r.permute_heads && spec.permute && llama;
    if (permute) x = PermuteRows(r.w, r.n, r.k, r.permute_heads);
    if (r.norm && shift) {
      for (float& v : x) v += 1.f;
    }
    const Stored s = r.k ? spec.type : Stored::kF32;
    Encoded e = Encode(x, r.n, r.k, s);
    std::vector<float> values = e.values, mag = e.mag;
    if (permute) {  // back to HF's order for the reference
      values = PermuteRows(e.values.data(), r.n, r.k, r.permute_heads, true);
      mag = PermuteRows(e.mag.data(), r.n, r.k, r.permute_heads, true);
    }
    Keep(m, r, values, mag, &out);
    w.add_tensor(r.gguf, GgmlId(s), r.k ? std::vector<uint64_t>{r.k, r.n} : std::vector<uint64_t>{r.n}, std::move(e.bytes));
  }
  out.file = w.bytes();
  return out;
}

std::string HfConfig(const LlamaConfig& c, const char* arch = "LlamaForCausalLM", const std::string& extra = "") {
  return hf_config_json(c, arch, extra);
}

Written WriteSafetensors(const RandomModel& m, Stored type, const char* arch = "LlamaForCausalLM", const std::string& skip = "") {
  Written out;
  SetReference(m, &out);
  SafetensorsWriter w;
  w.add_metadata("format", "pt");
  const char* dtype = type == Stored::kF32 ? "F32" : type == Stored::kF16 ? "F16" : "BF16";
  for (const Role& r : Roles(m.config, m.weights)) {
    if (r.hf == skip) continue;
    const size_t count = r.k ? r.n * r.k : r.n;
    Encoded e = Encode(std::vector<float>(r.w, r.w + count), r.n, r.k, type);
    Keep(m, r, e.values, e.mag, &out);
    w.add(r.hf, dtype, r.k ? std::vector<size_t>{r.n, r.k} : std::vector<size_t>{r.n}, std::move(e.bytes));
  }
  out.file = w.bytes();
  out.config_json = HfConfig(m.config, arch);
  return out;
}

// Runs a prompt then greedy decode steps on the loaded model and the
// reference; returns the largest error / bound seen (so a caller can also
// assert a failure), EXPECTing each within bound when `expect`.
double RunAgainstReference(const LoadedModel& loaded, const Written& w, WeightType type, bool expect, uint64_t stream) {
  LlamaOptions o;
  o.max_tokens = 8;
  o.weights = type;
  LlamaModel model;
  EXPECT_EQ(model.build(loaded.config, loaded.weights, o), Status::kOk) << last_error();
  // The reference's weights: the file's values; quantized weights carry
  // their magnitudes, and whether the path's kernel quantizes x.
  testing::QuantizedBound bound;
  LlamaConfig rc = w.config;
  LlamaWeights rw = w.weights;
  if (is_quantized(type)) {
    bound.magnitudes = w.magnitudes;
    bound.group = 32;
    const auto layout = [type](size_t k) {
      std::vector<float> row(k, 1.f);
      PackOptions po;
      po.group = 32;
      PanelLayout l;
      const WeightSource one_row = weights_nk(row.data(), 1, k);
      EXPECT_EQ(packing_layout(&one_row, 1, type, PackKind::kSeparate, po, &l), Status::kOk) << last_error();
      return l;
    };
    bound.a_int8_min_rows = layout(rc.dim).a_int8_min_rows;
    bound.a_group = [layout](size_t k) { return static_cast<size_t>(layout(k).a_group); };
  }
  testing::LlamaReference ref(rc, rw, 0.0, 0.0, is_quantized(type) ? &bound : nullptr);
  KvSlot slot;
  EXPECT_EQ(slot.init(model.cache(), rc.max_seq_len), Status::kOk);
  Rng rng(stream);
  std::vector<int32_t> prompt(5);
  for (int32_t& t : prompt) t = static_cast<int32_t>(rng.below(rc.vocab));
  EV logits;
  for (int32_t t : prompt) logits = ref.step(t, prompt.size(), 1);
  EXPECT_EQ(model.forward(slot, prompt.data(), prompt.size()), Status::kOk) << last_error();
  double worst = 0;
  const size_t steps = testing::Emulated() ? 3 : 8;
  for (size_t s = 0;; ++s) {
    const float* got = model.logits().data;
    for (size_t j = 0; j < rc.vocab; ++j) {
      const double err = std::fabs(got[j] - logits.v[j]), b = kSigmas * logits.e[j];
      worst = std::max(worst, std::isfinite(err) ? err / b : HUGE_VAL);
      if (expect) {
        EXPECT_TRUE(WithinBound(err, b, "logit")) << "step " << s << " logit " << j;
      }
    }
    if (s == steps || (expect && ::testing::Test::HasFailure())) break;
    // The reference's greedy token drives both (a near tie then cannot split them).
    size_t best = 0;
    for (size_t j = 1; j < rc.vocab; ++j) if (logits.v[j] > logits.v[best]) best = j;
    const int32_t next = static_cast<int32_t>(best);
    EXPECT_EQ(model.forward(slot, &next, 1), Status::kOk) << last_error();
    logits = ref.step(next);
  }
  return worst;
}

void ExpectConfig(const LoadedModel& m, const LlamaConfig& c, RopePairing pairing) {
  EXPECT_EQ(m.config.dim, c.dim);
  EXPECT_EQ(m.config.hidden, c.hidden);
  EXPECT_EQ(m.config.layers, c.layers);
  EXPECT_EQ(m.config.heads, c.heads);
  EXPECT_EQ(m.config.kv_heads, c.kv_heads);
  EXPECT_EQ(m.config.vocab, c.vocab);
  EXPECT_EQ(m.config.max_seq_len, c.max_seq_len);
  EXPECT_EQ(m.config.norm_eps, c.norm_eps);
  EXPECT_EQ(m.config.rope.theta, c.rope.theta);
  EXPECT_EQ(m.config.rope.pairing, pairing);
  EXPECT_EQ(m.config.tied_embeddings, c.tied_embeddings);
}

class Loaders : public PathTest {};
TILEKIT_INSTANTIATE_PATHS(Loaders);

// GGUF F32, tied and untied classifiers: the file's rows are llama.cpp's
// permutation of the model's and its pairing interleaved, and the forward
// is the model's (the reference: HF rows, half-split pairs).
TEST_P(Loaders, GgufF32MatchesTheReference) {
  TILEKIT_SEED_TRACE();
  for (bool tied : {true, false}) {
    SCOPED_TRACE(tied ? "tied" : "untied");
    const RandomModel m(Config(tied), 10 + tied);
    const Written w = WriteGguf(m, GgufSpec{});
    LoadedModel loaded;
    ASSERT_EQ(load_gguf_memory(w.file.data(), w.file.size(), LoadOptions{}, &loaded), Status::kOk) << last_error();
    ExpectConfig(loaded, m.config, RopePairing::kInterleaved);
    EXPECT_EQ(loaded.tokens.size(), m.config.vocab);
    EXPECT_EQ(loaded.tokens[5], "t5");
    EXPECT_EQ(loaded.bos, 1);
    EXPECT_EQ(loaded.converted, 0u);  // every F32 tensor read in place (32-byte aligned)
    RunAgainstReference(loaded, w, WeightType::kF32, true, 20);
  }
}

// The pairing matters: the same file without llama.cpp's permutation of Q and
// K is another model, and fails the bound by far. (Checks the check: the
// test above can fail.)
TEST_P(Loaders, GgufWithoutThePermutationIsAnotherModel) {
  TILEKIT_SEED_TRACE();
  const RandomModel m(Config(true), 12);
  GgufSpec spec;
  spec.permute = false;
  const Written w = WriteGguf(m, spec);
  LoadedModel loaded;
  ASSERT_EQ(load_gguf_memory(w.file.data(), w.file.size(), LoadOptions{}, &loaded), Status::kOk) << last_error();
  EXPECT_GT(RunAgainstReference(loaded, w, WeightType::kF32, false, 21), 100.0);
}

// safetensors F32, tied and untied: HF rows, half-split pairing.
TEST_P(Loaders, SafetensorsF32MatchesTheReference) {
  TILEKIT_SEED_TRACE();
  for (bool tied : {true, false}) {
    SCOPED_TRACE(tied ? "tied" : "untied");
    const RandomModel m(Config(tied), 30 + tied);
    const Written w = WriteSafetensors(m, Stored::kF32);
    const MemoryFile f{w.file.data(), w.file.size()};
    LoadedModel loaded;
    ASSERT_EQ(load_safetensors_memory(w.config_json.data(), w.config_json.size(), &f, 1, LoadOptions{}, &loaded), Status::kOk)
        << last_error();
    ExpectConfig(loaded, m.config, RopePairing::kHalfSplit);
    RunAgainstReference(loaded, w, WeightType::kF32, true, 22);
  }
}

// The families' rows: each format's architecture name, and a small model of
// the family with the switches its checkpoints carry (scaled down: windows
// of 6 positions, which the prompt and decode steps run past; Gemma 2's
// softcaps scaled to these logits; head_dim 32 apart from dim / heads = 16
// where the family sets it; Gemma 3 with six layers, five local and one
// global as its GGUF pattern fixes).
struct Family {
  DecoderFamily family;
  const char* gguf;  // null: llama.cpp files it as another architecture (Mistral as llama)
  const char* hf;
};
const Family kFamilies[] = {
    {DecoderFamily::kQwen2, "qwen2", "Qwen2ForCausalLM"},     {DecoderFamily::kQwen3, "qwen3", "Qwen3ForCausalLM"},
    {DecoderFamily::kGemma2, "gemma2", "Gemma2ForCausalLM"},  {DecoderFamily::kGemma3, "gemma3", "Gemma3ForCausalLM"},
    {DecoderFamily::kMistral, nullptr, "MistralForCausalLM"},
};

LlamaConfig FamilyConfig(DecoderFamily f) {
  LlamaConfig c = Config(f != DecoderFamily::kQwen2 && f != DecoderFamily::kMistral);
  set_family(&c, f);
  switch (f) {
    case DecoderFamily::kLlama:
    case DecoderFamily::kQwen2: break;
    case DecoderFamily::kMistral: c.sliding_window = 6; break;
    case DecoderFamily::kQwen3: c.attn_head_dim = 32; break;
    case DecoderFamily::kGemma2:
      c.attn_head_dim = 32;
      c.sliding_window = 6;
      c.sliding_window_pattern = 2;
      c.attn_softcap = 2.f;
      c.final_softcap = 8.f;
      c.query_pre_attn_scalar = 24.f;
      break;
    case DecoderFamily::kGemma3:
      c.layers = 6;
      c.attn_head_dim = 32;
      c.sliding_window = 6;
      c.sliding_window_pattern = 6;
      c.rope.theta = 1e6;
      c.rope_local_theta = 10000.0;
      c.query_pre_attn_scalar = 24.f;
      break;
  }
  return c;
}

// The switches of a loaded family model are the reference's.
void ExpectFamily(const LlamaConfig& got, const LlamaConfig& want) {
  EXPECT_EQ(got.head_dim(), want.head_dim());
  EXPECT_EQ(got.qkv_bias, want.qkv_bias);
  EXPECT_EQ(got.qk_norm, want.qk_norm);
  EXPECT_EQ(got.norm_weight_offset, want.norm_weight_offset);
  EXPECT_EQ(got.sandwich_norms, want.sandwich_norms);
  EXPECT_EQ(got.mlp, want.mlp);
  EXPECT_EQ(got.embedding_scale, want.embedding_scale);
  EXPECT_EQ(got.attn_softcap, want.attn_softcap);
  EXPECT_EQ(got.final_softcap, want.final_softcap);
  EXPECT_EQ(got.query_pre_attn_scalar, want.query_pre_attn_scalar);
  EXPECT_EQ(got.sliding_window, want.sliding_window);
  EXPECT_EQ(got.sliding_window_pattern, want.sliding_window_pattern);
  EXPECT_EQ(got.rope_local_theta, want.rope_local_theta);
  EXPECT_EQ(got.rope.theta, want.rope.theta);
  EXPECT_EQ(got.rope.pairing, RopePairing::kHalfSplit);
  EXPECT_EQ(got.tied_embeddings, want.tied_embeddings);
}

// Each family in each format it has: the loaded config's switches and the
// forward against the fp64 reference of the file's values; GGUF F32 and
// Q8_0 (packed as stored into int8 weights), safetensors F32 and BF16.
TEST_P(Loaders, FamiliesMatchTheReference) {
  TILEKIT_SEED_TRACE();
  for (const Family& f : kFamilies) {
    SCOPED_TRACE(f.hf);
    const RandomModel m(FamilyConfig(f.family), 90 + static_cast<int>(f.family));
    for (Stored s : {Stored::kF32, Stored::kQ8_0}) {
      if (!f.gguf) break;
      SCOPED_TRACE(::testing::Message() << f.gguf << (s == Stored::kF32 ? " F32" : " Q8_0"));
      GgufSpec spec;
      spec.arch = f.gguf;
      spec.type = s;
      const Written w = WriteGguf(m, spec);
      LoadOptions o;
      o.weights = s == Stored::kF32 ? WeightType::kF32 : WeightType::kInt8;
      LoadedModel loaded;
      ASSERT_EQ(load_gguf_memory(w.file.data(), w.file.size(), o, &loaded), Status::kOk) << last_error();
      EXPECT_EQ(loaded.architecture, f.gguf);
      ExpectFamily(loaded.config, w.config);
      if (s == Stored::kQ8_0) {
        EXPECT_EQ(loaded.packed_from_source, 7 * m.config.layers + 1);  // the classifier, tied or not
      }
      RunAgainstReference(loaded, w, o.weights, true, 91);
    }
    for (Stored s : {Stored::kF32, Stored::kBf16}) {
      SCOPED_TRACE(s == Stored::kF32 ? "F32" : "BF16");
      const Written h = WriteSafetensors(m, s, f.hf);
      const MemoryFile mf{h.file.data(), h.file.size()};
      LoadedModel loaded;
      ASSERT_EQ(load_safetensors_memory(h.config_json.data(), h.config_json.size(), &mf, 1, LoadOptions{}, &loaded), Status::kOk)
          << last_error();
      EXPECT_EQ(loaded.architecture, f.hf);
      ExpectFamily(loaded.config, h.config);
      RunAgainstReference(loaded, h, WeightType::kF32, true, 92);
    }
  }
}

// Gemma's GGUF norms are 1 + w: a file holding HF's w (a converter that
// skipped the shift) is another model, and fails the bound by far.
TEST_P(Loaders, GemmaGgufNormsWithoutTheShiftAreAnotherModel) {
  TILEKIT_SEED_TRACE();
  const RandomModel m(FamilyConfig(DecoderFamily::kGemma2), 93);
  GgufSpec spec;
  spec.arch = "gemma2";
  spec.norm_shift = false;
  const Written w = WriteGguf(m, spec);
  LoadedModel loaded;
  ASSERT_EQ(load_gguf_memory(w.file.data(), w.file.size(), LoadOptions{}, &loaded), Status::kOk) << last_error();
  EXPECT_GT(RunAgainstReference(loaded, w, WeightType::kF32, false, 94), 100.0);
}

// F16 and BF16 tensors in both formats: widened (BF16 linears packed from
// bf16), so the model is the file's rounded values exactly.
TEST_P(Loaders, HalfAndBf16TensorsAreTheFilesValues) {
  TILEKIT_SEED_TRACE();
  for (Stored s : {Stored::kF16, Stored::kBf16}) {
    SCOPED_TRACE(s == Stored::kF16 ? "F16" : "BF16");
    const RandomModel m(Config(s == Stored::kF16), 40 + static_cast<int>(s));
    GgufSpec spec;
    spec.type = s;
    const Written g = WriteGguf(m, spec);
    LoadedModel lg;
    ASSERT_EQ(load_gguf_memory(g.file.data(), g.file.size(), LoadOptions{}, &lg), Status::kOk) << last_error();
    if (s == Stored::kBf16) {
      EXPECT_EQ(lg.packed_from_source, 7 * m.config.layers + 1);  // the classifier too, tied or not
    }
    RunAgainstReference(lg, g, WeightType::kF32, true, 23);

    const Written h = WriteSafetensors(m, s);
    const MemoryFile f{h.file.data(), h.file.size()};
    LoadedModel lh;
    ASSERT_EQ(load_safetensors_memory(h.config_json.data(), h.config_json.size(), &f, 1, LoadOptions{}, &lh), Status::kOk)
        << last_error();
    RunAgainstReference(lh, h, WeightType::kF32, true, 24);
  }
}

// Q8_0 into int8 and Q4_0 into int4 weights (group 32): every linear, and the
// tied classifier, packed from the file's blocks; the reference runs on the
// blocks' values with the quantized kernels' bound. The same files into fp32
// weights: dequantized exactly, the reference's fp32 bound.
TEST_P(Loaders, QuantizedBlocksPackAsStored) {
  TILEKIT_SEED_TRACE();
  for (Stored s : {Stored::kQ8_0, Stored::kQ4_0}) {
    for (bool tied : {true, false}) {
      SCOPED_TRACE(::testing::Message() << (s == Stored::kQ8_0 ? "Q8_0" : "Q4_0") << (tied ? " tied" : " untied"));
      const RandomModel m(Config(tied), 50 + static_cast<int>(s) * 2 + tied);
      GgufSpec spec;
      spec.type = s;
      spec.alignment = 64;
      const Written w = WriteGguf(m, spec);
      LoadOptions o;
      o.weights = s == Stored::kQ8_0 ? WeightType::kInt8 : WeightType::kInt4;
      LoadedModel q;
      ASSERT_EQ(load_gguf_memory(w.file.data(), w.file.size(), o, &q), Status::kOk) << last_error();
      EXPECT_EQ(q.packed_from_source, 7 * m.config.layers + 1);  // the classifier, tied or not
      EXPECT_EQ(q.converted, 1u);  // the embedding table, for the lookup
      RunAgainstReference(q, w, o.weights, true, 25);

      LoadedModel f;
      ASSERT_EQ(load_gguf_memory(w.file.data(), w.file.size(), LoadOptions{}, &f), Status::kOk) << last_error();
      EXPECT_EQ(f.packed_from_source, 0u);
      RunAgainstReference(f, w, WeightType::kF32, true, 26);

      // The other integer type: dequantized, then quantized at packing.
      LoadOptions other;
      other.weights = s == Stored::kQ8_0 ? WeightType::kInt4 : WeightType::kInt8;
      LoadedModel r;
      ASSERT_EQ(load_gguf_memory(w.file.data(), w.file.size(), other, &r), Status::kOk) << last_error();
      EXPECT_EQ(r.packed_from_source, 0u);
      RunAgainstReference(r, *Requantized(w, other.weights), other.weights, true, 29);
    }
  }
}

// From files on disk (memory-mapped), a directory for safetensors, with a
// model built on 1 and 2 threads giving the same bits.
TEST_P(Loaders, FilesOnDiskAndThreads) {
  TILEKIT_SEED_TRACE();
  const RandomModel m(Config(false), 60);
  char dir[] = "/tmp/tilekit_loaders_XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string gguf = std::string(dir) + "/model.gguf";
  GgufSpec spec;
  spec.type = Stored::kQ8_0;
  const Written g = WriteGguf(m, spec);
  ASSERT_EQ(write_file(gguf.c_str(), g.file), Status::kOk);
  const Written h = WriteSafetensors(m, Stored::kBf16);
  ASSERT_EQ(write_file((std::string(dir) + "/model.safetensors").c_str(), h.file), Status::kOk);
  ASSERT_EQ(write_file((std::string(dir) + "/config.json").c_str(),
                       std::vector<unsigned char>(h.config_json.begin(), h.config_json.end())), Status::kOk);
  LoadOptions o;
  o.weights = WeightType::kInt8;
  LoadedModel a, b;
  ASSERT_EQ(load_model(gguf.c_str(), o, &a), Status::kOk) << last_error();
  ASSERT_EQ(load_model(dir, LoadOptions{}, &b), Status::kOk) << last_error();
  EXPECT_EQ(a.format, ModelFormat::kGguf);
  EXPECT_EQ(b.format, ModelFormat::kSafetensors);
  RunAgainstReference(a, g, WeightType::kInt8, true, 27);
  RunAgainstReference(b, h, WeightType::kF32, true, 28);
  // 1 thread == 2 threads, bitwise.
  ThreadPool pool(2);
  LlamaOptions lo;
  lo.max_tokens = 8;
  lo.weights = WeightType::kInt8;
  LlamaModel one, two;
  ASSERT_EQ(one.build(a.config, a.weights, lo), Status::kOk);
  ASSERT_EQ(two.build(a.config, a.weights, lo), Status::kOk);
  KvSlot s1, s2;
  ASSERT_EQ(s1.init(one.cache(), 16), Status::kOk);
  ASSERT_EQ(s2.init(two.cache(), 16), Status::kOk);
  const int32_t prompt[4] = {3, 1, 4, 1};
  ASSERT_EQ(one.forward(s1, prompt, 4), Status::kOk);
  ASSERT_EQ(two.forward(s2, prompt, 4, &pool), Status::kOk);
  EXPECT_EQ(std::memcmp(one.logits().data, two.logits().data, m.config.vocab * sizeof(float)), 0);
  for (const char* f : {"/model.gguf", "/model.safetensors", "/config.json"}) std::remove((std::string(dir) + f).c_str());
  rmdir(dir);
}

// A checkpoint in two shards listed by model.safetensors.index.json runs
// bitwise as the same checkpoint in one file; a tensor in both is refused.
TEST(LoadersShards, IndexJsonAndShards) {
  TILEKIT_SEED_TRACE();
  const RandomModel m(Config(false), 80);
  const std::vector<Role> roles = Roles(m.config, m.weights);
  SafetensorsWriter one, a, b, both;
  std::string map;
  for (size_t i = 0; i < roles.size(); ++i) {
    const Role& r = roles[i];
    const std::vector<size_t> shape = r.k ? std::vector<size_t>{r.n, r.k} : std::vector<size_t>{r.n};
    const std::vector<unsigned char> bytes = as_bytes(std::vector<float>(r.w, r.w + (r.k ? r.n * r.k : r.n)));
    one.add(r.hf, "F32", shape, bytes);
    (i % 2 ? b : a).add(r.hf, "F32", shape, bytes);
    if (i < 3) both.add(r.hf, "F32", shape, bytes);
    map += std::string(i ? "," : "") + "\"" + r.hf + "\": \"model-0000" + (i % 2 ? "2" : "1") + "-of-00002.safetensors\"";
  }
  char dir[] = "/tmp/tilekit_shards_XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string d = dir, config = HfConfig(m.config), index = "{\"metadata\": {}, \"weight_map\": {" + map + "}}";
  const auto text = [](const std::string& t) { return std::vector<unsigned char>(t.begin(), t.end()); };
  ASSERT_EQ(write_file((d + "/config.json").c_str(), text(config)), Status::kOk);
  ASSERT_EQ(write_file((d + "/model.safetensors.index.json").c_str(), text(index)), Status::kOk);
  ASSERT_EQ(a.write((d + "/model-00001-of-00002.safetensors").c_str()), Status::kOk);
  ASSERT_EQ(b.write((d + "/model-00002-of-00002.safetensors").c_str()), Status::kOk);
  LoadedModel sharded, single;
  ASSERT_EQ(load_safetensors(dir, LoadOptions{}, &sharded), Status::kOk) << last_error();
  EXPECT_EQ(sharded.files.size(), 2u);
  const std::vector<unsigned char> file = one.bytes();
  const MemoryFile mf{file.data(), file.size()};
  ASSERT_EQ(load_safetensors_memory(config.data(), config.size(), &mf, 1, LoadOptions{}, &single), Status::kOk);
  LlamaOptions o;
  o.max_tokens = 4;
  LlamaModel x, y;
  ASSERT_EQ(x.build(sharded.config, sharded.weights, o), Status::kOk) << last_error();
  ASSERT_EQ(y.build(single.config, single.weights, o), Status::kOk) << last_error();
  KvSlot sx, sy;
  ASSERT_EQ(sx.init(x.cache(), 8), Status::kOk);
  ASSERT_EQ(sy.init(y.cache(), 8), Status::kOk);
  const int32_t prompt[3] = {5, 50, 96};
  ASSERT_EQ(x.forward(sx, prompt, 3), Status::kOk);
  ASSERT_EQ(y.forward(sy, prompt, 3), Status::kOk);
  EXPECT_EQ(std::memcmp(x.logits().data, y.logits().data, m.config.vocab * sizeof(float)), 0);
  // The first shard's first tensors again in a third file named by the index.
  ASSERT_EQ(both.write((d + "/model-00003-of-00002.safetensors").c_str()), Status::kOk);
  const std::string twice = "{\"weight_map\": {" + map + ", \"x\": \"model-00003-of-00002.safetensors\"}}";
  ASSERT_EQ(write_file((d + "/model.safetensors.index.json").c_str(), text(twice)), Status::kOk);
  LoadedModel refused;
  EXPECT_TRUE(FailsWith(load_safetensors(dir, LoadOptions{}, &refused), Status::kInvalidArgument, "is in two files"));
  for (const char* f : {"/config.json", "/model.safetensors.index.json", "/model-00001-of-00002.safetensors",
                        "/model-00002-of-00002.safetensors", "/model-00003-of-00002.safetensors"}) {
    std::remove((d + f).c_str());
  }
  rmdir(dir);
}

// ---- refusals (no kernels: once, not per path) ------------------------------

// Every cut of a file short of its end is refused with a Status: each byte of
// the header, and 50 cut points spread over the data.
void EveryCutIsRefused(const std::vector<unsigned char>& file, size_t header, bool gguf, const std::string& config) {
  std::vector<size_t> cuts;
  for (size_t c = 0; c < std::min(header + 8, file.size()); ++c) cuts.push_back(c);
  for (size_t i = 1; i <= 50; ++i) cuts.push_back(header + (file.size() - header) * i / 51);
  cuts.push_back(file.size() - 1);
  for (size_t cut : cuts) {
    // A copy of exactly `cut` bytes, so reading past it is caught by ASan.
    std::unique_ptr<unsigned char[]> part(new unsigned char[cut ? cut : 1]);
    std::memcpy(part.get(), file.data(), cut);
    LoadedModel m;
    Status st;
    if (gguf) {
      st = load_gguf_memory(part.get(), cut, LoadOptions{}, &m);
    } else {
      const MemoryFile f{part.get(), cut};
      st = load_safetensors_memory(config.data(), config.size(), &f, 1, LoadOptions{}, &m);
    }
    EXPECT_NE(st, Status::kOk) << "cut at " << cut << " of " << file.size();
  }
}

TEST(LoadersRefuse, TruncatedFiles) {
  const RandomModel m(Config(true), 70);
  GgufSpec spec;
  spec.type = Stored::kQ4_0;
  const Written g = WriteGguf(m, spec);
  GgufFile parsed;
  ASSERT_EQ(parse_gguf(g.file.data(), g.file.size(), &parsed), Status::kOk);
  EveryCutIsRefused(g.file, parsed.data_offset, true, "");
  const Written h = WriteSafetensors(m, Stored::kF16);
  SafetensorsFile sp;
  ASSERT_EQ(parse_safetensors(h.file.data(), h.file.size(), &sp), Status::kOk);
  EveryCutIsRefused(h.file, sp.data_offset, false, h.config_json);
  LoadedModel out;
  EXPECT_TRUE(FailsWith(load_gguf_memory(g.file.data(), parsed.data_offset + 10, LoadOptions{}, &out), Status::kShapeMismatch,
                        "runs past the end of the file"));
}

// A GGUF file by hand, for headers no writer would make.
struct RawGguf {
  std::vector<unsigned char> b;
  void u32(uint32_t v) { for (int i = 0; i < 4; ++i) b.push_back(static_cast<unsigned char>(v >> (8 * i))); }
  void u64(uint64_t v) { for (int i = 0; i < 8; ++i) b.push_back(static_cast<unsigned char>(v >> (8 * i))); }
  void str(const std::string& s) { u64(s.size()); b.insert(b.end(), s.begin(), s.end()); }
  RawGguf(uint32_t version, uint64_t tensors, uint64_t kvs) { u32(kGgufMagic), u32(version), u64(tensors), u64(kvs); }
};

Status ParseRaw(const RawGguf& r) {
  GgufFile f;
  std::vector<unsigned char> b = r.b;
  b.resize(b.size() + 64, 0);  // room, so the refusal is about the header, not the end
  return parse_gguf(b.data(), b.size(), &f);
}

TEST(LoadersRefuse, GgufHeaders) {
  GgufFile f;
  const unsigned char junk[32] = {'G', 'G', 'U', 'X'};
  EXPECT_TRUE(FailsWith(parse_gguf(junk, sizeof(junk), &f), Status::kInvalidArgument, "bad magic"));
  EXPECT_TRUE(FailsWith(ParseRaw(RawGguf(1, 0, 0)), Status::kUnsupported, "version 1"));
  EXPECT_TRUE(FailsWith(ParseRaw(RawGguf(4, 0, 0)), Status::kUnsupported, "version 4"));
  EXPECT_TRUE(FailsWith(ParseRaw(RawGguf(3, 0, 1ull << 60)), Status::kShapeMismatch, "metadata entries cannot fit"));
  EXPECT_TRUE(FailsWith(ParseRaw(RawGguf(3, 1ull << 60, 0)), Status::kShapeMismatch, "tensors cannot fit"));
  {  // a key longer than the file
    RawGguf r(3, 0, 1);
    r.u64(1ull << 62);
    EXPECT_TRUE(FailsWith(ParseRaw(r), Status::kShapeMismatch, "past the end"));
  }
  {  // an array of 2^61 u32
    RawGguf r(3, 0, 1);
    r.str("a"), r.u32(9), r.u32(4), r.u64(1ull << 61);
    EXPECT_TRUE(FailsWith(ParseRaw(r), Status::kShapeMismatch, "runs past the end"));
  }
  {  // an array of arrays
    RawGguf r(3, 0, 1);
    r.str("a"), r.u32(9), r.u32(9), r.u64(1);
    EXPECT_TRUE(FailsWith(ParseRaw(r), Status::kUnsupported, "array of arrays"));
  }
  {  // an unknown value type
    RawGguf r(3, 0, 1);
    r.str("a"), r.u32(13);
    EXPECT_TRUE(FailsWith(ParseRaw(r), Status::kUnsupported, "unknown value type"));
  }
  {  // a key twice
    RawGguf r(3, 0, 2);
    r.str("a"), r.u32(4), r.u32(1), r.str("a"), r.u32(4), r.u32(2);
    EXPECT_TRUE(FailsWith(ParseRaw(r), Status::kInvalidArgument, "appears twice"));
  }
  {  // alignment not a power of two
    RawGguf r(3, 0, 1);
    r.str("general.alignment"), r.u32(4), r.u32(24);
    EXPECT_TRUE(FailsWith(ParseRaw(r), Status::kInvalidArgument, "power of two"));
  }
  const auto tensor = [](uint32_t dims, std::vector<uint64_t> ne, uint32_t type, uint64_t offset, const char* name = "t") {
    RawGguf r(3, 1, 0);
    r.str(name), r.u32(dims);
    for (uint64_t d : ne) r.u64(d);
    r.u32(type), r.u64(offset);
    return r;
  };
  EXPECT_TRUE(FailsWith(ParseRaw(tensor(5, {1, 1, 1, 1, 1}, 0, 0)), Status::kInvalidArgument, "5 dimensions"));
  EXPECT_TRUE(FailsWith(ParseRaw(tensor(0, {}, 0, 0)), Status::kInvalidArgument, "0 dimensions"));
  EXPECT_TRUE(FailsWith(ParseRaw(tensor(2, {1ull << 40, 1ull << 40}, 0, 0)), Status::kOverflow, "overflow"));
  EXPECT_TRUE(FailsWith(ParseRaw(tensor(1, {0}, 0, 0)), Status::kOverflow, "dimension 0 is 0"));
  EXPECT_TRUE(FailsWith(ParseRaw(tensor(1, {32}, 99, 0)), Status::kUnsupported, "ggml type 99"));
  EXPECT_TRUE(FailsWith(ParseRaw(tensor(1, {31}, 8, 0)), Status::kShapeMismatch, "not whole Q8_0 blocks"));
  EXPECT_TRUE(FailsWith(ParseRaw(tensor(1, {4}, 0, 8)), Status::kInvalidArgument, "not aligned"));
  EXPECT_TRUE(FailsWith(ParseRaw(tensor(1, {1ull << 50}, 0, 0)), Status::kShapeMismatch, "past the end"));
  EXPECT_TRUE(FailsWith(ParseRaw(tensor(1, {4}, 0, 1ull << 63)), Status::kShapeMismatch, "past the end"));
  {
    RawGguf r = tensor(1, {4}, 0, 0);
    r.b[8] = 2;  // tensor_count 2: the same name twice
    r.str("t"), r.u32(1), r.u64(4), r.u32(0), r.u64(32);
    EXPECT_TRUE(FailsWith(ParseRaw(r), Status::kInvalidArgument, "appears twice"));
  }
}

// Files that parse but are not a model tilekit runs, or not this config's.
Written Rewrite(const RandomModel& m, const std::function<void(GgufWriter&, const Role&, const std::vector<float>&)>& tensor,
                const std::function<void(GgufWriter&)>& meta) {
  Written out;
  const LlamaConfig& c = m.config;
  GgufWriter w;
  meta(w);
  for (const Role& r : Roles(c, m.weights)) tensor(w, r, std::vector<float>(r.w, r.w + (r.k ? r.n * r.k : r.n)));
  out.file = w.bytes();
  return out;
}

void LlamaMeta(GgufWriter& w, const LlamaConfig& c, const char* arch = "llama") {
  const std::string a = std::string(arch) + ".";
  w.add_string("general.architecture", arch);
  w.add_u32(a + "context_length", static_cast<uint32_t>(c.max_seq_len));
  w.add_u32(a + "embedding_length", static_cast<uint32_t>(c.dim));
  w.add_u32(a + "block_count", static_cast<uint32_t>(c.layers));
  w.add_u32(a + "feed_forward_length", static_cast<uint32_t>(c.hidden));
  w.add_u32(a + "attention.head_count", static_cast<uint32_t>(c.heads));
  w.add_u32(a + "attention.head_count_kv", static_cast<uint32_t>(c.kv_heads));
  w.add_f32(a + "attention.layer_norm_rms_epsilon", c.norm_eps);
}

void F32Tensor(GgufWriter& w, const Role& r, const std::vector<float>& x) {
  w.add_tensor(r.gguf, 0, r.k ? std::vector<uint64_t>{r.k, r.n} : std::vector<uint64_t>{r.n}, as_bytes(x));
}

TEST(LoadersRefuse, GgufModels) {
  const RandomModel m(Config(true), 71);
  const LlamaConfig& c = m.config;
  LoadedModel out;
  const auto load = [&](const Written& w) { return load_gguf_memory(w.file.data(), w.file.size(), LoadOptions{}, &out); };
  const auto meta = [&](GgufWriter& w) { LlamaMeta(w, c); };
  EXPECT_EQ(load(Rewrite(m, F32Tensor, meta)), Status::kOk) << last_error();
  EXPECT_TRUE(FailsWith(load(Rewrite(m, F32Tensor, [&](GgufWriter& w) { LlamaMeta(w, c, "phi3"); })), Status::kUnsupported,
                        "architecture 'phi3'"));
  // A llama file's tensors under qwen2: Qwen2's biases are missing.
  EXPECT_TRUE(FailsWith(load(Rewrite(m, F32Tensor, [&](GgufWriter& w) { LlamaMeta(w, c, "qwen2"); })), Status::kInvalidArgument,
                        "blk.0.attn_q.bias is missing"));
  EXPECT_TRUE(FailsWith(load(Rewrite(m, F32Tensor, [&](GgufWriter& w) {
                          LlamaMeta(w, c);
                          w.add_u32("llama.expert_count", 8);
                        })),
                        Status::kUnsupported, "mixture of 8 experts"));
  EXPECT_TRUE(FailsWith(load(Rewrite(m, F32Tensor, [&](GgufWriter& w) {
                          LlamaMeta(w, c);
                          w.add_u32("llama.rope.dimension_count", 8);
                        })),
                        Status::kUnsupported, "partial rotary"));
  EXPECT_TRUE(FailsWith(load(Rewrite(m, F32Tensor, [&](GgufWriter& w) {
                          LlamaConfig huge = c;
                          huge.layers = size_t{1} << 31;  // allocating its layers' records first would take ~0.7 TB
                          LlamaMeta(w, huge);
                        })),
                        Status::kShapeMismatch, "2147483648 layers, but the file has"));
  EXPECT_TRUE(FailsWith(load(Rewrite(m, F32Tensor, [&](GgufWriter& w) { w.add_string("general.architecture", "llama"); })),
                        Status::kInvalidArgument, "llama.embedding_length is missing"));
  // A missing tensor; a tensor of another shape; of a type not read.
  EXPECT_TRUE(FailsWith(load(Rewrite(m, [](GgufWriter& w, const Role& r, const std::vector<float>& x) {
                          if (r.gguf != "blk.1.ffn_up.weight") F32Tensor(w, r, x);
                        }, meta)),
                        Status::kInvalidArgument, "blk.1.ffn_up.weight is missing"));
  EXPECT_TRUE(FailsWith(load(Rewrite(m, [](GgufWriter& w, const Role& r, const std::vector<float>& x) {
                          if (r.gguf == "blk.0.attn_k.weight") {
                            w.add_tensor(r.gguf, 0, {r.n, r.k}, as_bytes(x));  // transposed
                          } else {
                            F32Tensor(w, r, x);
                          }
                        }, meta)),
                        Status::kShapeMismatch, "blk.0.attn_k.weight is [64][32], the config needs [32][64]"));
  EXPECT_TRUE(FailsWith(load(Rewrite(m, [](GgufWriter& w, const Role& r, const std::vector<float>& x) {
                          if (r.gguf == "blk.0.ffn_down.weight") {
                            w.add_tensor(r.gguf, 3, {r.k, r.n}, std::vector<unsigned char>(r.n * r.k / 32 * 20));  // Q4_1
                          } else {
                            F32Tensor(w, r, x);
                          }
                        }, meta)),
                        Status::kUnsupported, "blk.0.ffn_down.weight is Q4_1"));
  EXPECT_TRUE(FailsWith(load(Rewrite(m, [](GgufWriter& w, const Role& r, const std::vector<float>& x) {
                          F32Tensor(w, r, x);
                          if (r.gguf == "output_norm.weight") w.add_tensor("rope_freqs.weight", 0, {8}, as_bytes(std::vector<float>(8, 1.f)));
                        }, meta)),
                        Status::kUnsupported, "rope_freqs.weight"));
  // A NaN block scale in a tensor that is dequantized.
  EXPECT_TRUE(FailsWith(load(Rewrite(m, [](GgufWriter& w, const Role& r, const std::vector<float>& x) {
                          if (r.gguf == "blk.0.attn_v.weight") {
                            std::vector<unsigned char> b = quantize_q8_0(x.data(), r.n, r.k);
                            b[34 * 3] = 0xFF, b[34 * 3 + 1] = 0x7F;
                            w.add_tensor(r.gguf, 8, {r.k, r.n}, b);
                          } else {
                            F32Tensor(w, r, x);
                          }
                        }, meta)),
                        Status::kInvalidArgument, "block 3 has a scale that is not finite"));
}

TEST(LoadersRefuse, SafetensorsFiles) {
  const RandomModel m(Config(false), 72);
  const Written h = WriteSafetensors(m, Stored::kF32);
  LoadedModel out;
  const auto load = [&](const std::vector<unsigned char>& file, const std::string& cfg) {
    const MemoryFile f{file.data(), file.size()};
    return load_safetensors_memory(cfg.data(), cfg.size(), &f, 1, LoadOptions{}, &out);
  };
  EXPECT_EQ(load(h.file, h.config_json), Status::kOk) << last_error();
  // The header: a length past the file or absurd; not JSON; entries wrong.
  const auto header = [](const std::string& json, size_t data = 0) {
    std::string all(8, '\0');
    for (int i = 0; i < 8; ++i) all[i] = static_cast<char>(static_cast<uint64_t>(json.size()) >> (8 * i));
    all += json;
    all.resize(all.size() + data, '\0');
    return std::vector<unsigned char>(all.begin(), all.end());
  };
  SafetensorsFile f;
  std::vector<unsigned char> b = header("{}");
  b[7] = 0x10;  // 2^60 bytes of header
  EXPECT_TRUE(FailsWith(parse_safetensors(b.data(), b.size(), &f), Status::kInvalidArgument, "more than 100 MB"));
  b = header("{}");
  b[0] = 200;
  EXPECT_TRUE(FailsWith(parse_safetensors(b.data(), b.size(), &f), Status::kShapeMismatch, "truncated"));
  const auto refused = [&](const std::string& json, size_t data, Status want, const char* why) {
    const std::vector<unsigned char> file = header(json, data);
    SafetensorsFile sf;
    return FailsWith(parse_safetensors(file.data(), file.size(), &sf), want, why);
  };
  EXPECT_TRUE(refused("{\"a\":", 0, Status::kInvalidArgument, "json"));
  EXPECT_TRUE(refused("[1]", 0, Status::kInvalidArgument, "not a JSON object"));
  EXPECT_TRUE(refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                      "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, Status::kInvalidArgument, "twice"));
  EXPECT_TRUE(refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, Status::kShapeMismatch, "8 bytes for 3 F32"));
  EXPECT_TRUE(refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, Status::kShapeMismatch, "past the end"));
  EXPECT_TRUE(refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, Status::kInvalidArgument, "begin <= end"));
  EXPECT_TRUE(refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                      "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, Status::kInvalidArgument, "overlap"));
  EXPECT_TRUE(refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,8]}}", 8,
                      Status::kOverflow, "overflow"));
  EXPECT_TRUE(refused("{\"a\":{\"dtype\":\"Q9\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2, Status::kUnsupported, "dtype Q9"));
  EXPECT_TRUE(refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, Status::kInvalidArgument, "not a count"));
  EXPECT_TRUE(refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8, Status::kInvalidArgument, "not a count"));
  EXPECT_TRUE(refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, Status::kInvalidArgument, "data_offsets"));
  // Configs: architecture, missing fields, features not read.
  EXPECT_TRUE(FailsWith(load(h.file, HfConfig(m.config, "Phi3ForCausalLM")), Status::kUnsupported, "Phi3ForCausalLM is not supported"));
  EXPECT_TRUE(FailsWith(load(h.file, HfConfig(m.config, "Qwen2ForCausalLM")), Status::kInvalidArgument,
                        "model.layers.0.self_attn.q_proj.bias is missing"));
  EXPECT_TRUE(FailsWith(load(h.file, "{\"architectures\": [\"LlamaForCausalLM\"]}"), Status::kInvalidArgument, "hidden_size is missing"));
  EXPECT_TRUE(FailsWith(load(h.file, HfConfig(m.config, "LlamaForCausalLM", ", \"attention_bias\": true")), Status::kUnsupported,
                        "attention_bias"));
  // head_dim apart from hidden_size / heads is read: this file's Q is not that shape.
  EXPECT_TRUE(FailsWith(load(h.file, HfConfig(m.config, "LlamaForCausalLM", ", \"head_dim\": 8")), Status::kShapeMismatch,
                        "q_proj.weight is [64][64], the config needs [32][64]"));
  // Duplicate JSON keys in the config: refused, not resolved silently.
  EXPECT_TRUE(FailsWith(load(h.file, HfConfig(m.config, "LlamaForCausalLM", ", \"hidden_size\": 32")), Status::kInvalidArgument, "twice"));
  // Mistral with a sliding window shorter than the context: every layer's window.
  ASSERT_EQ(load(h.file, HfConfig(m.config, "MistralForCausalLM", ", \"sliding_window\": 40")), Status::kOk) << last_error();
  EXPECT_EQ(out.config.max_seq_len, 64u);
  EXPECT_EQ(out.config.sliding_window, 40u);
  EXPECT_EQ(out.config.sliding_window_pattern, 0u);
  // Llama reads no sliding_window (transformers' Llama has none).
  ASSERT_EQ(load(h.file, HfConfig(m.config, "LlamaForCausalLM", ", \"sliding_window\": 40")), Status::kOk) << last_error();
  EXPECT_EQ(out.config.sliding_window, 0u);
  // The file lacks a tensor the config needs (a third layer).
  LlamaConfig three = m.config;
  three.layers = 3;
  EXPECT_TRUE(FailsWith(load(h.file, HfConfig(three)), Status::kInvalidArgument, "model.layers.2.input_layernorm.weight is missing"));
  // Untied without lm_head.
  SafetensorsWriter w;
  for (const Role& r : Roles(m.config, m.weights)) {
    if (r.hf != "lm_head.weight") {
      w.add(r.hf, "F32", r.k ? std::vector<size_t>{r.n, r.k} : std::vector<size_t>{r.n},
            as_bytes(std::vector<float>(r.w, r.w + (r.k ? r.n * r.k : r.n))));
    }
  }
  EXPECT_TRUE(FailsWith(load(w.bytes(), h.config_json), Status::kInvalidArgument, "lm_head.weight is missing"));
  // A dtype the model does not take.
  SafetensorsWriter x;
  for (const Role& r : Roles(m.config, m.weights)) {
    const std::vector<size_t> shape = r.k ? std::vector<size_t>{r.n, r.k} : std::vector<size_t>{r.n};
    const std::vector<float> v(r.w, r.w + (r.k ? r.n * r.k : r.n));
    x.add(r.hf, r.hf == "model.norm.weight" ? "I32" : "F32", shape, as_bytes(v));
  }
  EXPECT_TRUE(FailsWith(load(x.bytes(), h.config_json), Status::kUnsupported, "model.norm.weight is another dtype"));
}

// What GGUF Gemma files leave to the architecture, as llama.cpp takes it:
// the attention scale 1/√head_dim, but 1/√(dim / heads) for the 27B models
// (Gemma 2: 46 layers, Gemma 3: 62); Gemma 3's global layers' linear RoPE
// scaling from the file, its local layers' theta 10000 and pattern 6.
TEST(LoadersFamilies, GgufGemmaKeysTheArchitectureFixes) {
  for (const char* arch : {"gemma2", "gemma3"}) {
    const bool g2 = std::string(arch) == "gemma2";
    for (size_t layers : {size_t{26}, g2 ? size_t{46} : size_t{62}}) {
      SCOPED_TRACE(::testing::Message() << arch << " " << layers << " layers");
      LlamaConfig c = FamilyConfig(g2 ? DecoderFamily::kGemma2 : DecoderFamily::kGemma3);
      c.layers = layers;
      GgufWriter w;
      add_gguf_model_keys(w, c, arch);
      if (!g2) w.add_string("gemma3.rope.scaling.type", "linear"), w.add_f32("gemma3.rope.scaling.factor", 8.f);
      const std::vector<unsigned char> bytes = w.bytes();
      GgufFile f;
      ASSERT_EQ(parse_gguf(bytes.data(), bytes.size(), &f), Status::kOk) << last_error();
      LlamaConfig got;
      ASSERT_EQ(gguf_llama_config(f, *find_architecture(ModelFormat::kGguf, arch), c.vocab, 0, &got), Status::kOk) << last_error();
      EXPECT_EQ(got.query_pre_attn_scalar, layers == 26 ? 32.f : 16.f);  // head_dim 32, dim / heads 16
      EXPECT_EQ(got.sliding_window_pattern, g2 ? 2u : 6u);
      EXPECT_EQ(got.rope_local_theta, g2 ? 0.0 : 10000.0);
      EXPECT_EQ(got.rope.scaling, g2 ? RopeScaling::kNone : RopeScaling::kLinear);
      EXPECT_FALSE(got.norm_weight_offset);
      EXPECT_EQ(got.embedding_scale, 8.f);  // √64
    }
  }
}

// The families' refusals: a tensor a family's switch needs, in each format;
// settings their rows do not read.
TEST(LoadersRefuse, Families) {
  const auto gguf = [](const RandomModel& m, const char* arch, const std::string& skip) {
    GgufSpec spec;
    spec.arch = arch;
    spec.skip = skip;
    const Written w = WriteGguf(m, spec);
    LoadedModel out;
    return load_gguf_memory(w.file.data(), w.file.size(), LoadOptions{}, &out);
  };
  LoadedModel out;
  const auto hf = [&out](const Written& h, const std::string& config) {
    const MemoryFile f{h.file.data(), h.file.size()};
    return load_safetensors_memory(config.data(), config.size(), &f, 1, LoadOptions{}, &out);
  };
  const auto replaced = [](std::string text, const std::string& from, const std::string& to) {
    const size_t at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return at == std::string::npos ? text : text.replace(at, from.size(), to);
  };
  const RandomModel qwen2(FamilyConfig(DecoderFamily::kQwen2), 95), qwen3(FamilyConfig(DecoderFamily::kQwen3), 96);
  const RandomModel gemma2(FamilyConfig(DecoderFamily::kGemma2), 97), gemma3(FamilyConfig(DecoderFamily::kGemma3), 98);
  // A missing family tensor, each format.
  EXPECT_TRUE(FailsWith(gguf(qwen2, "qwen2", "blk.1.attn_v.bias"), Status::kInvalidArgument, "blk.1.attn_v.bias is missing"));
  EXPECT_TRUE(FailsWith(gguf(qwen3, "qwen3", "blk.0.attn_k_norm.weight"), Status::kInvalidArgument, "blk.0.attn_k_norm.weight is missing"));
  EXPECT_TRUE(FailsWith(gguf(gemma2, "gemma2", "blk.1.post_ffw_norm.weight"), Status::kInvalidArgument, "blk.1.post_ffw_norm.weight is missing"));
  EXPECT_TRUE(FailsWith(gguf(gemma3, "gemma3", "blk.5.attn_q_norm.weight"), Status::kInvalidArgument, "blk.5.attn_q_norm.weight is missing"));
  const Written q2_bias = WriteSafetensors(qwen2, Stored::kF32, "Qwen2ForCausalLM", "model.layers.1.self_attn.k_proj.bias");
  EXPECT_TRUE(FailsWith(hf(q2_bias, q2_bias.config_json), Status::kInvalidArgument, "model.layers.1.self_attn.k_proj.bias is missing"));
  const Written q3_norm = WriteSafetensors(qwen3, Stored::kF32, "Qwen3ForCausalLM", "model.layers.0.self_attn.q_norm.weight");
  EXPECT_TRUE(FailsWith(hf(q3_norm, q3_norm.config_json), Status::kInvalidArgument, "model.layers.0.self_attn.q_norm.weight is missing"));
  const Written g2 = WriteSafetensors(gemma2, Stored::kF32, "Gemma2ForCausalLM", "model.layers.0.post_attention_layernorm.weight");
  EXPECT_TRUE(FailsWith(hf(g2, g2.config_json), Status::kInvalidArgument, "model.layers.0.post_attention_layernorm.weight is missing"));
  // A Gemma 2 GGUF without its softcaps (llama.cpp's convert always writes them).
  LlamaConfig uncapped = FamilyConfig(DecoderFamily::kGemma2);
  uncapped.attn_softcap = 0.f;
  EXPECT_TRUE(FailsWith(gguf(RandomModel(uncapped, 99), "gemma2", ""), Status::kInvalidArgument, "gemma2.attn_logit_softcapping is missing"));
  // Qwen2's window on the top layers only is not read; on none of them it is no window.
  const Written q2 = WriteSafetensors(qwen2, Stored::kF32, "Qwen2ForCausalLM");
  EXPECT_TRUE(FailsWith(hf(q2, HfConfig(qwen2.config, "Qwen2ForCausalLM", ", \"use_sliding_window\": true, \"sliding_window\": 4, \"max_window_layers\": 1")),
                        Status::kUnsupported, "max_window_layers 1 < 2 layers"));
  ASSERT_EQ(hf(q2, HfConfig(qwen2.config, "Qwen2ForCausalLM", ", \"use_sliding_window\": true, \"sliding_window\": 4, \"max_window_layers\": 2")),
            Status::kOk) << last_error();
  EXPECT_EQ(out.config.sliding_window, 0u);
  ASSERT_EQ(hf(q2, HfConfig(qwen2.config, "Qwen2ForCausalLM", ", \"use_sliding_window\": false, \"sliding_window\": 4")), Status::kOk)
      << last_error();
  EXPECT_EQ(out.config.sliding_window, 0u);
  // Qwen3 with attention_bias (o_proj's too) is not read.
  const Written q3 = WriteSafetensors(qwen3, Stored::kF32, "Qwen3ForCausalLM");
  EXPECT_TRUE(FailsWith(hf(q3, HfConfig(qwen3.config, "Qwen3ForCausalLM", ", \"attention_bias\": true")), Status::kUnsupported, "attention_bias"));
  // Gemma 3's layer_types: a pattern is read, anything else refused.
  const Written g3 = WriteSafetensors(gemma3, Stored::kF32, "Gemma3ForCausalLM");
  const std::string s = "\"sliding_attention\"", f = "\"full_attention\"";
  ASSERT_EQ(hf(g3, HfConfig(gemma3.config, "Gemma3ForCausalLM", ", \"layer_types\": [" + s + "," + s + "," + f + "," + s + "," + s + "," + f + "]")),
            Status::kOk) << last_error();
  EXPECT_EQ(out.config.sliding_window_pattern, 3u);
  EXPECT_TRUE(FailsWith(hf(g3, HfConfig(gemma3.config, "Gemma3ForCausalLM", ", \"layer_types\": [" + s + "," + f + "," + f + "," + s + "," + s + "," + f + "]")),
                        Status::kUnsupported, "not every p-th layer full (layer 2)"));
  EXPECT_TRUE(FailsWith(hf(g3, HfConfig(gemma3.config, "Gemma3ForCausalLM", ", \"layer_types\": [" + s + "]")), Status::kInvalidArgument,
                        "must list the 6 layers"));
  // Gemma's activation and attention scale.
  EXPECT_TRUE(FailsWith(hf(g3, replaced(g3.config_json, "\"hidden_activation\": \"gelu_pytorch_tanh\"", "\"hidden_activation\": \"gelu\"")),
                        Status::kUnsupported, "not gelu_pytorch_tanh"));
  EXPECT_TRUE(FailsWith(hf(g3, replaced(g3.config_json, "\"query_pre_attn_scalar\"", "\"query_pre_attn_scalar_\"")), Status::kInvalidArgument,
                        "query_pre_attn_scalar is missing"));
}

TEST(LoadersJson, ParsesWhatConfigsHold) {
  JsonValue v;
  const std::string text = " {\"a\": [1, -2.5e3, true, false, null], \"s\": \"x\\u00e9\\ud83d\\ude00\\n\", \"o\": {}} ";
  ASSERT_EQ(parse_json(text.data(), text.size(), &v), Status::kOk) << last_error();
  ASSERT_EQ(v.kind, JsonValue::kObject);
  const JsonValue* a = v.get("a");
  ASSERT_TRUE(a && a->items.size() == 5);
  EXPECT_EQ(a->items[1].number, -2500.0);
  EXPECT_TRUE(a->items[2].boolean);
  EXPECT_EQ(a->items[4].kind, JsonValue::kNull);
  EXPECT_EQ(v.get("s")->text, "x\xc3\xa9\xf0\x9f\x98\x80\n");
  size_t n;
  EXPECT_TRUE(a->items[0].as_size(&n) && n == 1);
  EXPECT_FALSE(a->items[1].as_size(&n));
  for (const char* bad : {"", "{", "[1,]", "{\"a\":1,}", "01", "1 2", "\"\\ud800\"", "\"a", "nul", "{1:2}", "\"\x01\"", "-", "1."}) {
    EXPECT_NE(parse_json(bad, std::strlen(bad), &v), Status::kOk) << bad;
  }
  std::string deep(100, '[');
  deep += std::string(100, ']');
  EXPECT_TRUE(FailsWith(parse_json(deep.data(), deep.size(), &v), Status::kInvalidArgument, "deeper than 64"));
}

// The writer's half rounding against the library's exact widening: every
// half survives the round trip, and values between two halves round to the
// nearer (ties to even).
TEST(LoadersWriters, HalfRounding) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = f16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(f32_to_f16(f), h) << std::hex << h;
    if ((h & 0x7FFF) >= 0x7BFF) continue;  // the next is Inf (or past it)
    const float next = f16_to_f32(static_cast<uint16_t>(h + 1));
    const float mid = static_cast<float>((static_cast<double>(f) + next) / 2);
    ASSERT_EQ(f32_to_f16(mid), (h & 1) ? h + 1 : h) << std::hex << h;
    ASSERT_EQ(f32_to_f16(std::nextafter(mid, next)), h + 1) << std::hex << h;
  }
  EXPECT_EQ(f32_to_f16(65520.f), 0x7C00);
  EXPECT_EQ(f32_to_f16(65519.f), 0x7BFF);
}

}  // namespace
}  // namespace tilekit

// The decoder families beyond Llama (graph/llama.h: Mistral, Qwen2, Qwen3,
// Gemma 2, Gemma 3) on every path, against the fp64 forward of
// tests/llama_reference.h on the same random weights: a prompt in one step
// and decode steps after it within the reference's first-order bound (the
// derivation is at kSigmas in llama_reference.h), the same greedy tokens
// where the top two are further apart than their bounds; one and two threads
// bitwise; a decode batch of sequences of different lengths equal to each
// decoded alone, bitwise; configs and weights the model cannot run refused.
// Shapes are small (a separate binary from graph_test, the costliest qemu one).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "harness.h"
#include "llama_checks.h"
#include "llama_reference.h"
#include "tilekit/tilekit.h"

namespace tilekit {
namespace {

using testing::ArgMax;
using testing::CheckLogits;
using testing::EV;
using testing::FailsWith;
using testing::kSigmas;
using testing::Prompt;
using testing::Rng;
using testing::WithinBound;

const DecoderFamily kFamilies[] = {DecoderFamily::kMistral, DecoderFamily::kQwen2, DecoderFamily::kQwen3,
                                   DecoderFamily::kGemma2, DecoderFamily::kGemma3};

const char* FamilyName(DecoderFamily f) {
  switch (f) {
    case DecoderFamily::kLlama: return "llama";
    case DecoderFamily::kMistral: return "mistral";
    case DecoderFamily::kQwen2: return "qwen2";
    case DecoderFamily::kQwen3: return "qwen3";
    case DecoderFamily::kGemma2: return "gemma2";
    case DecoderFamily::kGemma3: return "gemma3";
  }
  return "?";
}

// A tiny model of each family with the numbers its checkpoints carry, scaled
// down: windows of 6 positions (a 9-token prompt and the decode steps run
// past them), Gemma 2's softcaps scaled to these logits (attention logits of
// O(1), output logits of a few units: bent, not passed through; a final cap
// of 3 squeezed the top two within their bounds on some seeds, leaving the
// greedy check nothing to decide), head_dim 16 apart from dim / heads
// = 12 where the family sets it (Qwen3, Gemma). Gemma 3 has three layers with
// a pattern of 3 (HF's rule with 6: two local layers, then a global one).
LlamaConfig FamilyConfig(DecoderFamily f) {
  LlamaConfig c;
  c.dim = 48;
  c.hidden = 96;
  c.layers = 2;
  c.heads = 4;
  c.kv_heads = 2;
  c.vocab = 97;
  c.max_seq_len = 64;
  c.norm_eps = 1e-6f;
  c.rope.theta = 10000.0;
  set_family(&c, f);
  switch (f) {
    case DecoderFamily::kLlama:
    case DecoderFamily::kQwen2: break;
    case DecoderFamily::kMistral: c.sliding_window = 6; break;
    case DecoderFamily::kQwen3: c.attn_head_dim = 16; break;
    case DecoderFamily::kGemma2:
      c.attn_head_dim = 16;
      c.sliding_window = 6;
      c.sliding_window_pattern = 2;
      c.attn_softcap = 2.f;
      c.final_softcap = 8.f;
      c.query_pre_attn_scalar = 24.f;
      break;
    case DecoderFamily::kGemma3:
      c.layers = 3;
      c.attn_head_dim = 16;
      c.sliding_window = 6;
      c.sliding_window_pattern = 3;
      c.rope.theta = 1e6;
      c.rope_local_theta = 10000.0;
      c.query_pre_attn_scalar = 16.f;
      break;
  }
  return c;
}

// The weights of a config, owned, uniform with variance 1/fan-in (so
// activations stay O(1)); norm weights near 1 as they scale (w, or 1 + w).
struct FamilyModel {
  LlamaConfig config;
  std::vector<std::vector<float>> store;
  LlamaWeights weights;

  FamilyModel(const LlamaConfig& c, uint64_t stream) : config(c) {
    Rng rng(stream);
    auto make = [&](size_t n, float lo, float hi) {
      store.emplace_back(n);
      rng.fill(store.back().data(), n, lo, hi);
      return store.back().data();
    };
    const float norm_lo = c.norm_weight_offset ? -0.5f : 0.5f;
    auto norm = [&](size_t n) { return make(n, norm_lo, norm_lo + 1.f); };
    auto matrix = [&](size_t rows, size_t cols) {
      const float s = std::sqrt(3.f / static_cast<float>(cols));
      return make(rows * cols, -s, s);
    };
    const size_t D = c.dim, H = c.hidden, hd = c.head_dim(), qd = c.heads * hd, kvd = c.kv_heads * hd;
    weights.embedding = make(c.vocab * D, -1.f, 1.f);
    for (size_t l = 0; l < c.layers; ++l) {
      LlamaLayerWeights lw;
      lw.attn_norm = norm(D);
      lw.wq = matrix(qd, D);
      lw.wk = matrix(kvd, D);
      lw.wv = matrix(kvd, D);
      lw.wo = matrix(D, qd);
      lw.ffn_norm = norm(D);
      lw.w1 = matrix(H, D);
      lw.w2 = matrix(D, H);
      lw.w3 = matrix(H, D);
      if (c.qkv_bias) lw.bq = make(qd, -0.5f, 0.5f), lw.bk = make(kvd, -0.5f, 0.5f), lw.bv = make(kvd, -0.5f, 0.5f);
      if (c.qk_norm) lw.q_norm = norm(hd), lw.k_norm = norm(hd);
      if (c.sandwich_norms) lw.attn_out_norm = norm(D), lw.ffn_out_norm = norm(D);
      weights.layers.push_back(lw);
    }
    weights.final_norm = norm(D);
    if (!c.tied_embeddings) weights.classifier = matrix(c.vocab, D);
  }
};

class ModelFamilies : public testing::PathTest {};
TILEKIT_INSTANTIATE_PATHS(ModelFamilies);

// A 9-token prompt in one step, then decode steps (past every window and
// the first cache block), each family against the fp64 reference.
TEST_P(ModelFamilies, LogitsAndGreedyTokensMatchTheReference) {
  TILEKIT_SEED_TRACE();
  const size_t steps = testing::Emulated() ? 10 : 24;
  for (DecoderFamily f : kFamilies) {
    SCOPED_TRACE(FamilyName(f));
    const FamilyModel m(FamilyConfig(f), 100 + static_cast<uint64_t>(f));
    LlamaOptions o;
    o.max_tokens = 16;
    LlamaModel model;
    ASSERT_EQ(model.build(m.config, m.weights, o), Status::kOk) << last_error();
    testing::LlamaReference ref(m.config, m.weights, 0.0, 0.0);
    KvSlot slot;
    ASSERT_EQ(slot.init(model.cache(), m.config.max_seq_len), Status::kOk);
    const std::vector<int32_t> prompt = Prompt(9, m.config.vocab, 200 + static_cast<uint64_t>(f));
    EV logits;
    for (int32_t t : prompt) logits = ref.step(t, prompt.size(), 1);
    ASSERT_EQ(model.forward(slot, prompt.data(), prompt.size()), Status::kOk) << last_error();
    int ambiguous = 0;
    int32_t next = static_cast<int32_t>(CheckLogits(model.logits().data, logits, "prefill", &ambiguous));
    for (size_t s = 0; s < steps; ++s) {
      ASSERT_EQ(model.forward(slot, &next, 1), Status::kOk) << last_error();
      logits = ref.step(next);
      next = static_cast<int32_t>(CheckLogits(model.logits().data, logits, "decode", &ambiguous));
      if (::testing::Test::HasFailure()) return;
    }
    EXPECT_LE(ambiguous, 1) << "greedy choices within rounding: the test proves little";
  }
}

// Packing and running on one thread and on two give the same logits, bitwise
// (every token's logits: prefill and decode steps of several sizes).
TEST_P(ModelFamilies, OneAndTwoThreadsBitwise) {
  TILEKIT_SEED_TRACE();
  for (DecoderFamily f : kFamilies) {
    SCOPED_TRACE(FamilyName(f));
    const FamilyModel m(FamilyConfig(f), 300 + static_cast<uint64_t>(f));
    LlamaOptions o;
    o.max_tokens = 40;
    o.all_logits = true;
    ThreadPool pool(2);
    LlamaModel m1, m2;
    ASSERT_EQ(m1.build(m.config, m.weights, o), Status::kOk) << last_error();
    o.pack_executor = &pool;
    ASSERT_EQ(m2.build(m.config, m.weights, o), Status::kOk) << last_error();
    KvSlot a, b;
    ASSERT_EQ(a.init(m1.cache(), m.config.max_seq_len), Status::kOk);
    ASSERT_EQ(b.init(m2.cache(), m.config.max_seq_len), Status::kOk);
    const std::vector<int32_t> tokens = Prompt(40, m.config.vocab, 7);
    for (size_t n : {40, 1, 1, 7}) {
      ASSERT_EQ(m1.forward(a, tokens.data(), n), Status::kOk) << last_error();
      ASSERT_EQ(m2.forward(b, tokens.data(), n, &pool), Status::kOk) << last_error();
      const MatrixView<const float> x = m1.logits(), y = m2.logits();
      ASSERT_EQ(x.rows, n);
      for (size_t i = 0; i < x.rows * x.cols; ++i) {
        ASSERT_EQ(testing::Bits(x.data[i]), testing::Bits(y.data[i])) << i;
      }
    }
  }
}

// Three sequences of different lengths (shorter and longer than the window)
// decoded in one step give each the logits it gets decoded alone, bitwise.
TEST_P(ModelFamilies, DecodeBatchEqualsEachAlone) {
  TILEKIT_SEED_TRACE();
  for (DecoderFamily f : kFamilies) {
    SCOPED_TRACE(FamilyName(f));
    const FamilyModel m(FamilyConfig(f), 400 + static_cast<uint64_t>(f));
    LlamaOptions o;
    o.max_tokens = 16;
    o.max_sequences = 3;
    LlamaModel batched, alone;
    ASSERT_EQ(batched.build(m.config, m.weights, o), Status::kOk) << last_error();
    ASSERT_EQ(alone.build(m.config, m.weights, o), Status::kOk) << last_error();
    const size_t V = m.config.vocab;
    KvSlot sb[3], sa[3];
    int32_t next[3];
    const size_t lengths[3] = {5, 11, 3};
    for (int s = 0; s < 3; ++s) {
      ASSERT_EQ(sb[s].init(batched.cache(), m.config.max_seq_len), Status::kOk);
      ASSERT_EQ(sa[s].init(alone.cache(), m.config.max_seq_len), Status::kOk);
      const std::vector<int32_t> p = Prompt(lengths[s], V, 10 + s);
      ASSERT_EQ(batched.forward(sb[s], p.data(), p.size()), Status::kOk) << last_error();
      ASSERT_EQ(alone.forward(sa[s], p.data(), p.size()), Status::kOk) << last_error();
      next[s] = static_cast<int32_t>(ArgMax(alone.logits().data, V));
    }
    for (int step = 0; step < 4; ++step) {
      SequenceStep seqs[3];
      for (int s = 0; s < 3; ++s) {
        ASSERT_EQ(sb[s].grow(batched.cache(), 1), Status::kOk);
        seqs[s] = sb[s].step(1);
      }
      ASSERT_EQ(batched.forward(Step{next, seqs, 3}), Status::kOk) << last_error();
      for (int s = 0; s < 3; ++s) ASSERT_EQ(sb[s].advance(1), Status::kOk);
      for (int s = 0; s < 3; ++s) {
        ASSERT_EQ(alone.forward(sa[s], &next[s], 1), Status::kOk) << last_error();
        for (size_t j = 0; j < V; ++j) {
          ASSERT_EQ(testing::Bits(batched.logits().data[s * V + j]), testing::Bits(alone.logits().data[j]))
              << "sequence " << s << " step " << step << " logit " << j;
        }
        next[s] = static_cast<int32_t>(ArgMax(alone.logits().data, V));
      }
    }
  }
}

// A Llama config with the families' fields at their defaults builds the
// graph it always built: the same nodes (no scale, softcap or extra norm),
// hence the same kernels and bits (graph_test checks those logits).
TEST(ModelFamiliesInput, LlamaDefaultsAddNoNode) {
  LlamaConfig c = FamilyConfig(DecoderFamily::kLlama);
  set_family(&c, DecoderFamily::kLlama);
  c.rope.pairing = RopePairing::kInterleaved;
  const FamilyModel m(c, 1);
  LlamaModel model;
  LlamaOptions o;
  ASSERT_EQ(model.build(m.config, m.weights, o), Status::kOk) << last_error();
  // Per layer: 2 norms, QKV (one fused GEMM), rope, kv_write, attention, Wo
  // (+ residual), gate/up, W2 (+ residual); then the embedding, the last
  // token (neither counted: copies), the final norm and the classifier.
  EXPECT_EQ(model.graph().stats().kernel_nodes, 9 * c.layers + 2);
  EXPECT_EQ(model.graph().stats().folded_adds, 2 * c.layers);
}

TEST(ModelFamiliesInput, UnsupportedConfigsAndMissingWeightsAreRefused) {
  const FamilyModel gemma(FamilyConfig(DecoderFamily::kGemma3), 2);
  LlamaOptions o;
  auto refused = [&](const LlamaConfig& c, const LlamaWeights& w, Status want, const char* why) {
    LlamaModel model;
    return FailsWith(model.build(c, w, o), want, why);
  };
  LlamaConfig c = gemma.config;
  c.mlp = Activation::kGeluTanh;
  EXPECT_TRUE(refused(c, gemma.weights, Status::kInvalidArgument, "gate/up pair"));
  c = gemma.config;
  c.attn_softcap = -1.f;
  EXPECT_TRUE(refused(c, gemma.weights, Status::kInvalidArgument, "finite and >= 0"));
  c = gemma.config;
  c.final_softcap = std::nanf("");
  EXPECT_TRUE(refused(c, gemma.weights, Status::kInvalidArgument, "finite and >= 0"));
  c = gemma.config;
  c.sliding_window = 0;  // the pattern and the local theta left without a window
  EXPECT_TRUE(refused(c, gemma.weights, Status::kInvalidArgument, "without a sliding_window"));
  c.sliding_window_pattern = 0;
  EXPECT_TRUE(refused(c, gemma.weights, Status::kInvalidArgument, "rope_local_theta"));
  c = gemma.config;
  c.attn_head_dim = 0;
  c.heads = 5;  // 48 columns in 5 heads, and no head_dim to say otherwise
  c.kv_heads = 5;
  EXPECT_TRUE(refused(c, gemma.weights, Status::kInvalidArgument, "set attn_head_dim"));
  LlamaWeights w = gemma.weights;
  w.layers[1].q_norm = nullptr;
  EXPECT_TRUE(refused(gemma.config, w, Status::kNullPointer, "q_norm"));
  w = gemma.weights;
  w.layers[0].ffn_out_norm = nullptr;
  EXPECT_TRUE(refused(gemma.config, w, Status::kNullPointer, "ffn_out_norm"));
  const FamilyModel qwen2(FamilyConfig(DecoderFamily::kQwen2), 3);
  w = qwen2.weights;
  w.layers[0].bv = nullptr;
  EXPECT_TRUE(refused(qwen2.config, w, Status::kNullPointer, "bq, bk, bv"));
}

// The graph nodes the families add refuse what their kernels would refuse on
// every run, at description.
TEST(ModelFamiliesInput, NodeArgumentsAreCheckedAtDescription) {
  Graph g;
  const TensorId x = g.input(8);
  EXPECT_EQ(g.softcap(x, 0.f), kNoTensor);
  EXPECT_TRUE(FailsWith(g.build(GraphConfig{}), Status::kInvalidArgument, "softcap of 0"));
  Graph g2;
  const TensorId y = g2.input(8);
  EXPECT_EQ(g2.scale(y, std::numeric_limits<float>::infinity()), kNoTensor);
  Graph g3;
  const TensorId z = g3.input(8);
  NormOptions no;
  no.heads = 3;
  const std::vector<float> w(8, 1.f);
  EXPECT_EQ(g3.rms_norm(z, w.data(), 1e-6f, no), kNoTensor);
  EXPECT_TRUE(FailsWith(g3.build(GraphConfig{}), Status::kShapeMismatch, "8 columns in 3 heads"));
  Graph g4;
  const TensorId q = g4.input(8);
  AttentionNodeOptions ao;
  ao.softcap = -2.f;
  EXPECT_EQ(g4.attention(q, 2, 0, ao), kNoTensor);
  EXPECT_TRUE(FailsWith(g4.build(GraphConfig{}), Status::kInvalidArgument, "softcap -2"));
  Graph g5;
  const TensorId a = g5.input(8), b = g5.input(4);
  EXPECT_EQ(g5.mul(a, b), kNoTensor);
  EXPECT_TRUE(FailsWith(g5.build(GraphConfig{}), Status::kShapeMismatch, "mul of 8 and 4 columns"));
}

}  // namespace
}  // namespace tilekit

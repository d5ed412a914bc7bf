// The graph executor and the Llama model on every path, against a plain fp64
// forward written from the Llama formulas (no tilekit kernels) that carries a
// first-order running error bound beside each value: logits within that bound
// and the same greedy tokens, bf16 weights, int8 / int4 weights (the reference
// on their dequantized values, tests/quant_reference.h), chunked prefill,
// batched decode, threads, allocation-freedom, bad input and checkpoints; the
// arena planner on its own.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include <unistd.h>

#include "harness.h"
#include "llama_checks.h"
#include "llama_reference.h"
#include "tilekit/graph/arena.h"
#include "tilekit/loaders/llama2c.h"
#include "tilekit/tilekit.h"

#include "count_allocations.h"

namespace tilekit {
namespace {

using Reference = testing::LlamaReference;
using testing::ArgMax;
using testing::CheckLogits;
using testing::EV;
using testing::FailsWith;
using testing::kBf16Eps;
using testing::kSigmas;
using testing::kU;
using testing::PathTest;
using testing::Prompt;
using testing::Rng;
using testing::WithinBound;

double Gamma(size_t n) { return n * kU / (1 - n * kU); }

// A random model in llama2.c's layout (so checkpoints and models share it).
struct RandomModel {
  LlamaConfig config;
  std::vector<float> data;
  LlamaWeights weights;
  RandomModel(const LlamaConfig& c, uint64_t stream) : config(c) {
    Rng rng(stream);
    size_t count = 0;
    EXPECT_TRUE(llama2c_floats(c, &count));
    data.resize(count);
    llama2c_weights(c, data.data(), &weights);
    testing::FillLlamaWeights(c, weights, [&](float lo, float hi) { return rng.uniform(lo, hi); });
  }
};

// What a LlamaModel with kInt8 / kInt4 weights multiplies, for the
// reference: every linear's weights (the classifier's too) quantized by the
// documented rule (tests/quant_reference.h) and dequantized, the norms and
// the embedding table (looked up in fp32) as they were. The config unties the
// classifier (the dequantized table) from the table.
struct QuantizedModel {
  LlamaConfig config;
  std::vector<float> data, mag, classifier, classifier_mag;
  LlamaWeights weights;
  testing::QuantizedBound bound;
  // The quantization of all the weights: the largest |w - q·s| and scale,
  // Σ(w - q·s)² and Σw².
  double max_error = 0, max_scale = 0, sum_sq_error = 0, sum_sq = 0;

  QuantizedModel(const RandomModel& m, WeightType type, size_t group)
      : config(m.config), data(m.data), mag(m.data.size(), 0.f) {
    const LlamaConfig& c = m.config;
    llama2c_weights(c, data.data(), &weights);
    llama2c_weights(c, mag.data(), &bound.magnitudes);
    bound.group = group;
    // Whether (and per how many values) the path's kernel for these weights
    // quantizes x, from the layout it packs a linear of K inputs in.
    const auto layout = [type, group, &m](size_t k) {  // m outlives the model it quantizes
      PackOptions po;
      po.group = group;
      PanelLayout l;
      const WeightSource one_row = weights_nk(m.data.data(), 1, k);
      EXPECT_EQ(packing_layout(&one_row, 1, type, PackKind::kSeparate, po, &l), Status::kOk) << last_error();
      return l;
    };
    bound.a_int8_min_rows = layout(c.dim).a_int8_min_rows;
    bound.a_group = [layout](size_t k) { return static_cast<size_t>(layout(k).a_group); };
    // The [n][k] matrix at `w` (in m.data) into out and out_mag.
    auto quantize = [&](const float* w, size_t n, size_t k, float* out, float* out_mag) {
      const testing::Dequantized d = testing::Quantize(w, k, n, SourceLayout::kNK, type, group);
      std::copy(d.w.begin(), d.w.end(), out);
      std::copy(d.mag.begin(), d.mag.end(), out_mag);
      max_error = std::max(max_error, d.max_error);
      max_scale = std::max(max_scale, d.max_scale);
      sum_sq_error += d.sum_sq_error;
      sum_sq += d.sum_sq;
    };
    auto in_place = [&](const float* w, size_t n, size_t k) {
      const size_t at = static_cast<size_t>(w - m.data.data());
      quantize(w, n, k, data.data() + at, mag.data() + at);
    };
    const size_t D = c.dim, H = c.hidden, qd = c.heads * c.head_dim(), kvd = c.kv_heads * c.head_dim();
    for (const LlamaLayerWeights& l : m.weights.layers) {
      in_place(l.wq, qd, D);
      in_place(l.wk, kvd, D);
      in_place(l.wv, kvd, D);
      in_place(l.wo, D, qd);
      in_place(l.w1, H, D);
      in_place(l.w2, D, H);
      in_place(l.w3, H, D);
    }
    if (c.tied_embeddings) {
      classifier.resize(c.vocab * D);
      classifier_mag.resize(c.vocab * D);
      quantize(m.weights.embedding, c.vocab, D, classifier.data(), classifier_mag.data());
      weights.classifier = classifier.data();
      bound.magnitudes.classifier = classifier_mag.data();
      config.tied_embeddings = false;
    } else {
      in_place(m.weights.classifier, c.vocab, D);
    }
  }
};

LlamaConfig TinyConfig(RopePairing pairing = RopePairing::kInterleaved) {
  LlamaConfig c;
  c.dim = 48;
  c.hidden = 112;
  c.layers = 2;
  c.heads = 6;
  c.kv_heads = 3;  // GQA; kv width 24 keeps every GEMM on the path's panels
  c.vocab = 97;
  c.max_seq_len = 96;
  c.rope.pairing = pairing;
  c.rope.theta = 10000.0;
  return c;
}

class GraphLlama : public PathTest {};
TILEKIT_INSTANTIATE_PATHS(GraphLlama);

// The fp64 reference of the model `m` packed as `type` weights (group: K
// values per scale of quantized ones): fp32 weights; bf16 ones with their
// rounding in the bound; quantized ones dequantized (`quantized`, which must
// outlive it).
Reference ReferenceFor(const RandomModel& m, WeightType type, const QuantizedModel* quantized) {
  if (quantized) return Reference(quantized->config, quantized->weights, 0.0, 0.0, &quantized->bound);
  const bool bf = type == WeightType::kBf16;
  return Reference(m.config, m.weights, bf ? kBf16Eps : 0.0,
                   bf && active_panel_layout(WeightType::kBf16).rounds_a_to_bf16() ? kBf16Eps : 0.0);
}

std::unique_ptr<QuantizedModel> QuantizedFor(const RandomModel& m, WeightType type, size_t group) {
  return is_quantized(type) ? std::make_unique<QuantizedModel>(m, type, group) : nullptr;
}

void RunAgainstReference(WeightType type, RopePairing pairing, size_t steps, uint64_t stream, size_t group = 32) {
  TILEKIT_SEED_TRACE();
  const RandomModel m(TinyConfig(pairing), stream);
  LlamaOptions o;
  o.max_tokens = 16;
  o.weights = type;
  o.weight_group = group;
  LlamaModel model;
  ASSERT_EQ(model.build(m.config, m.weights, o), Status::kOk) << last_error();
  const std::unique_ptr<QuantizedModel> quantized = QuantizedFor(m, type, group);
  Reference ref = ReferenceFor(m, type, quantized.get());
  KvSlot slot;
  ASSERT_EQ(slot.init(model.cache(), m.config.max_seq_len), Status::kOk);
  const std::vector<int32_t> prompt = Prompt(9, m.config.vocab, stream + 1);
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
  // bf16 weights: the bound (~1/40 tight here, led by the softmax's worst
  // case) exceeds most top-two gaps, so only fp32 must decide its tokens.
  if (type == WeightType::kF32) {
    EXPECT_LE(ambiguous, 1) << "greedy choices within rounding: the test proves little";
  }
}

// Decode steps after the prompt: fewer when emulated (the fp64 reference's
// steps are most of the time under qemu), still past the prompt's positions
// and its first cache block.
size_t Fp32DecodeSteps() { return testing::Emulated() ? 24 : 64; }
size_t QuantizedDecodeSteps() { return testing::Emulated() ? 6 : 24; }

TEST_P(GraphLlama, Fp32LogitsAndGreedyTokensMatchTheReference) {
  RunAgainstReference(WeightType::kF32, RopePairing::kInterleaved, Fp32DecodeSteps(), 1);
}
TEST_P(GraphLlama, Bf16WeightsWithinTheirBound) { RunAgainstReference(WeightType::kBf16, RopePairing::kHalfSplit, 16, 2); }
// Quantized weights against the reference on their dequantized values, every
// group size (K = 48 and 112 here: groups of 32 and 64 end short of K, 128
// and all of K are one group).
TEST_P(GraphLlama, Int8WeightsWithinTheirBound) {
  for (size_t group : {32, 64, 128, 0}) {
    SCOPED_TRACE(::testing::Message() << "group " << group);
    RunAgainstReference(WeightType::kInt8, group % 64 ? RopePairing::kInterleaved : RopePairing::kHalfSplit,
                        QuantizedDecodeSteps(), 40 + group, group);
  }
}
TEST_P(GraphLlama, Int4WeightsWithinTheirBound) {
  for (size_t group : {32, 64, 128}) {
    SCOPED_TRACE(::testing::Message() << "group " << group);
    RunAgainstReference(WeightType::kInt4, group % 64 ? RopePairing::kInterleaved : RopePairing::kHalfSplit,
                        QuantizedDecodeSteps(), 50 + group, group);
  }
}

// Every logit of a prompt run in chunks and run at once, within the
// reference's bound. The chunks: a GEMV's few rows, one row, and chunks past
// the integer kernels' 8 rows; emulated, without the last 18 (the fp64
// reference's steps are most of the time under qemu).
void ChunkedPrefillAndOneShot(WeightType type, uint64_t stream) {
  TILEKIT_SEED_TRACE();
  const RandomModel m(TinyConfig(), stream);
  LlamaOptions o;
  o.max_tokens = 40;
  o.all_logits = true;
  o.weights = type;
  LlamaModel one, chunked;
  ASSERT_EQ(one.build(m.config, m.weights, o), Status::kOk);
  ASSERT_EQ(chunked.build(m.config, m.weights, o), Status::kOk);
  const std::vector<size_t> chunks =
      testing::Emulated() ? std::vector<size_t>{5, 1, 13} : std::vector<size_t>{5, 1, 13, 18};
  size_t tokens = 0;
  for (size_t chunk : chunks) tokens += chunk;
  const std::vector<int32_t> prompt = Prompt(tokens, m.config.vocab, 4);
  KvSlot a, b;
  ASSERT_EQ(a.init(one.cache(), 96), Status::kOk);
  ASSERT_EQ(b.init(chunked.cache(), 96), Status::kOk);
  ASSERT_EQ(one.forward(a, prompt.data(), prompt.size()), Status::kOk);
  const size_t V = m.config.vocab;
  const std::vector<float> whole(one.logits().data, one.logits().data + prompt.size() * V);
  const std::unique_ptr<QuantizedModel> quantized = QuantizedFor(m, type, o.weight_group);
  Reference ref = ReferenceFor(m, type, quantized.get());
  size_t at = 0;
  for (size_t chunk : chunks) {
    ASSERT_EQ(chunked.forward(b, prompt.data() + at, chunk), Status::kOk) << last_error();
    for (size_t t = 0; t < chunk; ++t) {
      // The one-shot run's GEMMs have every token's rows, the chunked run's a
      // chunk's: the bound of the larger covers both.
      const EV r = ref.step(prompt[at + t], prompt.size(), prompt.size());
      for (size_t j = 0; j < V; ++j) {
        const float x = chunked.logits().data[t * V + j], y = whole[(at + t) * V + j];
        ASSERT_TRUE(WithinBound(std::fabs(x - r.v[j]), kSigmas * r.e[j], "chunked")) << "token " << at + t;
        ASSERT_TRUE(WithinBound(std::fabs(y - r.v[j]), kSigmas * r.e[j], "one-shot")) << "token " << at + t;
      }
    }
    at += chunk;
  }
}

TEST_P(GraphLlama, ChunkedPrefillEqualsOneShot) { ChunkedPrefillAndOneShot(WeightType::kF32, 3); }
TEST_P(GraphLlama, QuantizedChunkedPrefillEqualsOneShot) {
  ChunkedPrefillAndOneShot(WeightType::kInt8, 60);
  ChunkedPrefillAndOneShot(WeightType::kInt4, 61);
}

// Three sequences of different lengths decoded in one step give each the
// logits it gets decoded alone: the same bits with fp32 weights. Quantized
// weights take another kernel for one row (the GEMV: products summed per
// group, then scaled) than for several (dequantized K blocks under the vector
// tile), so there each sequence, batched and alone, is within the reference's
// bound instead.
void DecodeBatchAndEachAlone(WeightType type, uint64_t stream) {
  TILEKIT_SEED_TRACE();
  const RandomModel m(TinyConfig(), stream);
  LlamaOptions o;
  o.max_tokens = 16;
  o.max_sequences = 3;
  o.weights = type;
  LlamaModel batched, alone;
  ASSERT_EQ(batched.build(m.config, m.weights, o), Status::kOk);
  ASSERT_EQ(alone.build(m.config, m.weights, o), Status::kOk);
  const size_t V = m.config.vocab;
  const bool bitwise = !is_quantized(type);
  const std::unique_ptr<QuantizedModel> quantized = QuantizedFor(m, type, o.weight_group);
  std::vector<Reference> refs;
  KvSlot sb[3], sa[3];
  int32_t next[3];
  const size_t lengths[3] = {5, 11, 3};
  for (int s = 0; s < 3; ++s) {
    ASSERT_EQ(sb[s].init(batched.cache(), 96), Status::kOk);
    ASSERT_EQ(sa[s].init(alone.cache(), 96), Status::kOk);
    const std::vector<int32_t> p = Prompt(lengths[s], V, 10 + s);
    ASSERT_EQ(batched.forward(sb[s], p.data(), p.size()), Status::kOk);
    ASSERT_EQ(alone.forward(sa[s], p.data(), p.size()), Status::kOk);
    next[s] = static_cast<int32_t>(ArgMax(alone.logits().data, V));
    if (bitwise) continue;
    refs.push_back(ReferenceFor(m, type, quantized.get()));
    for (int32_t t : p) (void)refs.back().step(t, p.size(), 1);
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
      ASSERT_EQ(alone.forward(sa[s], &next[s], 1), Status::kOk);
      const float* in_batch = batched.logits().data + s * V;
      if (bitwise) {
        for (size_t j = 0; j < V; ++j) {
          ASSERT_EQ(testing::Bits(in_batch[j]), testing::Bits(alone.logits().data[j]))
              << "sequence " << s << " step " << step << " logit " << j;
        }
      } else {
        const EV r = refs[s].step(next[s], 3, 3);  // batched: 3 rows; alone: 1, within the same bound
        for (size_t j = 0; j < V; ++j) {
          ASSERT_TRUE(WithinBound(std::fabs(in_batch[j] - r.v[j]), kSigmas * r.e[j], "batched"))
              << "sequence " << s << " step " << step << " logit " << j;
          ASSERT_TRUE(WithinBound(std::fabs(alone.logits().data[j] - r.v[j]), kSigmas * r.e[j], "alone"))
              << "sequence " << s << " step " << step << " logit " << j;
        }
      }
      next[s] = static_cast<int32_t>(ArgMax(alone.logits().data, V));
    }
  }
}

TEST_P(GraphLlama, DecodeBatchEqualsEachAlone) { DecodeBatchAndEachAlone(WeightType::kF32, 5); }
TEST_P(GraphLlama, QuantizedDecodeBatchAndEachAloneWithinTheirBound) {
  DecodeBatchAndEachAlone(WeightType::kInt8, 62);
  DecodeBatchAndEachAlone(WeightType::kInt4, 63);
}

// Packing and running on one thread and on two give the same logits, bitwise.
void OneAndTwoThreads(WeightType type, uint64_t stream) {
  TILEKIT_SEED_TRACE();
  const RandomModel m(TinyConfig(), stream);
  LlamaOptions o;
  o.max_tokens = 40;
  o.all_logits = true;
  o.weights = type;
  ThreadPool pool(2);
  LlamaModel m1, m2;
  ASSERT_EQ(m1.build(m.config, m.weights, o), Status::kOk);
  o.pack_executor = &pool;
  ASSERT_EQ(m2.build(m.config, m.weights, o), Status::kOk);
  KvSlot a, b;
  ASSERT_EQ(a.init(m1.cache(), 96), Status::kOk);
  ASSERT_EQ(b.init(m2.cache(), 96), Status::kOk);
  std::vector<int32_t> tokens = Prompt(40, m.config.vocab, 7);
  for (size_t n : {40, 1, 1, 7}) {
    ASSERT_EQ(m1.forward(a, tokens.data(), n), Status::kOk);
    ASSERT_EQ(m2.forward(b, tokens.data(), n, &pool), Status::kOk);
    const MatrixView<const float> x = m1.logits(), y = m2.logits();
    ASSERT_EQ(x.rows, n);
    for (size_t i = 0; i < x.rows * x.cols; ++i) ASSERT_EQ(testing::Bits(x.data[i]), testing::Bits(y.data[i])) << i;
  }
}

TEST_P(GraphLlama, OneAndTwoThreadsBitwise) { OneAndTwoThreads(WeightType::kF32, 6); }
TEST_P(GraphLlama, QuantizedOneAndTwoThreadsBitwise) {
  OneAndTwoThreads(WeightType::kInt8, 64);
  OneAndTwoThreads(WeightType::kInt4, 65);
}

void NoAllocationAcrossSteps(WeightType type, uint64_t stream) {
  TILEKIT_SEED_TRACE();
  const RandomModel m(TinyConfig(), stream);
  LlamaOptions o;
  o.max_tokens = 12;
  o.max_sequences = 3;
  o.weights = type;
  LlamaModel model;
  ASSERT_EQ(model.build(m.config, m.weights, o), Status::kOk);
  KvSlot slots[3];
  for (KvSlot& s : slots) ASSERT_EQ(s.init(model.cache(), m.config.max_seq_len), Status::kOk);
  const std::vector<int32_t> tokens = Prompt(12, m.config.vocab, 9);
  Rng rng(10);
  auto step = [&](size_t seqs, size_t each) {
    SequenceStep st[3];
    for (size_t s = 0; s < seqs; ++s) {
      if (slots[s].length() + each > m.config.max_seq_len) slots[s].release(model.cache());
      ASSERT_EQ(slots[s].grow(model.cache(), each), Status::kOk);
      st[s] = slots[s].step(each);
    }
    ASSERT_EQ(model.forward(Step{tokens.data(), st, seqs}), Status::kOk) << last_error();
    for (size_t s = 0; s < seqs; ++s) ASSERT_EQ(slots[s].advance(each), Status::kOk);
  };
  // Warm-up: the largest step, and the longest contexts the steps below reach.
  step(3, 4);
  step(1, 12);
  for (KvSlot& s : slots) s.release(model.cache());
  for (size_t i = 0; i < 90; ++i) step(3, 1);
  for (KvSlot& s : slots) s.release(model.cache());
  // Natively 100 steps of random sizes. Emulated, every size once (22 steps:
  // 1 to 3 sequences of 1 to 12 / seqs tokens) in a random order: each size by
  // construction, and the first slot still runs past max_seq_len and starts over.
  std::vector<std::array<size_t, 2>> sizes;
  if (testing::Emulated()) {
    for (size_t seqs = 1; seqs <= 3; ++seqs) {
      for (size_t each = 1; each <= 12 / seqs; ++each) sizes.push_back({seqs, each});
    }
    std::shuffle(sizes.begin(), sizes.end(), rng.engine());
  } else {
    for (int i = 0; i < 100; ++i) {
      const size_t seqs = 1 + rng.below(3);
      sizes.push_back({seqs, 1 + rng.below(12 / seqs)});
    }
  }
  const size_t before = g_allocations.load();
  for (const auto& size : sizes) step(size[0], size[1]);
  EXPECT_EQ(g_allocations.load(), before);
}

TEST_P(GraphLlama, NoAllocationAcrossStepsOfAnySize) { NoAllocationAcrossSteps(WeightType::kF32, 8); }
TEST_P(GraphLlama, QuantizedNoAllocationAcrossStepsOfAnySize) {
  NoAllocationAcrossSteps(WeightType::kInt8, 66);
  NoAllocationAcrossSteps(WeightType::kInt4, 67);
}

// A profiled run (StepProfile) gives the bits of an unprofiled one, counts
// each kind's nodes, and its kinds add up to the step: what is outside every
// node (the step's checks, the interpreter, the clock reads) is a few percent
// of a step whose kernels do some work (dim 256 here). The nodes' sum can
// never exceed the step: they are disjoint intervals inside it. Decode steps
// are profiled one by one and the median step's share checked, so a
// preemption between two nodes of one step on a shared machine fails nothing.
TEST(GraphProfile, KindsAddUpToTheStepAndProfilingChangesNoBits) {
  LlamaConfig c = TinyConfig();
  c.dim = 256, c.hidden = 688, c.heads = 8, c.kv_heads = 4, c.vocab = 1000;
  const RandomModel m(c, 90);
  LlamaOptions o;
  o.max_tokens = 16;
  LlamaModel plain, profiled;
  ASSERT_EQ(plain.build(m.config, m.weights, o), Status::kOk) << last_error();
  ASSERT_EQ(profiled.build(m.config, m.weights, o), Status::kOk) << last_error();
  KvSlot a, b;
  ASSERT_EQ(a.init(plain.cache(), c.max_seq_len), Status::kOk);
  ASSERT_EQ(b.init(profiled.cache(), c.max_seq_len), Status::kOk);
  ThreadPool pool(2);
  // A 16-token prefill, then decode steps (fewer when emulated: the median
  // share below needs a few, not 24).
  std::vector<size_t> steps_run(testing::Emulated() ? 9 : 25, 1);
  steps_run[0] = 16;
  const std::vector<int32_t> tokens = Prompt(16 + steps_run.size() - 1, c.vocab, 91);
  StepProfile total;
  std::vector<double> inside;  // per decode step: nodes_ns / step_ns
  size_t at = 0;
  for (size_t n : steps_run) {
    ASSERT_EQ(a.grow(plain.cache(), n), Status::kOk);
    ASSERT_EQ(b.grow(profiled.cache(), n), Status::kOk);
    const SequenceStep sa = a.step(n), sb = b.step(n);
    StepProfile p;
    ASSERT_EQ(plain.forward(Step{tokens.data() + at, &sa, 1}, &pool), Status::kOk) << last_error();
    ASSERT_EQ(profiled.forward(Step{tokens.data() + at, &sb, 1}, &pool, &p), Status::kOk) << last_error();
    ASSERT_EQ(a.advance(n), Status::kOk);
    ASSERT_EQ(b.advance(n), Status::kOk);
    at += n;
    const MatrixView<const float> x = plain.logits(), y = profiled.logits();
    for (size_t i = 0; i < x.cols; ++i) ASSERT_EQ(testing::Bits(x.data[i]), testing::Bits(y.data[i])) << i;
    EXPECT_EQ(p.steps, 1u);
    EXPECT_LE(p.nodes_ns(), p.step_ns);
    if (n == 1) inside.push_back(static_cast<double>(p.nodes_ns()) / p.step_ns);
    total += p;
  }
  // Per step: a fused QKV, the output projection, gate/up and down per layer
  // and the classifier; attention and RoPE per layer; two norms per layer and
  // the final one; the embedding lookup, a KV write per layer and the last row.
  const uint64_t steps = total.steps, L = c.layers;
  EXPECT_EQ(steps, steps_run.size());
  EXPECT_EQ(total.kind_nodes(NodeKind::kLinear), steps * (4 * L + 1));
  EXPECT_EQ(total.kind_nodes(NodeKind::kAttention), steps * L);
  EXPECT_EQ(total.kind_nodes(NodeKind::kNorm), steps * (2 * L + 1));
  EXPECT_EQ(total.kind_nodes(NodeKind::kRope), steps * L);
  EXPECT_EQ(total.kind_nodes(NodeKind::kOther), steps * (L + 2));
  for (size_t k = 0; k < kNodeKinds; ++k) EXPECT_GT(total.ns[k], 0u) << node_kind_name(static_cast<NodeKind>(k));
  EXPECT_LE(total.nodes_ns(), total.step_ns);
  std::nth_element(inside.begin(), inside.begin() + inside.size() / 2, inside.end());
  EXPECT_GE(inside[inside.size() / 2], 0.9) << "the median decode step spends more than 10% outside its nodes";
  // Failed runs add nothing.
  const StepProfile before = total;
  const SequenceStep bad{nullptr, 0, 0, 1};
  EXPECT_NE(profiled.forward(Step{tokens.data(), &bad, 1}, &pool, &total), Status::kOk);
  EXPECT_EQ(total.steps, before.steps);
  EXPECT_EQ(total.step_ns, before.step_ns);
}

// The quantization of the tiny model's weights, per type and group, and what
// it does to the logits against the model's fp32 weights: printed (the
// numbers the docs quote), with the rule checked (each weight within half a
// step of its scale).
TEST(GraphLlamaQuantized, QuantizationErrorOfTheWeights) {
  TILEKIT_SEED_TRACE();
  const RandomModel m(TinyConfig(), 70);
  const size_t V = m.config.vocab;
  const std::vector<int32_t> prompt = Prompt(24, V, 71);
  Reference exact(m.config, m.weights, 0, 0);
  std::vector<EV> want;
  for (int32_t t : prompt) want.push_back(exact.step(t));
  std::printf("quantized tiny Llama (dim 48, hidden 112, 2 layers, vocab 97), %zu tokens in one step (the kernel "
              "quantizes activations too where its layout says so), against fp32 weights:\n",
              prompt.size());
  struct Case {
    WeightType type;
    size_t group;
  };
  for (const Case& c : {Case{WeightType::kInt8, 32}, Case{WeightType::kInt8, 64}, Case{WeightType::kInt8, 128},
                        Case{WeightType::kInt8, 0}, Case{WeightType::kInt4, 32}, Case{WeightType::kInt4, 64},
                        Case{WeightType::kInt4, 128}}) {
    const QuantizedModel q(m, c.type, c.group);
    EXPECT_LE(q.max_error, q.max_scale * (0.5 + 1e-6)) << weight_type_name(c.type) << " group " << c.group;
    LlamaOptions o;
    o.max_tokens = prompt.size();
    o.all_logits = true;
    o.weights = c.type;
    o.weight_group = c.group;
    LlamaModel model;
    ASSERT_EQ(model.build(m.config, m.weights, o), Status::kOk) << last_error();
    KvSlot slot;
    ASSERT_EQ(slot.init(model.cache(), m.config.max_seq_len), Status::kOk);
    ASSERT_EQ(model.forward(slot, prompt.data(), prompt.size()), Status::kOk) << last_error();
    double sq_diff = 0, sq = 0, max_diff = 0;
    size_t agree = 0;
    for (size_t t = 0; t < prompt.size(); ++t) {
      const float* got = model.logits().data + t * V;
      size_t best = 0;
      for (size_t j = 0; j < V; ++j) {
        const double d = got[j] - want[t].v[j];
        sq_diff += d * d;
        sq += want[t].v[j] * want[t].v[j];
        max_diff = std::max(max_diff, std::fabs(d));
        if (want[t].v[j] > want[t].v[best]) best = j;
      }
      agree += ArgMax(got, V) == best;
    }
    std::printf("  %s group %3zu: weights rms error %.2e of rms, max |w - q·s| %.3g (max scale %.3g), %.2f MB packed; "
                "logits rms error %.2e of rms, max %.3g; greedy token as fp32's %zu/%zu\n",
                weight_type_name(c.type), c.group, std::sqrt(q.sum_sq_error / q.sum_sq), q.max_error, q.max_scale,
                model.graph().stats().packed_bytes / 1e6, std::sqrt(sq_diff / sq), max_diff, agree, prompt.size());
  }
}

TEST(GraphLlamaInput, BadConfigsAndStepsAreRefused) {
  const RandomModel m(TinyConfig(), 11);
  LlamaOptions o;
  o.max_tokens = 4;
  {
    LlamaConfig c = m.config;
    c.heads = 5;
    LlamaModel model;
    EXPECT_TRUE(FailsWith(model.build(c, m.weights, o), Status::kInvalidArgument, "heads do not divide dim"));
  }
  {
    LlamaConfig c = m.config;
    c.kv_heads = 4;
    LlamaModel model;
    EXPECT_TRUE(FailsWith(model.build(c, m.weights, o), Status::kInvalidArgument, "kv heads do not divide"));
  }
  LlamaModel model;
  ASSERT_EQ(model.build(m.config, m.weights, o), Status::kOk);
  KvSlot slot;
  ASSERT_EQ(slot.init(model.cache(), m.config.max_seq_len), Status::kOk);
  const std::vector<int32_t> tokens = Prompt(5, m.config.vocab, 12);
  EXPECT_TRUE(FailsWith(model.forward(slot, tokens.data(), 5), Status::kInvalidArgument, "built for at most 4"));
  const int32_t bad[2] = {3, static_cast<int32_t>(m.config.vocab)};
  EXPECT_TRUE(FailsWith(model.forward(slot, bad, 2), Status::kInvalidArgument, "outside the vocabulary"));
  const int32_t negative = -1;
  EXPECT_TRUE(FailsWith(model.forward(slot, &negative, 1), Status::kInvalidArgument, "outside the vocabulary"));
  const SequenceStep no_blocks{nullptr, 0, 0, 1};
  EXPECT_TRUE(FailsWith(model.forward(Step{tokens.data(), &no_blocks, 1}), Status::kInvalidArgument, "blocks cannot hold"));
  // Still usable after refusals.
  EXPECT_EQ(model.forward(slot, tokens.data(), 4), Status::kOk) << last_error();
}

TEST(GraphLlamaInput, Llama2cCheckpoints) {
  LlamaConfig c = TinyConfig();
  c.tied_embeddings = false;
  const RandomModel m(c, 13);
  // One file per process: ctest runs the qemu legs of this binary at once.
  const std::string path = ::testing::TempDir() + "graph_test_model." + std::to_string(getpid()) + ".bin";
  Llama2cHeader h{48, 112, 2, 6, 3, -97, 96};
  ASSERT_EQ(save_llama2c(path.c_str(), h, m.data.data(), m.data.size()), Status::kOk);
  Llama2cCheckpoint ck;
  ASSERT_EQ(load_llama2c(path.c_str(), &ck), Status::kOk) << last_error();
  EXPECT_FALSE(ck.config.tied_embeddings);
  EXPECT_EQ(ck.config.vocab, 97u);
  EXPECT_EQ(ck.config.rope.pairing, RopePairing::kInterleaved);
  EXPECT_EQ(ck.data, m.data);
  EXPECT_EQ(ck.weights.classifier - ck.data.data(), m.weights.classifier - m.data.data());
  // Truncated, and one float too many.
  ASSERT_EQ(save_llama2c(path.c_str(), h, m.data.data(), m.data.size() - 1), Status::kOk);
  EXPECT_TRUE(FailsWith(load_llama2c(path.c_str(), &ck), Status::kShapeMismatch, "truncated"));
  std::vector<float> longer = m.data;
  longer.push_back(1.f);
  ASSERT_EQ(save_llama2c(path.c_str(), h, longer.data(), longer.size()), Status::kOk);
  EXPECT_TRUE(FailsWith(load_llama2c(path.c_str(), &ck), Status::kShapeMismatch, "header says"));
  // A header that does not fit: kv heads not dividing heads, a zero size.
  h.n_kv_heads = 4;
  ASSERT_EQ(save_llama2c(path.c_str(), h, m.data.data(), m.data.size()), Status::kOk);
  EXPECT_TRUE(FailsWith(load_llama2c(path.c_str(), &ck), Status::kInvalidArgument, "kv heads do not divide"));
  h.n_kv_heads = 3, h.dim = 0;
  ASSERT_EQ(save_llama2c(path.c_str(), h, m.data.data(), m.data.size()), Status::kOk);
  EXPECT_TRUE(FailsWith(load_llama2c(path.c_str(), &ck), Status::kInvalidArgument, "size <= 0"));
  EXPECT_TRUE(FailsWith(load_llama2c("/nonexistent/graph_test.bin", &ck), Status::kInvalidArgument, "cannot open"));
  std::remove(path.c_str());
}

// The same checkpoint from memory and from a stream (read from its position);
// a header whose body would be 2^40 floats, with 100 bytes after it, is refused
// before anything is allocated.
TEST(GraphLlamaInput, Llama2cFromMemoryAndStream) {
  LlamaConfig c = TinyConfig();
  c.tied_embeddings = false;
  const RandomModel m(c, 14);
  const int32_t raw[7] = {48, 112, 2, 6, 3, -97, 96};
  std::vector<unsigned char> file(3 + sizeof(raw) + m.data.size() * sizeof(float));
  std::memcpy(file.data() + 3, raw, sizeof(raw));
  std::memcpy(file.data() + 3 + sizeof(raw), m.data.data(), m.data.size() * sizeof(float));
  Llama2cCheckpoint from_memory, from_stream;
  ASSERT_EQ(load_llama2c_memory(file.data() + 3, file.size() - 3, &from_memory), Status::kOk) << last_error();
  EXPECT_EQ(from_memory.data, m.data);
  EXPECT_EQ(from_memory.weights.classifier - from_memory.data.data(), m.weights.classifier - m.data.data());
  std::FILE* f = fmemopen(file.data(), file.size(), "rb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(std::fseek(f, 3, SEEK_SET), 0);
  ASSERT_EQ(load_llama2c_stream(f, "fmemopen", &from_stream), Status::kOk) << last_error();
  std::fclose(f);
  EXPECT_EQ(from_stream.data, m.data);
  EXPECT_FALSE(from_stream.config.tied_embeddings);
  EXPECT_TRUE(FailsWith(load_llama2c_memory(file.data() + 3, file.size() - 4, &from_memory), Status::kShapeMismatch,
                        "truncated"));
  EXPECT_TRUE(FailsWith(load_llama2c_memory(file.data(), 27, &from_memory), Status::kInvalidArgument, "28-byte header"));
  EXPECT_TRUE(FailsWith(load_llama2c_stream(nullptr, "none", &from_memory), Status::kNullPointer, "no stream"));
  // dim 2^15, 2^10 layers: 2^15·2^15·12·2^10 floats, 2^42.
  std::vector<unsigned char> huge(28 + 100, 0x5a);
  const int32_t claim[7] = {1 << 15, 1 << 15, 1 << 10, 1 << 10, 1 << 10, 1 << 15, 1 << 15};
  std::memcpy(huge.data(), claim, sizeof(claim));
  const size_t before = g_allocations.load();
  const Status refused = load_llama2c_memory(huge.data(), huge.size(), &from_memory);
  EXPECT_EQ(g_allocations.load(), before);
  EXPECT_TRUE(FailsWith(refused, Status::kShapeMismatch, "its header says"));
  EXPECT_EQ(from_memory.data, m.data);  // a refused load leaves the checkpoint as it was
}

// The graph API for another shape: the seed MLP's three linears (bias, ReLU
// fused), an unfused add, add_rms_norm, and the plan: the arena is smaller
// than every tensor in its own buffer.
class GraphApi : public PathTest {};
TILEKIT_INSTANTIATE_PATHS(GraphApi);

TEST_P(GraphApi, MlpAddAndNormAgainstReference) {
  TILEKIT_SEED_TRACE();
  Rng rng(20);
  const size_t V = 13, D = 40, H1 = 56, H2 = 72, O = 10;
  std::vector<float> table(V * D), w1(D * H1), b1(H1), w2(H1 * H2), b2(H2), w3(H2 * O), b3(O), g(O);
  for (auto* v : {&table, &w1, &b1, &w2, &b2, &w3, &b3, &g}) rng.fill(v->data(), v->size());
  Graph graph;
  const TensorId x = graph.embedding(table.data(), V, D);
  const TensorId h1 = graph.linear(x, weights_kn(w1.data(), D, H1), {b1.data(), Activation::kRelu});
  const TensorId h2 = graph.linear(h1, weights_kn(w2.data(), H1, H2), {b2.data(), Activation::kRelu});
  const TensorId y = graph.linear(h2, weights_kn(w3.data(), H2, O), {b3.data()});
  TensorId r = graph.add(y, y);  // unfused: y is read twice
  const TensorId n = graph.add_rms_norm(y, &r, g.data(), 1e-5f);
  graph.mark_output(r);
  graph.mark_output(n);
  GraphConfig gc;
  gc.max_tokens = 9;
  ASSERT_EQ(graph.build(gc), Status::kOk) << last_error();
  EXPECT_LT(graph.stats().arena_bytes, graph.stats().intermediate_bytes);
  EXPECT_EQ(graph.stats().folded_adds, 0u);
  const int32_t ids[9] = {0, 3, 12, 5, 5, 7, 1, 2, 11};
  for (size_t tokens : {9, 1, 4}) {
    SequenceStep s{nullptr, 0, 0, tokens};
    ASSERT_EQ(graph.run(Step{ids, &s, 1}), Status::kOk) << last_error();
    for (size_t t = 0; t < tokens; ++t) {
      // fp64 forward with a first-order bound, as in Reference.
      EV a(D);
      for (size_t i = 0; i < D; ++i) a.v[i] = table[ids[t] * D + i];
      auto lin = [](const EV& in, const std::vector<float>& w, const std::vector<float>& b, size_t n, bool relu) {
        const size_t k = in.v.size();
        EV out(n);
        for (size_t j = 0; j < n; ++j) {
          double s = b[j], mag = std::fabs(b[j]), prop = 0;
          for (size_t i = 0; i < k; ++i) {
            s += in.v[i] * w[i * n + j];
            mag += std::fabs(in.v[i] * w[i * n + j]);
            prop += in.e[i] * std::fabs(w[i * n + j]);
          }
          out.v[j] = relu ? std::max(s, 0.0) : s;
          out.e[j] = prop + Gamma(k + 1) * mag + kU * std::fabs(s);
        }
        return out;
      };
      const EV z = lin(lin(lin(a, w1, b1, H1, true), w2, b2, H2, true), w3, b3, O, false);
      const float* got_r = graph.output(r).data + t * O;
      const float* got_n = graph.output(n).data + t * O;
      double ss = 0, se = 0;
      for (size_t j = 0; j < O; ++j) {
        const double v = 3 * z.v[j], e = 3 * z.e[j] + 3 * kU * std::fabs(v);
        ASSERT_TRUE(WithinBound(std::fabs(got_r[j] - v), e, "y + y + y")) << t << " " << j;
        ss += v * v;
        se += std::fabs(v) * e;
      }
      const double rs = 1 / std::sqrt(ss / O + 1e-5), r_rel = Gamma(O) + 4 * kU + se / (ss + O * 1e-5);
      for (size_t j = 0; j < O; ++j) {
        const double v = 3 * z.v[j], e = 3 * z.e[j] + 3 * kU * std::fabs(v);
        const double want = v * rs * g[j];
        const double bound = std::fabs(g[j]) * rs * (e + std::fabs(v) * r_rel) + 2 * kU * std::fabs(want);
        ASSERT_TRUE(WithinBound(std::fabs(got_n[j] - want), bound, "rmsnorm")) << t << " " << j;
      }
    }
  }
  // Errors of the description come back from build.
  Graph bad;
  const TensorId e = bad.embedding(table.data(), V, D);
  EXPECT_EQ(bad.linear(e, weights_kn(w2.data(), H1, H2)), kNoTensor);
  EXPECT_TRUE(FailsWith(bad.build(gc), Status::kShapeMismatch, "for an input of 40 columns"));
}

// Per-node weight types: linears reading one input fuse only with linears of
// their own type (one group size per graph), and each node's output equals
// gemm on weights packed as the node's, bitwise (a fused segment is bitwise a
// GEMM of its own: quant_test). The group and the types are checked at build.
TEST_P(GraphApi, PerNodeQuantizedWeights) {
  TILEKIT_SEED_TRACE();
  Rng rng(22);
  const size_t D = 72, ns[5] = {24, 17, 33, 9, 40};
  const NodeWeights types[5] = {NodeWeights::kInt8, NodeWeights::kInt8, NodeWeights::kInt4, NodeWeights::kGraphDefault,
                                NodeWeights::kInt4};
  std::vector<std::vector<float>> w(6);
  for (size_t i = 0; i < 6; ++i) {
    w[i].resize(ns[std::min<size_t>(i, 4)] * D);
    rng.fill(w[i].data(), w[i].size());
  }
  std::vector<float> bias(ns[0]);
  rng.fill(bias.data(), bias.size());
  const auto describe = [&](Graph& g, TensorId* outs) {
    const TensorId x = g.input(D);
    for (size_t i = 0; i < 4; ++i) {
      LinearOptions lo;
      lo.weights = types[i];
      if (i == 0) lo.bias = bias.data(), lo.activation = Activation::kSilu;
      outs[i] = g.linear(x, weights_nk(w[i].data(), ns[i], D), lo);
    }
    outs[4] = g.gate_up_swiglu(x, weights_nk(w[4].data(), ns[4], D), weights_nk(w[5].data(), ns[4], D), types[4]);
    for (size_t i = 0; i < 5; ++i) g.mark_output(outs[i]);
    return x;
  };
  Graph graph;
  TensorId outs[5];
  const TensorId x = describe(graph, outs);
  GraphConfig gc;
  gc.max_tokens = 6;
  gc.weight_group = 64;
  ASSERT_EQ(graph.build(gc), Status::kOk) << last_error();
  EXPECT_EQ(graph.stats().fused_linears, 1u);  // the two int8 linears
  for (size_t tokens : {6, 1}) {
    rng.fill(graph.input_data(x), tokens * D);
    const SequenceStep s{nullptr, 0, 0, tokens};
    ASSERT_EQ(graph.run(Step{nullptr, &s, 1}), Status::kOk) << last_error();
    const MatrixView<const float> in = matrix<const float>(graph.input_data(x), tokens, D);
    for (size_t i = 0; i < 5; ++i) {
      const WeightType t = graph_detail::weight_type(types[i], gc.weights);
      PackOptions po;
      po.group = gc.weight_group;
      PackedWeights pw;
      Epilogue ep;
      if (i == 4) {
        ASSERT_EQ(pack_weights_gate_up(weights_nk(w[4].data(), ns[4], D), weights_nk(w[5].data(), ns[4], D), t, &pw, po),
                  Status::kOk);
        ep.activation = Activation::kSwiGlu;
      } else {
        ASSERT_EQ(pack_weights(weights_nk(w[i].data(), ns[i], D), t, &pw, po), Status::kOk);
        if (i == 0) ep.with_bias(bias.data()).activation = Activation::kSilu;
      }
      std::vector<float> want(tokens * ns[i], testing::PoisonF32());
      ASSERT_EQ(gemm(in, pw, matrix(want.data(), tokens, ns[i]), ep), Status::kOk) << last_error();
      const MatrixView<const float> got = graph.output(outs[i]);
      ASSERT_EQ(got.rows, tokens);
      for (size_t r = 0; r < tokens; ++r) {
        for (size_t j = 0; j < ns[i]; ++j) {
          ASSERT_EQ(testing::Bits(got.data[r * got.ld + j]), testing::Bits(want[r * ns[i] + j]))
              << "linear " << i << " (" << weight_type_name(t) << ") row " << r << " col " << j;
        }
      }
    }
  }
  // Group sizes pack_weights refuses, and int4 with one group of all of K,
  // are refused at build, before anything is packed; a bad group is refused
  // even when nothing is quantized.
  struct Bad {
    size_t group;
    WeightType weights;
    const char* detail;
  };
  for (const Bad& bad : {Bad{48, WeightType::kF32, "weight_group is 48"}, Bad{1, WeightType::kInt8, "weight_group is 1"},
                         Bad{0, WeightType::kF32, "int4 weights need a group size"}}) {
    Graph g;
    TensorId o[5];
    describe(g, o);
    GraphConfig bc = gc;
    bc.weight_group = bad.group;
    bc.weights = bad.weights;
    EXPECT_TRUE(FailsWith(g.build(bc), Status::kInvalidArgument, bad.detail));
    EXPECT_EQ(g.stats().packed_bytes, 0u) << bad.detail;
  }
  GraphConfig unknown = gc;
  unknown.weights = static_cast<WeightType>(7);
  Graph g;
  TensorId o[5];
  describe(g, o);
  EXPECT_TRUE(FailsWith(g.build(unknown), Status::kInvalidArgument, "unknown weight type 7"));
  // Group 0 (one scale per column over all of K) takes int8 weights.
  Graph int8_only;
  const TensorId xi = int8_only.input(D);
  int8_only.mark_output(int8_only.linear(xi, weights_nk(w[0].data(), ns[0], D), {nullptr, Activation::kNone,
                                                                                   NodeWeights::kInt8}));
  GraphConfig g0 = gc;
  g0.weight_group = 0;
  EXPECT_EQ(int8_only.build(g0), Status::kOk) << last_error();
}

// The arena planner alone (graph/arena.h), over random usage records: some of
// 0 bytes, many of equal size, lifetimes from one step to all of them.
TEST(GraphArena, BuffersAliveTogetherNeverShareBytes) {
  TILEKIT_SEED_TRACE();
  Rng rng(30);
  for (int trial = 0; trial < 300; ++trial) {
    const size_t steps = 1 + rng.below(24);
    std::vector<graph_detail::ArenaUsage> usage(1 + rng.below(40));
    size_t sum = 0;
    for (graph_detail::ArenaUsage& u : usage) {
      u.bytes = rng.below(8) ? kCacheLine * (1 + rng.below(rng.below(2) ? 4 : 64)) : 0;
      u.first = rng.below(steps);
      u.last = u.first + rng.below(steps - u.first);
      sum += u.bytes;
    }
    std::vector<size_t> offsets;
    const size_t arena = graph_detail::plan_arena(usage, &offsets);
    ASSERT_EQ(offsets.size(), usage.size());
    EXPECT_LE(arena, sum);
    size_t peak = 0;  // the most bytes alive at one step: no plan needs less
    for (size_t step = 0; step < steps; ++step) {
      size_t live = 0;
      for (const graph_detail::ArenaUsage& u : usage) live += u.first <= step && step <= u.last ? u.bytes : 0;
      peak = std::max(peak, live);
    }
    EXPECT_GE(arena, peak);
    for (size_t i = 0; i < usage.size(); ++i) {
      if (usage[i].bytes == 0) {
        EXPECT_EQ(offsets[i], 0u) << i;
      }
      EXPECT_LE(offsets[i] + usage[i].bytes, arena) << i;
      for (size_t j = i + 1; j < usage.size(); ++j) {
        const bool alive_together = usage[i].first <= usage[j].last && usage[j].first <= usage[i].last;
        const bool share_bytes = offsets[i] < offsets[j] + usage[j].bytes && offsets[j] < offsets[i] + usage[i].bytes;
        EXPECT_FALSE(alive_together && share_bytes) << "records " << i << " and " << j << ", trial " << trial;
      }
    }
    std::vector<size_t> again;
    EXPECT_EQ(graph_detail::plan_arena(usage, &again), arena);
    EXPECT_EQ(again, offsets);
    if (::testing::Test::HasFailure()) return;
  }
}

// Largest first (equal sizes in record order), each at the lowest offset free
// at its steps, an exact gap included.
TEST(GraphArena, LargestFirstAtTheLowestFreeOffset) {
  const std::vector<graph_detail::ArenaUsage> usage = {
      {64, 0, 3},   // the smallest: placed last, above the five others
      {256, 0, 2},  // the largest: at 0
      {128, 0, 3},  // the first 128: above the 256
      {128, 0, 0},  // above both
      {128, 0, 3},  // above all three
      {128, 2, 3},  // the record at 384 is dead by step 2: its exact gap, between 256 and 512
      {0, 0, 3},    // no bytes: offset 0, no space
  };
  std::vector<size_t> offsets;
  EXPECT_EQ(graph_detail::plan_arena(usage, &offsets), 704u);
  EXPECT_EQ(offsets, (std::vector<size_t>{640, 0, 256, 384, 512, 384, 0}));
}

// Found by graph_fuzz (docs/reliability.md): each was built, then ran wrong
// or failed on every run.
TEST(GraphFuzzRegressions, SizesThatOverflowAreRefusedAtBuild) {
  Graph g;
  g.mark_output(g.input(SIZE_MAX / 4 + 1));  // its bytes wrapped to a tiny arena
  GraphConfig gc;
  gc.max_tokens = 2;
  EXPECT_TRUE(FailsWith(g.build(gc), Status::kOverflow, "does not fit"));
  // Tensors of 2^62 bytes (2 rows of 2^59 floats): one fits, two do not.
  Graph h;
  for (int i = 0; i < 3; ++i) h.mark_output(h.input(SIZE_MAX / 32));
  EXPECT_TRUE(FailsWith(h.build(gc), Status::kOverflow, "does not fit"));
}

TEST(GraphFuzzRegressions, NegativeOrNanEpsIsRefusedByTheNode) {
  const std::vector<float> w(4, 1.f);
  for (float eps : {-1e-5f, std::numeric_limits<float>::quiet_NaN()}) {
    Graph g;
    TensorId x = g.input(4);
    EXPECT_EQ(g.rms_norm(x, w.data(), eps), kNoTensor);
    GraphConfig gc;
    gc.max_tokens = 1;
    EXPECT_TRUE(FailsWith(g.build(gc), Status::kShapeMismatch, "eps"));
    Graph h;
    TensorId r = h.input(4);
    EXPECT_EQ(h.add_rms_norm(h.input(4), &r, w.data(), eps), kNoTensor);
    EXPECT_TRUE(FailsWith(h.build(gc), Status::kShapeMismatch, "eps"));
  }
}

TEST(GraphFuzzRegressions, LastTokensOfAPerSequenceTensorIsRefused) {
  Graph g;
  const TensorId last = g.last_tokens(g.input(3));
  EXPECT_EQ(g.last_tokens(last), kNoTensor);  // ran over the step's token count of rows
  GraphConfig gc;
  gc.max_tokens = 4;
  EXPECT_TRUE(FailsWith(g.build(gc), Status::kShapeMismatch, "row per sequence"));
}

// An input is alive from the first node: the caller writes it before the run.
TEST(GraphFuzzRegressions, AnInputKeepsItsBytesUntilItIsRead) {
  const std::vector<float> table(3 * 8, 7.f);
  Graph g;
  (void)g.embedding(table.data(), 3, 8);  // read by nothing: alive at node 0 only
  const TensorId x = g.input(8);
  const TensorId y = g.last_tokens(x);
  g.mark_output(y);
  GraphConfig gc;
  gc.max_tokens = 2;
  ASSERT_EQ(g.build(gc), Status::kOk) << last_error();
  for (size_t i = 0; i < 16; ++i) g.input_data(x)[i] = static_cast<float>(i + 1);
  const int32_t ids[2] = {0, 2};
  const SequenceStep s{nullptr, 0, 0, 2};
  ASSERT_EQ(g.run(Step{ids, &s, 1}), Status::kOk) << last_error();
  for (size_t j = 0; j < 8; ++j) EXPECT_EQ(g.output(y).data[j], static_cast<float>(9 + j)) << j;  // not the table's 7
}

// add_rms_norm(x, &x): h = 2x; the sum must not be placed over x.
TEST(GraphFuzzRegressions, AddRmsNormOfATensorWithItself) {
  const std::vector<float> w(4, 1.f);
  Graph g;
  const TensorId x = g.input(4);
  TensorId h = x;
  const TensorId y = g.add_rms_norm(x, &h, w.data(), 0.f);
  g.mark_output(h);
  g.mark_output(y);
  GraphConfig gc;
  gc.max_tokens = 1;
  ASSERT_EQ(g.build(gc), Status::kOk) << last_error();
  const float in[4] = {1.f, -2.f, 3.f, 0.5f};
  std::memcpy(g.input_data(x), in, sizeof(in));
  const SequenceStep s{nullptr, 0, 0, 1};
  ASSERT_EQ(g.run(Step{nullptr, &s, 1}), Status::kOk) << last_error();  // was kAliasing
  for (int j = 0; j < 4; ++j) EXPECT_EQ(g.output(h).data[j], 2 * in[j]) << j;  // exact: doubling
  // rmsnorm(2x) = x / rms(x), rms(x) = sqrt(14.25 / 4): the sum of squares (gamma_4,
  // half of it in r), four roundings in r and two in x·r·w, 8u at most.
  const double rms = std::sqrt(14.25 / 4);
  for (int j = 0; j < 4; ++j) EXPECT_NEAR(g.output(y).data[j], in[j] / rms, 8 * kU * std::fabs(in[j] / rms)) << j;
}

// Found by graph_fuzz's rope, kv_write and attention nodes: each was built
// and then failed on every run (layer, head_dim, heads, v_head_dim, scale,
// rope(q, q), an uninitialised cache refusing every step), or ran and dropped
// columns silently (K or V wider than the cache's heads).
KvCacheConfig SmallCache(size_t v_head_dim = 0) {
  KvCacheConfig kc;
  kc.layers = 1;
  kc.kv_heads = 2;
  kc.head_dim = 2;
  kc.v_head_dim = v_head_dim;
  kc.block_tokens = 2;
  kc.num_blocks = 4;
  return kc;
}

template <typename Describe>
::testing::AssertionResult BuildFails(KvCache* cache, Status want, const char* detail, Describe&& describe) {
  Graph g;
  describe(g);
  GraphConfig gc;
  gc.max_tokens = 2;
  gc.kv_cache = cache;
  return FailsWith(g.build(gc), want, detail);
}

TEST(GraphFuzzRegressions, KvNodesAreCheckedAgainstTheCacheAtBuild) {
  KvCache cache, wide_v, uninitialised;
  ASSERT_EQ(cache.init(SmallCache()), Status::kOk);
  ASSERT_EQ(wide_v.init(SmallCache(4)), Status::kOk);
  // The cache holds 2 heads x 2: K and V rows of 4.
  EXPECT_TRUE(BuildFails(&cache, Status::kInvalidArgument, "kv_write of layer 1, the cache has 1", [](Graph& g) {
    const TensorId k = g.input(4);
    g.kv_write(k, k, 1);
  }));
  EXPECT_TRUE(BuildFails(&cache, Status::kShapeMismatch, "kv_write of K 5 and V 4 columns", [](Graph& g) {
    g.kv_write(g.input(5), g.input(4), 0);  // ran, writing 2 heads of 2 and dropping the fifth column
  }));
  EXPECT_TRUE(BuildFails(&cache, Status::kShapeMismatch, "kv_write of K 4 and V 6 columns", [](Graph& g) {
    g.kv_write(g.input(4), g.input(6), 0);
  }));
  EXPECT_TRUE(BuildFails(&cache, Status::kInvalidArgument, "attention of layer 2", [](Graph& g) {
    g.mark_output(g.attention(g.input(4), 2, 2));
  }));
  EXPECT_TRUE(BuildFails(&cache, Status::kShapeMismatch, "attention of 2 heads x 4", [](Graph& g) {
    g.mark_output(g.attention(g.input(8), 2, 0));  // head_dim 4 over a cache of 2
  }));
  EXPECT_TRUE(BuildFails(&cache, Status::kShapeMismatch, "attention of 3 heads x 2", [](Graph& g) {
    g.mark_output(g.attention(g.input(6), 3, 0));  // 3 query heads over 2 KV heads
  }));
  EXPECT_TRUE(BuildFails(&wide_v, Status::kShapeMismatch, "and x 4 (V)", [](Graph& g) {
    g.mark_output(g.attention(g.input(4), 2, 0));  // the output has head_dim columns per head, not v_head_dim
  }));
  // An uninitialised cache: every step was refused ("0 blocks cannot hold"),
  // kv nodes or none.
  EXPECT_TRUE(BuildFails(&uninitialised, Status::kInvalidArgument, "not initialised", [](Graph& g) {
    g.mark_output(g.input(4));
  }));
  // What the cache accepts builds: K and V of 2 heads x 2 (V of 2 x 4 in
  // wide_v), attention of 2 or 4 query heads.
  for (KvCache* c : {&cache, &wide_v}) {
    Graph g;
    const TensorId q = g.input(8), k = g.input(4), v = g.input(c == &cache ? 4 : 8);
    g.kv_write(k, v, 0);
    if (c == &cache) g.mark_output(g.attention(q, 4, 0));
    g.mark_output(k);
    GraphConfig gc;
    gc.max_tokens = 2;
    gc.kv_cache = c;
    EXPECT_EQ(g.build(gc), Status::kOk) << last_error();
  }
}

TEST(GraphFuzzRegressions, AttentionScaleAndRopeOfOneTensorAreRefusedByTheNode) {
  KvCache cache;
  ASSERT_EQ(cache.init(SmallCache()), Status::kOk);
  for (float scale : {-1.f, std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    EXPECT_TRUE(BuildFails(&cache, Status::kInvalidArgument, "attention scale", [scale](Graph& g) {
      EXPECT_EQ(g.attention(g.input(4), 2, 0, scale), kNoTensor);
    }));
  }
  RopeConfig rc;
  rc.head_dim = 2;
  RopeTable table;
  ASSERT_EQ(make_rope_table(rc, 8, &table), Status::kOk);
  EXPECT_TRUE(BuildFails(nullptr, Status::kAliasing, "as both q and k", [&](Graph& g) {
    const TensorId q = g.input(4);
    g.rope(q, q, &table);  // the kernel refused the overlap on every run
    g.mark_output(q);
  }));
}

// Issue 27: an attention node whose layer no kv_write of the graph writes
// reads what earlier calls wrote; over positions never written the step is
// refused before any node runs (the output of the node before it untouched),
// and runs once kv_cache_write has written them.
TEST(GraphFuzzRegressions, AttentionWithoutItsWriteIsCheckedBeforeAnyNodeRuns) {
  KvCache cache;
  ASSERT_EQ(cache.init(SmallCache()), Status::kOk);
  const std::vector<float> w(4, 1.f);
  Graph g;
  const TensorId x = g.input(4);
  const TensorId y = g.rms_norm(x, w.data(), 0.f);
  g.mark_output(y);
  g.mark_output(g.attention(y, 2, 0));
  GraphConfig gc;
  gc.max_tokens = 1;
  gc.kv_cache = &cache;
  ASSERT_EQ(g.build(gc), Status::kOk) << last_error();
  uint32_t block, gen;
  ASSERT_EQ(cache.allocate_block(&block, &gen), Status::kOk);
  const float in[4] = {1, -2, 3, 0.5f};
  std::memcpy(g.input_data(x), in, sizeof(in));
  std::memset(const_cast<float*>(g.output(y).data), 0, 4 * sizeof(float));
  const SequenceStep seq{&block, 1, 0, 1, &gen};
  EXPECT_TRUE(FailsWith(g.run(Step{nullptr, &seq, 1}), Status::kInvalidArgument, "position 0 of layer 0 was not written"));
  for (int i = 0; i < 4; ++i) EXPECT_EQ(g.output(y).data[i], 0.f);
  ASSERT_EQ(kv_cache_write(cache, 0, KvSequence{&block, 1, 1, &gen}, 0, heads_view<const float>(in, 1, 2, 2),
                           heads_view<const float>(in, 1, 2, 2)),
            Status::kOk);
  EXPECT_EQ(g.run(Step{nullptr, &seq, 1}), Status::kOk) << last_error();
}

// A step's block table and pos are checked before any node runs: a block id
// past the pool, a null table, num_blocks whose tokens overflow size_t or
// pos + tokens past size_t (and, issue 27, a free block, a block of another
// generation, a pos whose earlier positions were not written, two sequences
// writing one block) ran the nodes before
// kv_write (an output written), and kv_write for the sequences before the bad
// one (cache rows written), then failed.
TEST(GraphFuzzRegressions, ABadBlockTableIsRefusedBeforeAnyNodeRuns) {
  KvCache cache;
  ASSERT_EQ(cache.init(SmallCache()), Status::kOk);
  const std::vector<float> table = {1, 2, 3, 4, -4, 3, -2, 1, 0.5f, 0.25f, -8, 2};  // 3 tokens x 4
  const std::vector<float> w(4, 1.f);
  Graph g;
  const TensorId y = g.rms_norm(g.embedding(table.data(), 3, 4), w.data(), 0.f);
  g.kv_write(y, y, 0);
  g.mark_output(y);
  GraphConfig gc;
  gc.max_tokens = 2;
  gc.max_sequences = 2;
  gc.kv_cache = &cache;
  ASSERT_EQ(g.build(gc), Status::kOk) << last_error();
  uint32_t blocks[2][1], gens[2][1], freed[1], stale_gen[1];
  for (int i = 0; i < 2; ++i) ASSERT_EQ(cache.allocate_block(&blocks[i][0], &gens[i][0]), Status::kOk);
  uint32_t unwritten[2] = {blocks[1][0], 0};  // position 1 never written
  ASSERT_EQ(cache.allocate_block(&unwritten[1]), Status::kOk);
  ASSERT_EQ(cache.allocate_block(&freed[0]), Status::kOk);
  ASSERT_EQ(cache.release_block(freed[0]), Status::kOk);
  stale_gen[0] = gens[1][0] - 2;  // blocks[1] as an earlier holder knew it
  SequenceStep seqs[2] = {{blocks[0], 1, 0, 1, gens[0]}, {blocks[1], 1, 0, 1, gens[1]}};
  const int32_t first[2] = {0, 1}, second[2] = {2, 0};
  ASSERT_EQ(g.run(Step{first, seqs, 2}), Status::kOk) << last_error();
  const std::vector<float> out(g.output(y).data, g.output(y).data + 8);
  const std::vector<unsigned char> pool(cache.key_rows(0, 0), cache.key_rows(0, 0) + cache.bytes());
  const uint32_t past[1] = {4};
  struct Bad {
    SequenceStep seq;
    Status status;
    const char* detail;
  };
  for (const Bad& bad : {Bad{{past, 1, 0, 1}, Status::kInvalidArgument, "block 0 is 4, the pool has 4 blocks"},
                         Bad{{nullptr, 1, 0, 1}, Status::kNullPointer, "block table is null"},
                         Bad{{blocks[1], SIZE_MAX, 0, 1}, Status::kInvalidArgument, "overflow size_t"},
                         Bad{{blocks[1], 1, SIZE_MAX, 1}, Status::kOverflow, "overflows"},
                         Bad{{freed, 1, 0, 1}, Status::kInvalidArgument, "was released: it is free"},
                         Bad{{blocks[1], 1, 0, 1, stale_gen}, Status::kInvalidArgument, "taken again"},
                         Bad{{unwritten, 2, 2, 1}, Status::kInvalidArgument, "position 1 of layer 0 was not written"},
                         Bad{{blocks[0], 1, 0, 1, gens[0]}, Status::kInvalidArgument, "both write block"}}) {
    seqs[1] = bad.seq;  // the second sequence: kv_write wrote the first's rows before failing
    EXPECT_TRUE(FailsWith(g.run(Step{second, seqs, 2}), bad.status, bad.detail));
    EXPECT_EQ(std::memcmp(g.output(y).data, out.data(), out.size() * sizeof(float)), 0) << bad.detail;
    EXPECT_EQ(std::memcmp(cache.key_rows(0, 0), pool.data(), pool.size()), 0) << bad.detail;
  }
}

}  // namespace
}  // namespace tilekit

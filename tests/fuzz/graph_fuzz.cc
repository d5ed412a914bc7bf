// Graph from arbitrary bytes: up to eight nodes through the public builder
// (input, embedding, linear with bias and activation, gate_up_swiglu, rms_norm, mul, scale, softcap,
// add_rms_norm, add, last_tokens, mark_output), fp32 or bf16 weights per node,
// [K][N] or [N][K] sources, then up to three steps of one to three sequences.
// Half the inputs first draw an attention setting (a KV cache config: 1-2
// layers, 1-2 KV heads, 1-2 query heads per KV head, head_dim 2-8, blocks of
// 1-16 tokens, fp32 or bf16; one or two RoPE tables of any pairing, partial
// rotary and scaling) and then also build rope, kv_write and attention nodes,
// alone or as Llama's attention block (Q, K, V linears from one tensor, rope(Q,
// K), kv_write(K, V), attention(Q) of one layer), and run up to four steps.
// Each node may be corrupted: an unknown or absent tensor, columns or rows that
// do not match, null weights or table, no columns, SwiGLU on a plain linear, a
// weight ld < cols, a negative or NaN eps, a size whose bytes overflow size_t
// (HugeDim); for rope a null or empty table, columns that are no multiple of
// its head_dim, q = k; for kv_write and attention a layer past the cache's, K/V
// or Q columns other than kv_heads·head_dim or heads·head_dim, heads 0 or no
// multiple of the KV heads, a negative, NaN or infinite scale; for the graph no
// kv_cache in the config, an uninitialised one, a v_head_dim other than
// head_dim (attention). A run may get a bad step (no sequences, too many
// tokens, a sequence without tokens, a token outside the vocabulary, no token
// ids, a block id past the pool, a null block table or one whose tokens
// overflow size_t, positions past the RoPE table, a pos + tokens past size_t).
//
// Sequences live across steps: each has a block table in a cache whose every
// block holds known values before the first step (one unused block is NaN), so
// a step continues a sequence, rewinds it or jumps ahead, and attention reads
// keys written by earlier steps. The harness keeps a shadow of the cache
// (values with bounds), updated by the fp64 evaluation of each kv_write, and
// where each sequence's written positions end (issue 27): a step that jumps
// past them, or an attention whose layer no kv_write writes (the values put in
// place before the first step were never written through the cache), must be
// refused whole, every output and the cache as they were. The sequences of a
// step are distinct (two writing one block are refused).
//
// Checks: build refuses exactly the graphs with a bad node, with a message;
// a bad step is refused and leaves every output and the cache as they were; a
// valid graph runs and each output is within the bound of an fp64 evaluation
// of the same node list (values with a worst-case first-order error bound, each
// GEMM's from tests/gemm_reference.h, RoPE's from the table's definition with
// tests/ops_reference.h, attention's arithmetic from
// tests/attention_reference.h plus its inputs' errors carried through the
// softmax: fusion and folding the executor does change no bound), bitwise
// equal on one thread and two (the cache too, restored between the two); after
// each step every cache row is within the shadow's bound (bitwise the same
// where nothing was written).
#include <memory>

#include "../attention_reference.h"
#include "../gemm_reference.h"
#include "../ops_reference.h"
#include "fuzz.h"
#include "tilekit/graph/graph.h"

namespace tilekit {
namespace {

constexpr double kU = testing::kF32Eps;

// The nodes of the attention block (kRope on) are drawn only with an Attn.
// kBlock is Llama's attention block as six nodes: linears to Q, K and V from
// one tensor, rope(Q, K), kv_write(K, V), attention(Q) of the same layer.
enum class Kind {
  kInput, kEmbedding, kLinear, kGateUp, kRmsNorm, kAddRmsNorm, kAdd, kLastTokens, kMul, kScale, kSoftcap,
  kRope, kKvWrite, kAttention, kBlock, kCount
};

// A tensor as the harness knows it.
struct Tensor {
  TensorId id = kNoTensor;
  size_t cols = 0;
  bool per_sequence = false;
  bool output = false;
};

// What the rope, kv_write and attention nodes are built against: RoPE tables,
// a KV cache (its config, whether the graph gets it), the sequences' block
// tables, and the shadow of the cache.
struct Attn {
  struct Table {
    RopeConfig cfg;
    RopeTable table;
    std::vector<double> inv;  // the reference's inverse frequencies (ops_reference.h)
    double attention = 1;     // and its attention factor (YaRN)
  };
  bool on = false;
  KvCacheConfig cfg;   // as given to init (v_head_dim set)
  size_t heads = 0;    // query heads: a multiple of cfg.kv_heads
  KvCache cache;
  enum class Given { kYes, kNone, kUninitialised } given = Given::kYes;
  std::vector<std::unique_ptr<Table>> tables;  // the graph keeps pointers
  RopeTable empty;     // never made: head_dim 0
  size_t max_pos = 0;  // a valid step keeps pos + tokens within it (<= every table, <= 24)
  std::vector<std::vector<uint32_t>> slots;  // each sequence's blocks (covering max_pos)
  std::vector<size_t> length;                // where each sequence's written positions end (kv_write's layers)
  uint32_t spare = 0;                        // a block no table names: NaN, never read
  // Per layer, [block][slot][kv_heads][head_dim] (and v_head_dim): the cache as
  // the reference has it, with a bound on each stored value's error.
  std::vector<std::vector<double>> kv, ke, vv, ve;
  bool cache_used() const { return on && given == Given::kYes; }
  size_t k_row() const { return cfg.kv_heads * cfg.head_dim; }
  size_t v_row() const { return cfg.kv_heads * cfg.v_head_dim; }
};

// A node as the reference evaluates it.
struct Node {
  Kind kind = Kind::kInput;
  size_t a = 0, b = 0, out = 0, out2 = 0;  // harness tensor indices
  std::vector<float> w, w2;                // [K][N] as the reference reads them (bf16-rounded when packed so)
  std::vector<float> bias, norm;
  Activation activation = Activation::kNone;
  bool bf16 = false;
  float eps = 0.f;
  size_t vocab = 0;
  std::vector<float> table;
  const Attn::Table* rope = nullptr;
  size_t layer = 0, heads = 0;
  float scale = 0.f;
};

// Values with a worst-case bound on their error, [rows][cols].
struct EV {
  size_t rows = 0, cols = 0;
  std::vector<double> v, e;
  void resize(size_t r, size_t c) {
    rows = r, cols = c;
    v.assign(r * c, 0.0);
    e.assign(r * c, 0.0);
  }
};

struct Case {
  std::vector<Tensor> tensors;
  std::vector<Node> nodes;
  bool bad = false;  // a node the builder must refuse
  bool kv_nodes = false;  // a kv_write or attention was described (needs GraphConfig::kv_cache)
  int bad_kind = -1, bad_corruption = -1;  // the first one, for the message
  std::vector<std::vector<float>> sources;  // keeps the weights the graph reads until it is built
};

// Weights for a linear: K x N through a [K][N] or [N][K] source with padding;
// `reference` gets them [K][N], rounded as the packing will.
WeightSource MakeWeights(FuzzedDataProvider& in, fuzz::Values& values, Case& c, size_t k, size_t n, bool bf16,
                         bool ld_too_small, std::vector<float>* reference) {
  const bool nk = in.ConsumeBool();
  const size_t rows = nk ? n : k, cols = nk ? k : n;
  const size_t ld = ld_too_small && cols ? cols - 1 : cols + in.ConsumeIntegralInRange<size_t>(0, 2);
  c.sources.emplace_back(rows * ld + 1);
  std::vector<float>& s = c.sources.back();
  values.fill(s);
  reference->resize(k * n);
  for (size_t kk = 0; kk < k && !ld_too_small; ++kk) {
    for (size_t j = 0; j < n; ++j) {
      const float w = nk ? s[j * ld + kk] : s[kk * ld + j];
      (*reference)[kk * n + j] = bf16 ? bf16_to_f32(f32_to_bf16(w)) : w;
    }
  }
  return WeightSource{s.data(), k, n, ld, nk ? SourceLayout::kNK : SourceLayout::kKN};
}

// Builds the graph node by node from the bytes; c.bad when the harness made a
// node the builder must refuse (the nodes after it are still described).
void Describe(FuzzedDataProvider& in, fuzz::Values& values, Graph& g, Case& c, WeightType graph_weights, const Attn& att) {
  const size_t count = in.ConsumeIntegralInRange<size_t>(1, 8);
  const int kinds = static_cast<int>(att.on ? Kind::kCount : Kind::kRope);
  TensorId next_id = 0;  // ids are handed out in order; one past the last is unknown
  auto pick = [&](bool* bad) -> size_t {
    if (c.tensors.empty() || in.ConsumeIntegralInRange<int>(0, 31) == 0) {
      *bad = true;
      return SIZE_MAX;  // an unknown tensor
    }
    return in.ConsumeIntegralInRange<size_t>(0, c.tensors.size() - 1);
  };
  auto id_of = [&](size_t t) -> TensorId {
    if (t != SIZE_MAX) return c.tensors[t].id;
    return fuzz::Pick<TensorId>(in, {kNoTensor, next_id, next_id + 1, 1u << 20});
  };
  // A per-token tensor of `want` columns (0: any multiple of `mult`), mostly,
  // where there is one.
  auto pick_cols = [&](size_t want, size_t mult, bool* bad) -> size_t {
    std::vector<size_t> fit;
    for (size_t t = 0; t < c.tensors.size(); ++t) {
      const size_t cols = c.tensors[t].cols;
      if (!c.tensors[t].per_sequence && (want ? cols == want : mult && cols % mult == 0)) fit.push_back(t);
    }
    if (fit.empty() || in.ConsumeIntegralInRange<int>(0, 7) == 0) return pick(bad);
    return fit[in.ConsumeIntegralInRange<size_t>(0, fit.size() - 1)];
  };
  // Columns: with an Attn, often a width its nodes read.
  auto width = [&](size_t max) -> size_t {
    if (att.on && in.ConsumeBool()) return fuzz::Pick(in, {att.heads * att.cfg.head_dim, att.k_row(), att.v_row()});
    return 1 + fuzz::Dim(in, max);
  };
  auto add_tensor = [&](TensorId id, size_t cols, bool per_sequence) {
    c.tensors.push_back(Tensor{id, cols, per_sequence, false});
    next_id = std::max<TensorId>(next_id, id + 1);
    return c.tensors.size() - 1;
  };
  // A block's nodes, queued: each kind with the width a linear must have (Q,
  // K or V) or the block's tensors the node reads (block_t: Q, K, V, their
  // source; SIZE_MAX where the node making it was bad).
  std::vector<std::pair<Kind, size_t>> queue;
  size_t block_t[4] = {SIZE_MAX, SIZE_MAX, SIZE_MAX, SIZE_MAX}, block_layer = 0;
  for (size_t i = 0; (i < count || !queue.empty()) && in.remaining_bytes() > 0; ++i) {
    Node n;
    n.kind = static_cast<Kind>(in.ConsumeIntegralInRange<int>(0, kinds - 1));
    if (att.on && queue.empty() && (n.kind == Kind::kBlock || in.ConsumeIntegralInRange<int>(0, 3) == 0)) {
      const size_t widths[3] = {att.heads * att.cfg.head_dim, att.k_row(), att.v_row()};
      for (size_t w : widths) queue.emplace_back(Kind::kLinear, w);
      queue.emplace_back(Kind::kRope, 0);
      queue.emplace_back(Kind::kKvWrite, 0);
      queue.emplace_back(Kind::kAttention, 0);
      std::fill(block_t, block_t + 4, SIZE_MAX);
      block_layer = in.ConsumeIntegralInRange<size_t>(0, att.cfg.layers - 1);
    }
    const bool in_block = !queue.empty();
    size_t width_of_block = 0;
    if (in_block) {
      n.kind = queue.front().first;
      width_of_block = queue.front().second;
      queue.erase(queue.begin());
    }
    // 0-3: one corruption of this node (a block's six nodes: rarer each).
    const int corrupt = in.ConsumeIntegralInRange<int>(0, in_block ? 47 : 15);
    bool bad = false;
    bool late = false;  // bad in a way only build() can tell (a size times max_tokens, packing)
    TensorId got = kNoTensor;
    switch (n.kind) {
      case Kind::kInput: {
        size_t cols = width(23);
        if (corrupt == 0) cols = 0, bad = true;
        if (corrupt == 1) cols = fuzz::HugeDim(in), bad = late = true;
        got = g.input(cols);
        if (!bad) n.out = add_tensor(got, cols, false);
        break;
      }
      case Kind::kEmbedding: {
        n.vocab = in.ConsumeIntegralInRange<size_t>(1, 9);
        size_t dim = width(23);
        n.table.resize(n.vocab * dim);
        values.fill(n.table);
        const float* table = n.table.data();
        if (corrupt == 0) table = nullptr, bad = true;
        if (corrupt == 1) dim = fuzz::HugeDim(in), bad = late = true;  // the table is the caller's promise; the arena cannot be
        if (corrupt == 2) n.vocab = 0, bad = true;
        got = g.embedding(table, n.vocab, dim);
        if (!bad) n.out = add_tensor(got, dim, false);
        break;
      }
      case Kind::kLinear:
      case Kind::kGateUp: {
        n.a = in_block && block_t[3] != SIZE_MAX ? block_t[3] : pick(&bad);
        if (in_block && block_t[3] == SIZE_MAX && !bad) block_t[3] = n.a;  // Q, K and V read one tensor
        const size_t k = bad ? 1 + fuzz::Dim(in, 23) : c.tensors[n.a].cols;
        size_t wk = k, wn = in_block ? width_of_block : width(23);
        const NodeWeights nw = fuzz::Pick(in, {NodeWeights::kGraphDefault, NodeWeights::kF32, NodeWeights::kBf16});
        n.bf16 = nw == NodeWeights::kBf16 || (nw == NodeWeights::kGraphDefault && graph_weights == WeightType::kBf16);
        if (corrupt == 0) wk = k + 1, bad = true;
        if (corrupt == 1) wn = fuzz::HugeDim(in), bad = late = true;
        const bool ld_too_small = corrupt == 2 && wn > 1 && k > 1;
        bad |= ld_too_small;
        late |= ld_too_small;
        const bool huge = wn > 1000;
        WeightSource w = huge ? WeightSource{c.sources.emplace_back(1).data(), wk, wn, wn, SourceLayout::kKN}
                              : MakeWeights(in, values, c, wk, wn, n.bf16, ld_too_small, &n.w);
        if (corrupt == 3) w.data = nullptr, bad = true;
        if (n.kind == Kind::kGateUp) {
          WeightSource up = huge ? w : MakeWeights(in, values, c, wk, wn, n.bf16, ld_too_small, &n.w2);
          if (corrupt == 3) up.data = nullptr;
          got = g.gate_up_swiglu(id_of(n.a), w, up, nw);
        } else {
          LinearOptions o;
          o.weights = nw;
          n.activation = fuzz::Pick(in, {Activation::kNone, Activation::kRelu, Activation::kGeluErf,
                                         Activation::kGeluTanh, Activation::kSilu, Activation::kSwiGlu});
          bad |= n.activation == Activation::kSwiGlu;
          o.activation = n.activation;
          if (in.ConsumeBool() && !huge) {
            n.bias.resize(wn);
            values.fill(n.bias);
            o.bias = n.bias.data();
          }
          got = g.linear(id_of(n.a), w, o);
        }
        if (!bad) n.out = add_tensor(got, wn, c.tensors[n.a].per_sequence);
        if (!bad && in_block) block_t[5 - queue.size()] = n.out;  // Q, K, V in order (3 left after V)
        break;
      }
      case Kind::kRmsNorm:
      case Kind::kAddRmsNorm: {
        n.a = pick(&bad);
        const size_t cols = bad ? 4 : c.tensors[n.a].cols;
        n.norm.resize(cols);
        for (float& x : n.norm) x = 0.5f + (values.next() + 1.f) / 2;  // near 1, as trained norms are
        n.eps = fuzz::Pick(in, {1e-5f, 1e-6f, 1e-3f});
        if (corrupt == 0) n.eps = fuzz::Pick(in, {-1e-5f, std::numeric_limits<float>::quiet_NaN()}), bad = true;
        const float* weight = corrupt == 1 ? nullptr : n.norm.data();
        bad |= corrupt == 1;
        if (n.kind == Kind::kRmsNorm) {
          got = g.rms_norm(id_of(n.a), weight, n.eps);
          if (!bad) n.out = add_tensor(got, cols, c.tensors[n.a].per_sequence);
          break;
        }
        n.b = pick(&bad);
        bad |= !bad && (c.tensors[n.a].cols != c.tensors[n.b].cols ||
                        c.tensors[n.a].per_sequence != c.tensors[n.b].per_sequence);
        TensorId residual = id_of(n.b);
        got = g.add_rms_norm(id_of(n.a), &residual, weight, n.eps);
        if (!bad) {
          n.out2 = add_tensor(residual, cols, c.tensors[n.a].per_sequence);  // the sum
          n.out = add_tensor(got, cols, c.tensors[n.a].per_sequence);
        }
        break;
      }
      case Kind::kAdd: {
        n.a = pick(&bad);
        n.b = pick(&bad);
        bad |= !bad && (c.tensors[n.a].cols != c.tensors[n.b].cols ||
                        c.tensors[n.a].per_sequence != c.tensors[n.b].per_sequence);
        got = g.add(id_of(n.a), id_of(n.b));
        if (!bad) n.out = add_tensor(got, c.tensors[n.a].cols, c.tensors[n.a].per_sequence);
        break;
      }
      case Kind::kMul: {
        n.a = pick(&bad);
        n.b = pick(&bad);
        bad |= !bad && (c.tensors[n.a].cols != c.tensors[n.b].cols ||
                        c.tensors[n.a].per_sequence != c.tensors[n.b].per_sequence);
        got = g.mul(id_of(n.a), id_of(n.b));
        if (!bad) n.out = add_tensor(got, c.tensors[n.a].cols, c.tensors[n.a].per_sequence);
        break;
      }
      case Kind::kScale:
      case Kind::kSoftcap: {
        n.a = pick(&bad);
        n.scale = n.kind == Kind::kScale ? fuzz::Pick(in, {0.5f, -1.5f, 7.f, 0.f}) : fuzz::Pick(in, {0.5f, 3.f, 30.f});
        if (corrupt == 0) {
          n.scale = n.kind == Kind::kScale ? std::numeric_limits<float>::infinity() : fuzz::Pick(in, {0.f, -1.f});
          bad = true;
        }
        got = n.kind == Kind::kScale ? g.scale(id_of(n.a), n.scale) : g.softcap(id_of(n.a), n.scale);
        if (!bad) n.out = add_tensor(got, c.tensors[n.a].cols, c.tensors[n.a].per_sequence);
        break;
      }
      case Kind::kLastTokens: {
        n.a = pick(&bad);
        // Only a per-token tensor has a last token per sequence.
        bad |= !bad && c.tensors[n.a].per_sequence;
        got = g.last_tokens(id_of(n.a));
        if (!bad) n.out = add_tensor(got, c.tensors[n.a].cols, true);
        break;
      }
      case Kind::kRope: {
        // Rotates q and k in place (no tensor of its own).
        n.rope = att.tables[in.ConsumeIntegralInRange<size_t>(0, att.tables.size() - 1)].get();
        const RopeTable* table = corrupt == 0 ? nullptr : corrupt == 1 ? &att.empty : &n.rope->table;
        const size_t hd = n.rope->table.head_dim();
        n.a = corrupt == 3 ? pick(&bad) : in_block && block_t[0] != SIZE_MAX ? block_t[0] : pick_cols(0, hd, &bad);
        // q = k: the kernel refuses overlapping heads.
        n.b = corrupt == 2 ? n.a : in_block && block_t[1] != SIZE_MAX ? block_t[1] : pick_cols(0, hd, &bad);
        const auto fits = [&](size_t t) { return !c.tensors[t].per_sequence && c.tensors[t].cols % hd == 0; };
        bad |= !table || !table->head_dim() || (!bad && (!fits(n.a) || !fits(n.b) || n.a == n.b));
        g.rope(id_of(n.a), id_of(n.b), table);
        break;
      }
      case Kind::kKvWrite: {
        c.kv_nodes = true;
        n.layer = in_block ? block_layer : in.ConsumeIntegralInRange<size_t>(0, att.cfg.layers - 1);
        if (corrupt == 0) n.layer = fuzz::Pick<size_t>(in, {att.cfg.layers, att.cfg.layers + 1, SIZE_MAX});
        n.a = corrupt == 1 ? pick(&bad) : in_block && block_t[1] != SIZE_MAX ? block_t[1] : pick_cols(att.k_row(), 0, &bad);
        n.b = corrupt == 2 ? pick(&bad) : in_block && block_t[2] != SIZE_MAX ? block_t[2] : pick_cols(att.v_row(), 0, &bad);
        // Rows per sequence: the builder refuses; the rest only build() can
        // tell (the cache is the config's).
        late = !bad && !c.tensors[n.a].per_sequence && !c.tensors[n.b].per_sequence;
        bad |= !late || n.layer >= att.cfg.layers || c.tensors[n.a].cols != att.k_row() ||
               c.tensors[n.b].cols != att.v_row();
        g.kv_write(id_of(n.a), id_of(n.b), n.layer);
        break;
      }
      case Kind::kAttention: {
        c.kv_nodes = true;
        n.heads = att.heads;
        n.layer = in_block ? block_layer : in.ConsumeIntegralInRange<size_t>(0, att.cfg.layers - 1);
        n.scale = fuzz::Pick(in, {0.f, 0.f, 0.5f, 1.f, 0.125f});
        if (corrupt == 0) n.layer = fuzz::Pick<size_t>(in, {att.cfg.layers, SIZE_MAX});
        if (corrupt == 1) n.heads = fuzz::Pick<size_t>(in, {0, att.heads + 1, 2 * att.heads, att.heads / 2, att.cfg.kv_heads + 1});
        if (corrupt == 2) n.scale = fuzz::Pick(in, {-0.5f, std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()});
        n.a = corrupt == 3 ? pick(&bad) : in_block && block_t[0] != SIZE_MAX ? block_t[0] : pick_cols(att.heads * att.cfg.head_dim, 0, &bad);
        const size_t cols = bad ? 0 : c.tensors[n.a].cols;
        // The builder refuses what the node alone shows; build() what needs
        // the cache (its layers, head_dim, KV heads, v_head_dim).
        const bool now = bad || n.heads == 0 || cols % n.heads || c.tensors[n.a].per_sequence || !(n.scale >= 0.f) ||
                         !std::isfinite(n.scale);
        late = !now;
        bad = now || n.layer >= att.cfg.layers || cols / n.heads != att.cfg.head_dim || n.heads % att.cfg.kv_heads ||
              att.cfg.v_head_dim != att.cfg.head_dim;
        got = g.attention(id_of(n.a), n.heads, n.layer, n.scale);
        if (!bad) n.out = add_tensor(got, cols, false);
        break;
      }
      case Kind::kBlock:  // expanded into its nodes
      case Kind::kCount: break;
    }
    if (got != kNoTensor) next_id = std::max<TensorId>(next_id, got + 1);  // a late-bad node's tensor exists too
    if (bad) {
      TILEKIT_FUZZ_CHECK(late || got == kNoTensor, "node %zu (kind %d, corruption %d): a bad node returned tensor %u", i,
                         static_cast<int>(n.kind), corrupt, got);
      if (!c.bad) c.bad_kind = static_cast<int>(n.kind), c.bad_corruption = corrupt;
      c.bad = true;
      continue;
    }
    const bool returns = n.kind != Kind::kRope && n.kind != Kind::kKvWrite;  // a tensor (else build() tells)
    TILEKIT_FUZZ_CHECK(!returns || got != kNoTensor, "node %zu (kind %d) refused: %s", i, static_cast<int>(n.kind), last_error());
    c.nodes.push_back(std::move(n));
  }
  // Outputs: some tensors, at least one (else nothing can be checked).
  for (Tensor& t : c.tensors) t.output = in.ConsumeBool();
  if (!c.tensors.empty()) c.tensors.back().output = true;
  for (const Tensor& t : c.tensors) {
    if (t.output) g.mark_output(t.id);
  }
  if (in.ConsumeIntegralInRange<int>(0, 31) == 0) {
    g.mark_output(id_of(SIZE_MAX));
    c.bad = true;
  }
}

// RoPE of x's rows in place, row r at position pos[r], as the table defines
// it: angle p·inv_freq, cos and sin times the attention factor, each element
// within RopeElementRef's bound of fp32 (table rounding, products, sum; the
// angle's own error from the two inverse-frequency formulas) plus its inputs'
// errors carried by |cos| and |sin|.
void RopeRef(const Attn::Table& tb, const std::vector<size_t>& pos, EV* x) {
  const size_t hd = tb.table.head_dim(), rot = tb.table.rotary_dim(), half = rot / 2;
  const bool interleaved = tb.table.pairing() == RopePairing::kInterleaved;
  std::vector<double> v(hd), e(hd);
  for (size_t r = 0; r < x->rows; ++r) {
    for (size_t h = 0; h < x->cols / hd; ++h) {
      double* xv = &x->v[r * x->cols + h * hd];
      double* xe = &x->e[r * x->cols + h * hd];
      std::copy(xv, xv + hd, v.begin());
      std::copy(xe, xe + hd, e.begin());
      for (size_t i = 0; i < rot; ++i) {  // the rest passes through
        const size_t f = interleaved ? i / 2 : i % half;
        const bool first = interleaved ? i % 2 == 0 : i < half;
        const size_t partner = interleaved ? (first ? i + 1 : i - 1) : (first ? i + half : i - half);
        const double angle = static_cast<double>(pos[r]) * tb.inv[f];
        const double co = std::cos(angle) * tb.attention, si = std::sin(angle) * tb.attention;
        const testing::RopeElement want = testing::RopeElementRef(v[i], v[partner], co, si, first, false,
                                                                  angle * testing::kRopeInvFreqRel * tb.attention);
        xv[i] = want.ref;
        xe[i] = want.bound + std::fabs(co) * e[i] + std::fabs(si) * e[partner];
      }
    }
  }
}

// Causal attention of one sequence's rows of q (rows [row, row + T)) over its
// S = pos + T cached positions, into y's same rows. The value and the bound of
// the fp32 arithmetic are AttentionReference64's, on the reference's values
// rounded to fp32 (the rounding joins the inputs' errors). The inputs' errors
// then move each logit by at most δs_j = scale·Σ(e_q|k| + |q|e_k + e_q e_k),
// so each softmax weight by a factor within e^(±2Δ), Δ = max_j δs_j, and the
// output by (e^2Δ − 1)·Σ p_j|v_j| + e^2Δ·Σ p_j e_vj (exact, not first order).
// Whatever the weights, the exact attention of the inputs the kernel got is a
// convex combination of its V rows, so also within max_j (|v_j − o| + e_vj) of
// the reference o: the smaller bound holds (e^2Δ overflows where the logits'
// errors are large, and ∞·0 was a NaN bound where V's column was all zero).
void AttentionRef(const Attn& att, const Node& n, const EV& q, size_t row, const SequenceStep& sq, EV* y) {
  const size_t T = sq.tokens, S = sq.pos + sq.tokens, hq = n.heads, hkv = att.cfg.kv_heads, d = att.cfg.head_dim;
  const size_t qc = q.cols, kr = att.k_row(), bt = att.cfg.block_tokens;
  std::vector<float> qf(T * qc), kf(S * kr), vf(S * kr);
  std::vector<double> qe(T * qc), ke(S * kr), ve(S * kr);
  const auto round = [](double v, double e, float* f, double* fe) {
    *f = static_cast<float>(v);
    *fe = e + std::fabs(*f - v);
  };
  for (size_t i = 0; i < T * qc; ++i) round(q.v[row * qc + i], q.e[row * qc + i], &qf[i], &qe[i]);
  for (size_t j = 0; j < S; ++j) {
    const size_t at = (sq.blocks[j / bt] * bt + j % bt) * kr;
    for (size_t i = 0; i < kr; ++i) {
      round(att.kv[n.layer][at + i], att.ke[n.layer][at + i], &kf[j * kr + i], &ke[j * kr + i]);
      round(att.vv[n.layer][at + i], att.ve[n.layer][at + i], &vf[j * kr + i], &ve[j * kr + i]);
    }
  }
  testing::AttentionProblem pr;
  pr.t = T, pr.s = S, pr.hq = hq, pr.hkv = hkv, pr.d = d, pr.dv = d;
  pr.q = qf.data(), pr.k = kf.data(), pr.v = vf.data();
  pr.q_stride = qc, pr.k_stride = kr, pr.v_stride = kr;
  pr.scale = n.scale;
  pr.causal = true;
  pr.tile_keys = std::min<size_t>(64, bt);
  const testing::AttentionReference ref = testing::AttentionReference64(pr);
  const double scale = n.scale > 0 ? n.scale : 1 / std::sqrt(static_cast<double>(d));
  std::vector<double> s(S), p(S);
  for (size_t t = 0; t < T; ++t) {
    const size_t kept = S - T + t + 1;  // keys 0 .. its position
    for (size_t h = 0; h < hq; ++h) {
      const size_t hk = h / (hq / hkv);
      double m = -INFINITY, delta = 0;
      for (size_t j = 0; j < kept; ++j) {
        double dot = 0, ds = 0;
        for (size_t i = 0; i < d; ++i) {
          const double a = qf[t * qc + h * d + i], ea = qe[t * qc + h * d + i];
          const double b = kf[j * kr + hk * d + i], eb = ke[j * kr + hk * d + i];
          dot += a * b;
          ds += ea * std::fabs(b) + std::fabs(a) * eb + ea * eb;
        }
        s[j] = dot * scale;
        m = std::max(m, s[j]);
        delta = std::max(delta, ds * scale);
      }
      double sum = 0;
      for (size_t j = 0; j < kept; ++j) sum += p[j] = std::exp(s[j] - m);
      const double grow = std::exp(2 * delta);
      for (size_t i = 0; i < d; ++i) {
        const size_t o = (t * hq + h) * d + i;
        double mag = 0, err = 0, convex = 0;
        for (size_t j = 0; j < kept; ++j) {
          const double v = vf[j * kr + hk * d + i], e = ve[j * kr + hk * d + i];
          mag += p[j] / sum * std::fabs(v);
          err += p[j] / sum * e;
          convex = std::max(convex, std::fabs(v - ref.o[o]) + e);
        }
        const double softmax = std::isfinite(grow) ? (grow - 1) * mag + grow * err : INFINITY;
        y->v[(row + t) * qc + h * d + i] = ref.o[o];
        y->e[(row + t) * qc + h * d + i] = ref.bound[o] + std::min(softmax, convex);
      }
    }
  }
}

// The fp64 evaluation of the node list for one step of `tokens` rows;
// seq_end: where each sequence's tokens end. Updates the cache's shadow (kv_write).
std::vector<EV> Evaluate(const Case& c, size_t tokens, const std::vector<SequenceStep>& seqs,
                         const std::vector<size_t>& seq_end, const int32_t* ids,
                         const std::vector<std::vector<float>>& inputs, bool a_rounded, bool odd_sums, Attn& att) {
  std::vector<size_t> pos;  // each row's position
  for (const SequenceStep& sq : seqs) {
    for (size_t i = 0; i < sq.tokens; ++i) pos.push_back(sq.pos + i);
  }
  std::vector<EV> t(c.tensors.size());
  for (const Node& n : c.nodes) {
    EV& y = t[n.out];
    switch (n.kind) {
      case Kind::kInput: {
        y.resize(tokens, c.tensors[n.out].cols);
        for (size_t i = 0; i < y.v.size(); ++i) y.v[i] = inputs[n.out][i];
        break;
      }
      case Kind::kEmbedding: {
        y.resize(tokens, c.tensors[n.out].cols);
        for (size_t r = 0; r < tokens; ++r) {
          for (size_t j = 0; j < y.cols; ++j) y.v[r * y.cols + j] = n.table[ids[r] * y.cols + j];
        }
        break;
      }
      case Kind::kLinear:
      case Kind::kGateUp: {
        const EV& x = t[n.a];
        const size_t k = x.cols, wn = c.tensors[n.out].cols;
        y.resize(x.rows, wn);
        // As gemm_reference: fp32 sums of K products within gamma_(K+2)·Σ|a||w|
        // (A rounded to bf16 by the path adds 2^-8 of it); an input error
        // passes on as Σ|w|·e.
        const double a_eps = n.bf16 && a_rounded ? testing::kBf16Eps : 0.0, u_sum = n.bf16 && odd_sums ? 2 * kU : kU;
        const double dot_err = a_eps + (k + 2) * u_sum / (1 - (k + 2) * u_sum) * (1 + a_eps);
        for (size_t r = 0; r < x.rows; ++r) {
          for (size_t j = 0; j < wn; ++j) {
            double acc[2] = {0, 0}, err[2] = {0, 0};
            for (int part = 0; part < (n.kind == Kind::kGateUp ? 2 : 1); ++part) {
              const std::vector<float>& w = part ? n.w2 : n.w;
              double mag = 0, prop = 0;
              for (size_t kk = 0; kk < k; ++kk) {
                const double a = x.v[r * k + kk], wv = w[kk * wn + j];
                acc[part] += a * wv;
                mag += std::fabs(a * wv);
                prop += x.e[r * k + kk] * std::fabs(wv);
              }
              err[part] = dot_err * mag + (1 + a_eps) * prop;
            }
            double v, e;
            if (n.kind == Kind::kGateUp) {
              const double sg = testing::ActivateRef(Activation::kSilu, acc[0]);
              v = sg * acc[1];
              e = 1.13 * err[0] * (std::fabs(acc[1]) + err[1]) + std::fabs(sg) * err[1] +
                  testing::kActivationRelError * std::fabs(acc[0] * acc[1]) + 2 * kU * std::fabs(v) + kU * std::fabs(v);
            } else {
              Epilogue ep;
              ep.activation = n.activation;
              ep.bias = n.bias.empty() ? nullptr : n.bias.data();
              testing::EpilogueRef(ep, acc[0], err[0], 0.0, n.bias.empty() ? 0.0 : n.bias[j], 0.0, false, &v, &e);
            }
            y.v[r * wn + j] = v;
            y.e[r * wn + j] = e;
          }
        }
        break;
      }
      case Kind::kAdd:
      case Kind::kAddRmsNorm: {
        EV& sum = n.kind == Kind::kAdd ? y : t[n.out2];
        const EV x = t[n.a], r = t[n.b];  // copies: the sum may be either
        sum.resize(x.rows, x.cols);
        for (size_t i = 0; i < x.v.size(); ++i) {
          sum.v[i] = x.v[i] + r.v[i];
          sum.e[i] = x.e[i] + r.e[i] + kU * std::fabs(sum.v[i]);
        }
        if (n.kind == Kind::kAdd) break;
      }
        [[fallthrough]];
      case Kind::kRmsNorm: {
        // r = 1/sqrt(Σx²/D + eps): the sum within gamma_D, four more roundings;
        // an input error moves it by Σ|x|·e / (Σx² + D·eps) relative.
        const EV& x = n.kind == Kind::kRmsNorm ? t[n.a] : t[n.out2];
        const size_t d = x.cols;
        y.resize(x.rows, d);
        for (size_t row = 0; row < x.rows; ++row) {
          double ss = 0, se = 0;
          for (size_t j = 0; j < d; ++j) {
            ss += x.v[row * d + j] * x.v[row * d + j];
            se += std::fabs(x.v[row * d + j]) * x.e[row * d + j];
          }
          const double rs = 1 / std::sqrt(ss / d + n.eps);
          const double r_rel = d * kU / (1 - d * kU) + 4 * kU + se / (ss + d * static_cast<double>(n.eps));
          for (size_t j = 0; j < d; ++j) {
            const double v = x.v[row * d + j], e = x.e[row * d + j], want = v * rs * n.norm[j];
            y.v[row * d + j] = want;
            y.e[row * d + j] = std::fabs(n.norm[j]) * rs * (e + std::fabs(v) * r_rel) + 2 * kU * std::fabs(want);
          }
        }
        break;
      }
      // One fp32 rounding of the exact product (of values each known within
      // e); softcap: slope <= 1, the division (u|x|), Tanh's 4 ULP and the
      // product (9u|y|).
      case Kind::kMul: {
        const EV x = t[n.a], r = t[n.b];  // copies: the product may be either
        y.resize(x.rows, x.cols);
        for (size_t i = 0; i < x.v.size(); ++i) {
          y.v[i] = x.v[i] * r.v[i];
          y.e[i] = std::fabs(r.v[i]) * x.e[i] + std::fabs(x.v[i]) * r.e[i] + x.e[i] * r.e[i] + kU * std::fabs(y.v[i]);
        }
        break;
      }
      case Kind::kScale:
      case Kind::kSoftcap: {
        const EV x = t[n.a];
        y.resize(x.rows, x.cols);
        const double s = n.scale;
        for (size_t i = 0; i < x.v.size(); ++i) {
          if (n.kind == Kind::kScale) {
            y.v[i] = s * x.v[i];
            y.e[i] = std::fabs(s) * x.e[i] + kU * std::fabs(y.v[i]);
          } else {
            y.v[i] = s * std::tanh(x.v[i] / s);
            y.e[i] = x.e[i] + kU * std::fabs(x.v[i]) + 9 * kU * std::fabs(y.v[i]);
          }
        }
        break;
      }
      case Kind::kLastTokens: {
        const EV& x = t[n.a];
        y.resize(seq_end.size(), x.cols);
        for (size_t s = 0; s < seq_end.size(); ++s) {
          for (size_t j = 0; j < x.cols; ++j) {
            y.v[s * x.cols + j] = x.v[(seq_end[s] - 1) * x.cols + j];
            y.e[s * x.cols + j] = x.e[(seq_end[s] - 1) * x.cols + j];
          }
        }
        break;
      }
      case Kind::kRope:
        RopeRef(*n.rope, pos, &t[n.a]);
        RopeRef(*n.rope, pos, &t[n.b]);
        break;
      case Kind::kKvWrite: {
        // Each token's K and V at its position's block and slot: copied (fp32)
        // or rounded to bf16 (kBf16Eps of the value, which may be off by e).
        const bool bf = att.cfg.dtype == KvDtype::kBf16;
        const size_t kr = att.k_row(), vr = att.v_row(), bt = att.cfg.block_tokens;
        size_t r = 0;
        for (const SequenceStep& sq : seqs) {
          for (size_t i = 0; i < sq.tokens; ++i, ++r) {
            const size_t p = sq.pos + i, slot = sq.blocks[p / bt] * bt + p % bt;
            for (size_t j = 0; j < kr; ++j) {
              const double v = t[n.a].v[r * kr + j], e = t[n.a].e[r * kr + j];
              att.kv[n.layer][slot * kr + j] = v;
              att.ke[n.layer][slot * kr + j] = e + (bf ? testing::kBf16Eps * (std::fabs(v) + e) : 0);
            }
            for (size_t j = 0; j < vr; ++j) {
              const double v = t[n.b].v[r * vr + j], e = t[n.b].e[r * vr + j];
              att.vv[n.layer][slot * vr + j] = v;
              att.ve[n.layer][slot * vr + j] = e + (bf ? testing::kBf16Eps * (std::fabs(v) + e) : 0);
            }
          }
        }
        break;
      }
      case Kind::kAttention: {
        t[n.out].resize(tokens, t[n.a].cols);
        for (size_t s = 0; s < seqs.size(); ++s) AttentionRef(att, n, t[n.a], seq_end[s] - seqs[s].tokens, seqs[s], &t[n.out]);
        break;
      }
      case Kind::kBlock:  // expanded into its nodes
      case Kind::kCount: break;
    }
  }
  return t;
}

// Draws the attention setting (before the nodes, which are built against it):
// a KV cache config of small heads, one or two RoPE tables of any pairing,
// partial rotary and scaling, and the sequences' block tables in a scrambled
// order, every block filled with known values (bf16-exact for a bf16 cache)
// that the shadow holds exactly; one block no table names holds NaN.
void SetUpAttn(FuzzedDataProvider& in, fuzz::Values& values, const GraphConfig& gc, Attn& att) {
  att.on = in.ConsumeBool();
  if (!att.on) return;
  KvCacheConfig& k = att.cfg;
  k.layers = in.ConsumeIntegralInRange<size_t>(1, 2);
  k.kv_heads = in.ConsumeIntegralInRange<size_t>(1, 2);
  k.head_dim = 2 * in.ConsumeIntegralInRange<size_t>(1, 4);
  k.v_head_dim = in.ConsumeIntegralInRange<int>(0, 7) == 0 ? 2 * in.ConsumeIntegralInRange<size_t>(1, 4) : k.head_dim;
  k.block_tokens = fuzz::Pick<size_t>(in, {1, 2, 3, 4, 16});
  k.dtype = in.ConsumeBool() ? KvDtype::kBf16 : KvDtype::kF32;
  att.heads = k.kv_heads * in.ConsumeIntegralInRange<size_t>(1, 2);
  att.given = fuzz::Pick(in, {Attn::Given::kYes, Attn::Given::kYes, Attn::Given::kYes, Attn::Given::kYes, Attn::Given::kYes,
                              Attn::Given::kYes, Attn::Given::kNone, Attn::Given::kUninitialised});
  att.max_pos = 24;
  for (size_t i = in.ConsumeIntegralInRange<size_t>(1, 2); i > 0; --i) {
    auto tb = std::make_unique<Attn::Table>();
    RopeConfig& r = tb->cfg;
    r.head_dim = fuzz::Pick<size_t>(in, {k.head_dim, k.head_dim, 2, 2 * k.head_dim});
    r.rotary_dim = in.ConsumeBool() ? 0 : 2 * in.ConsumeIntegralInRange<size_t>(1, r.head_dim / 2);
    r.pairing = in.ConsumeBool() ? RopePairing::kInterleaved : RopePairing::kHalfSplit;
    r.theta = fuzz::Pick(in, {10000.0, 500000.0, 100.0});
    r.scaling = static_cast<RopeScaling>(in.ConsumeIntegralInRange<int>(0, 4));
    r.factor = fuzz::Pick(in, {2.0, 4.0, 8.0});
    r.original_max_positions = fuzz::Pick<size_t>(in, {8, 16});
    const size_t rot = r.rotary_dim ? r.rotary_dim : r.head_dim;
    if (r.scaling == RopeScaling::kDynamicNtk && rot < 4) r.scaling = RopeScaling::kLinear;
    const size_t positions = fuzz::Pick<size_t>(in, {24, 32, 64, gc.max_tokens + fuzz::Dim(in, 20)});
    TILEKIT_FUZZ_CHECK(make_rope_table(r, positions, &tb->table) == Status::kOk, "make_rope_table: %s", last_error());
    tb->inv = testing::RopeReferenceInvFreq(r, positions, &tb->attention);
    att.max_pos = std::min(att.max_pos, positions);
    att.tables.push_back(std::move(tb));
  }
  // Blocks: each sequence's table covers max_pos positions; one more is spare.
  const size_t sequences = gc.max_sequences + in.ConsumeIntegralInRange<size_t>(0, 1);
  const size_t per = (att.max_pos + k.block_tokens - 1) / k.block_tokens;
  k.num_blocks = sequences * per + 1;
  if (att.given == Attn::Given::kUninitialised) return;
  TILEKIT_FUZZ_CHECK(att.cache.init(k) == Status::kOk, "KvCache::init: %s", last_error());
  std::vector<uint32_t> ids(k.num_blocks);
  for (uint32_t& id : ids) TILEKIT_FUZZ_CHECK(att.cache.allocate_block(&id) == Status::kOk, "allocate_block");
  std::mt19937_64 engine(in.ConsumeIntegral<uint32_t>());
  std::shuffle(ids.begin(), ids.end(), engine);
  att.spare = ids.back();
  for (size_t s = 0; s < sequences; ++s) att.slots.emplace_back(ids.begin() + s * per, ids.begin() + (s + 1) * per);
  att.length.assign(sequences, 0);
  const bool bf = k.dtype == KvDtype::kBf16;
  const size_t kr = att.k_row(), vr = att.v_row(), bt = k.block_tokens;
  att.kv.assign(k.layers, std::vector<double>(k.num_blocks * bt * kr));
  att.ke.assign(k.layers, std::vector<double>(k.num_blocks * bt * kr));
  att.vv.assign(k.layers, std::vector<double>(k.num_blocks * bt * vr));
  att.ve.assign(k.layers, std::vector<double>(k.num_blocks * bt * vr));
  std::memset(att.cache.key_rows(0, 0), 0xFF, att.cache.bytes());  // NaN, fp32 and bf16
  for (size_t l = 0; l < k.layers; ++l) {
    for (uint32_t b = 0; b < k.num_blocks; ++b) {
      if (b == att.spare) continue;
      for (int part = 0; part < 2; ++part) {
        const size_t row = part ? vr : kr;
        unsigned char* dst = part ? att.cache.value_rows(l, b) : att.cache.key_rows(l, b);
        std::vector<double>& shadow = part ? att.vv[l] : att.kv[l];
        std::vector<float> x(bt * row);
        values.fill(x, bf);
        for (size_t i = 0; i < x.size(); ++i) {
          shadow[b * bt * row + i] = x[i];
          if (bf) reinterpret_cast<bf16*>(dst)[i] = f32_to_bf16(x[i]);  // exact: x is bf16-exact
          else reinterpret_cast<float*>(dst)[i] = x[i];
        }
      }
    }
  }
}

// Every cache row of the blocks in use within its shadow's bound (exactly the
// shadow where no kv_write reached it); the spare block still NaN bytes.
void CheckCache(const Attn& att, int step) {
  const bool bf = att.cfg.dtype == KvDtype::kBf16;
  const size_t bt = att.cfg.block_tokens;
  for (size_t l = 0; l < att.cfg.layers; ++l) {
    for (uint32_t b = 0; b < att.cfg.num_blocks; ++b) {
      for (int part = 0; part < 2; ++part) {
        const size_t row = part ? att.v_row() : att.k_row(), n = bt * row;
        const unsigned char* src = part ? att.cache.value_rows(l, b) : att.cache.key_rows(l, b);
        if (b == att.spare) {
          for (size_t i = 0; i < n * kv_dtype_bytes(att.cfg.dtype); ++i) {
            TILEKIT_FUZZ_CHECK(src[i] == 0xFF, "step %d wrote the spare block %u (layer %zu)", step, b, l);
          }
          continue;
        }
        const std::vector<double>& v = part ? att.vv[l] : att.kv[l];
        const std::vector<double>& e = part ? att.ve[l] : att.ke[l];
        for (size_t i = 0; i < n; ++i) {
          const double got = bf ? bf16_to_f32(reinterpret_cast<const bf16*>(src)[i]) : reinterpret_cast<const float*>(src)[i];
          const size_t at = b * n + i;
          TILEKIT_FUZZ_CHECK(std::fabs(got - v[at]) <= e[at], "step %d: cache %s of layer %zu, block %u, slot %zu, [%zu] is %.9g, shadow %.9g (bound %.3g)",
                             step, part ? "V" : "K", l, b, i / row, i % row, got, v[at], e[at]);
        }
      }
    }
  }
}

void Run(FuzzedDataProvider& in) {
  const Isa path = fuzz::PickPath(in);
  fuzz::Force(path);
  fuzz::Values values(in.ConsumeIntegral<uint64_t>());
  GraphConfig gc;
  gc.max_tokens = in.ConsumeIntegralInRange<size_t>(1, 6);
  gc.max_sequences = in.ConsumeIntegralInRange<size_t>(1, std::min<size_t>(gc.max_tokens, 3));
  gc.weights = in.ConsumeBool() ? WeightType::kBf16 : WeightType::kF32;
  static ThreadPool pool(2);
  gc.pack_executor = in.ConsumeBool() ? &pool : nullptr;
  Attn att;
  SetUpAttn(in, values, gc, att);
  if (att.on && att.given != Attn::Given::kNone) gc.kv_cache = &att.cache;
  Graph g;
  Case c;
  Describe(in, values, g, c, gc.weights, att);
  // The graph as a whole: kv_write and attention need a cache; a cache given
  // must be initialised (its config sizes every check).
  if (att.on && (att.given == Attn::Given::kUninitialised || (att.given == Attn::Given::kNone && c.kv_nodes))) {
    if (!c.bad) c.bad_kind = -2, c.bad_corruption = static_cast<int>(att.given);
    c.bad = true;
  }
  if (std::getenv("GRAPH_FUZZ_VERBOSE")) {  // replaying a finding: what the graph is
    std::fprintf(stderr, "attn %d (cache %d, layers %zu, kv_heads %zu, heads %zu, head_dim %zu/%zu, block %zu, %s), bad %d\n",
                 att.on, static_cast<int>(att.given), att.cfg.layers, att.cfg.kv_heads, att.heads, att.cfg.head_dim,
                 att.cfg.v_head_dim, att.cfg.block_tokens, att.cfg.dtype == KvDtype::kBf16 ? "bf16" : "f32", c.bad);
    for (const Node& n : c.nodes) {
      std::fprintf(stderr, "  kind %d: a %zu b %zu -> %zu, %zu (layer %zu, heads %zu, scale %g)\n", static_cast<int>(n.kind), n.a,
                   n.b, n.out, n.out2, n.layer, n.heads, n.scale);
    }
  }
  detail::last_error_buffer()[0] = '\0';  // so a refusal must write its own message
  const Status built = g.build(gc);
  if (c.bad) {
    TILEKIT_FUZZ_CHECK(built != Status::kOk, "a graph with a bad node (kind %d, corruption %d) was built", c.bad_kind,
                       c.bad_corruption);
    TILEKIT_FUZZ_CHECK(last_error()[0] != '\0', "refused (%s) without a message", status_name(built));
    TILEKIT_FUZZ_CHECK(!g.built() && g.run(Step{}) != Status::kOk, "a refused graph runs");
    return;
  }
  TILEKIT_FUZZ_CHECK(built == Status::kOk, "a valid graph refused: %s", status_name(built));
  TILEKIT_FUZZ_CHECK(g.build(gc) != Status::kOk, "built twice");
  TILEKIT_FUZZ_CHECK(g.input(3) == kNoTensor, "a node added after build");

  const PanelLayout layout = active_panel_layout(WeightType::kBf16);
  const bool a_rounded = layout.rounds_a_to_bf16(), odd_sums = layout.kind == PanelKind::kArmBfmmla;
  size_t vocab = SIZE_MAX;  // the smallest table bounds the ids
  size_t rope_positions = SIZE_MAX;  // the smallest RoPE table a node reads
  for (const Node& n : c.nodes) {
    if (n.kind == Kind::kEmbedding) vocab = std::min(vocab, n.vocab);
    if (n.kind == Kind::kRope) rope_positions = std::min(rope_positions, n.rope->table.max_positions());
  }
  const bool cache = att.cache_used();
  unsigned char* pool_data = cache ? att.cache.key_rows(0, 0) : nullptr;
  const size_t pool_bytes = cache ? att.cache.bytes() : 0;
  for (int step = 0; step < (att.on ? 4 : 3) && in.remaining_bytes() > 0; ++step) {
    // A step: sequences and their tokens (ids within every table); with an
    // Attn, each continues its sequence, rewinds it or jumps ahead, within the
    // positions its blocks and the RoPE tables hold.
    std::vector<SequenceStep> seqs(in.ConsumeIntegralInRange<size_t>(1, gc.max_sequences));
    std::vector<size_t> slot_of, free_slots(att.slots.size());
    for (size_t i = 0; i < free_slots.size(); ++i) free_slots[i] = i;
    size_t tokens = 0;
    std::vector<size_t> seq_end;
    for (SequenceStep& s : seqs) {
      s.tokens = in.ConsumeIntegralInRange<size_t>(1, std::max<size_t>(1, gc.max_tokens - tokens - (seqs.size() - 1 - seq_end.size())));
      if (att.on) {
        size_t slot = 0;  // a slot no other sequence of the step has
        if (!free_slots.empty()) {
          const size_t i = in.ConsumeIntegralInRange<size_t>(0, free_slots.size() - 1);
          slot = free_slots[i];
          free_slots.erase(free_slots.begin() + i);
        }
        const size_t last = att.max_pos - s.tokens;  // tokens <= max_tokens <= max_pos
        const size_t length = att.length.empty() ? 0 : att.length[slot];
        s.pos = in.ConsumeIntegralInRange<int>(0, 3) ? std::min(length, last) : in.ConsumeIntegralInRange<size_t>(0, last);
        if (cache) {
          const size_t used = (s.pos + s.tokens + att.cfg.block_tokens - 1) / att.cfg.block_tokens;
          s.blocks = att.slots[slot].data();
          // A rollback (pos before where the slot's positions end) passes the
          // whole table: the cache drops the rows past the write only in the
          // blocks the table names (kv_cache.h), and the model here keeps one
          // length per slot.
          const bool whole = in.ConsumeBool();
          s.num_blocks = whole || s.pos < length ? att.slots[slot].size() : used;
        }
        slot_of.push_back(slot);
      } else {
        s.pos = in.ConsumeIntegralInRange<size_t>(0, 100);
      }
      tokens += s.tokens;
      seq_end.push_back(tokens);
    }
    std::vector<int32_t> ids(tokens);
    for (int32_t& id : ids) id = static_cast<int32_t>(in.ConsumeIntegralInRange<size_t>(0, std::min<size_t>(vocab, 64) - 1));
    std::vector<std::vector<float>> inputs(c.tensors.size());
    for (const Node& n : c.nodes) {
      if (n.kind != Kind::kInput) continue;
      inputs[n.out].resize(tokens * c.tensors[n.out].cols);
      values.fill(inputs[n.out]);
    }
    Step st{ids.data(), seqs.data(), seqs.size()};
    // Whether the step only reads what the cache has written: each kv_write at
    // or before where its sequence's positions end; each attention whose layer
    // no earlier kv_write writes over exactly that layer's written positions
    // (0 for a layer no kv_write of the graph writes).
    bool reads_written = true;
    if (cache) {
      for (size_t s = 0; s < seqs.size(); ++s) {
        const size_t length = att.length[slot_of[s]], end = seqs[s].pos + seqs[s].tokens;
        std::vector<bool> wrote(att.cfg.layers, false), writes(att.cfg.layers, false);
        for (const Node& n : c.nodes) writes[n.layer] = writes[n.layer] || n.kind == Kind::kKvWrite;
        for (const Node& n : c.nodes) {
          if (n.kind == Kind::kKvWrite) {
            reads_written &= seqs[s].pos <= length;
            wrote[n.layer] = true;
          } else if (n.kind == Kind::kAttention && !wrote[n.layer]) {
            reads_written &= (writes[n.layer] ? length : 0) == end;
          }
        }
      }
    }
    // One bad step first: refused, every output and the cache as they were.
    const int corrupt = in.ConsumeIntegralInRange<int>(0, att.on ? 10 : 7);
    if (corrupt < (att.on ? 9 : 5)) {
      std::vector<fuzz::Snapshot> before;
      for (const Tensor& t : c.tensors) {
        if (t.output && g.output(t.id).data) before.emplace_back(g.output(t.id).data, g.output(t.id).rows * t.cols * 4);
      }
      if (cache) before.emplace_back(pool_data, pool_bytes);
      Step bad = st;
      std::vector<SequenceStep> more = seqs;
      std::vector<int32_t> bad_ids = ids;
      std::vector<uint32_t> bad_blocks;
      SequenceStep& victim = more[in.ConsumeIntegralInRange<size_t>(0, more.size() - 1)];
      int kind = corrupt;
      if ((kind == 5 || kind == 6) && !cache) kind = 0;
      if (kind == 7 && rope_positions == SIZE_MAX) kind = cache ? 6 : 0;
      switch (kind) {
        case 0: bad.num_seqs = 0; break;
        case 1: more.back().tokens += gc.max_tokens; bad.seqs = more.data(); break;
        case 2: more.back().tokens = 0; bad.seqs = more.data(); break;
        case 3:
          if (vocab == SIZE_MAX) {
            bad.seqs = nullptr;
          } else {
            bad_ids[in.ConsumeIntegralInRange<size_t>(0, tokens - 1)] = fuzz::Pick<int32_t>(in, {-1, INT32_MIN, static_cast<int32_t>(vocab)});
            bad.token_ids = bad_ids.data();
          }
          break;
        case 4:
          if (vocab == SIZE_MAX) bad.num_seqs = gc.max_sequences + 1;
          else bad.token_ids = nullptr;
          break;
        case 5: {  // a block id past the pool, among those the step reaches
          const size_t used = (victim.pos + victim.tokens + att.cfg.block_tokens - 1) / att.cfg.block_tokens;
          bad_blocks.assign(victim.blocks, victim.blocks + victim.num_blocks);
          bad_blocks[in.ConsumeIntegralInRange<size_t>(0, used - 1)] =
              static_cast<uint32_t>(att.cfg.num_blocks) + fuzz::Pick<uint32_t>(in, {0, 1, 1000}) ;
          victim.blocks = bad_blocks.data();
          bad.seqs = more.data();
          break;
        }
        case 6:  // a null table (num_blocks > 0), or one whose tokens overflow size_t
          if (in.ConsumeBool() || att.cfg.block_tokens == 1) victim.blocks = nullptr;
          else victim.num_blocks = SIZE_MAX / att.cfg.block_tokens + 1;
          bad.seqs = more.data();
          break;
        case 7:  // past the smallest RoPE table a node reads
          victim.pos = rope_positions - victim.tokens + in.ConsumeIntegralInRange<size_t>(1, 3);
          bad.seqs = more.data();
          break;
        case 8:  // pos + tokens past size_t
          victim.pos = SIZE_MAX - in.ConsumeIntegralInRange<size_t>(0, victim.tokens - 1);
          bad.seqs = more.data();
          break;
      }
      if (bad.num_seqs > seqs.size()) {
        more.resize(bad.num_seqs, SequenceStep{nullptr, 0, 0, 1});
        bad.seqs = more.data();
      }
      detail::last_error_buffer()[0] = '\0';
      const Status s = g.run(bad);
      TILEKIT_FUZZ_CHECK(s != Status::kOk, "bad step %d accepted", kind);
      TILEKIT_FUZZ_CHECK(last_error()[0] != '\0', "bad step refused (%s) without a message", status_name(s));
      for (const fuzz::Snapshot& b : before) TILEKIT_FUZZ_CHECK(b.unchanged(), "a refused step (%d) changed an output or the cache", kind);
    }
    if (!reads_written) {  // refused whole, as a bad step
      std::vector<fuzz::Snapshot> before;
      for (const Tensor& t : c.tensors) {
        if (t.output && g.output(t.id).data) before.emplace_back(g.output(t.id).data, g.output(t.id).rows * t.cols * 4);
      }
      before.emplace_back(pool_data, pool_bytes);
      detail::last_error_buffer()[0] = '\0';
      const Status s = g.run(st);
      TILEKIT_FUZZ_CHECK(s == Status::kInvalidArgument, "a step reading unwritten positions: %s", status_name(s));
      TILEKIT_FUZZ_CHECK(last_error()[0] != '\0', "refused without a message");
      for (const fuzz::Snapshot& b : before) TILEKIT_FUZZ_CHECK(b.unchanged(), "a refused step changed an output or the cache");
      continue;
    }
    // One thread, then two: the same bits (the cache restored in between, so
    // both runs read what the first found).
    std::vector<std::vector<float>> first(c.tensors.size());
    std::vector<unsigned char> pool_before(pool_data, pool_data + pool_bytes), pool_after;
    for (int threads = 1; threads <= 2; ++threads) {
      for (size_t i = 0; i < c.tensors.size(); ++i) {
        if (!inputs[i].empty()) std::memcpy(g.input_data(c.tensors[i].id), inputs[i].data(), inputs[i].size() * 4);
      }
      if (threads == 2 && cache) {
        pool_after.assign(pool_data, pool_data + pool_bytes);
        std::memcpy(pool_data, pool_before.data(), pool_bytes);
      }
      const Status s = g.run(st, threads == 2 ? &pool : nullptr);
      TILEKIT_FUZZ_CHECK(s == Status::kOk, "a valid step refused (%s, %d thread(s))", status_name(s), threads);
      for (size_t i = 0; i < c.tensors.size(); ++i) {
        if (!c.tensors[i].output) continue;
        const MatrixView<const float> y = g.output(c.tensors[i].id);
        const size_t rows = c.tensors[i].per_sequence ? seqs.size() : tokens;
        TILEKIT_FUZZ_CHECK(y.data && y.rows == rows && y.cols == c.tensors[i].cols, "output %zu is %zu x %zu", i, y.rows,
                           y.cols);
        if (threads == 1) {
          first[i].assign(y.data, y.data + rows * y.cols);
        } else {
          TILEKIT_FUZZ_CHECK(std::memcmp(first[i].data(), y.data, rows * y.cols * 4) == 0,
                             "output %zu: two threads gave other bits", i);
        }
      }
    }
    TILEKIT_FUZZ_CHECK(!cache || std::memcmp(pool_after.data(), pool_data, pool_bytes) == 0,
                       "two threads wrote other bits into the cache");
    if (std::getenv("GRAPH_FUZZ_VERBOSE")) {
      std::fprintf(stderr, "  step %d ran:", step);
      for (const SequenceStep& s : seqs) std::fprintf(stderr, " [pos %zu, %zu tokens, %zu blocks]", s.pos, s.tokens, s.num_blocks);
      std::fprintf(stderr, "\n");
    }
    const std::vector<EV> want = Evaluate(c, tokens, seqs, seq_end, ids.data(), inputs, a_rounded, odd_sums, att);
    for (size_t i = 0; i < c.tensors.size(); ++i) {
      if (!c.tensors[i].output) continue;
      const EV& r = want[i];
      for (size_t k = 0; k < r.v.size(); ++k) {
        const double err = std::fabs(first[i][k] - r.v[k]);
        TILEKIT_FUZZ_CHECK(err <= r.e[k] + 1e-30, "tensor %zu element %zu: %.9g, reference %.9g (error %.3g > bound %.3g)",
                           i, k, first[i][k], r.v[k], err, r.e[k]);
      }
    }
    if (cache) CheckCache(att, step);
    for (size_t s = 0; s < slot_of.size() && !att.length.empty(); ++s) {
      att.length[slot_of[s]] = seqs[s].pos + seqs[s].tokens;  // a write ends the written positions
    }
  }
}

}  // namespace
}  // namespace tilekit

TILEKIT_FUZZ_ENTRY(tilekit::Run)

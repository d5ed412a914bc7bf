// A thin graph executor: nodes that are calls to tilekit's public kernels,
// over fp32 activation tensors whose row count is symbolic (the tokens of a
// step, or its sequences), built once and run for any row count up to the
// declared maximum with no re-planning and no allocation.
//
//   Graph g;
//   TensorId x = g.embedding(table, vocab, dim);
//   TensorId h = g.rms_norm(x, w_norm, eps);
//   TensorId q = g.linear(h, weights_nk(wq, dim, dim)), k = ..., v = ...;
//   g.rope(q, k, &rope_table);  g.kv_write(k, v, layer);
//   TensorId o = g.attention(q, heads, layer);
//   x = g.add(g.linear(o, weights_nk(wo, dim, dim)), x);
//   ...
//   g.mark_output(logits);
//   g.build(config);           // packs, fuses, plans one arena
//   g.run(step, &pool);        // any token count <= config.max_tokens
//
// build():
//  - epilogue folding: add(linear(x), r) where the linear's output has no other
//    reader becomes one GEMM storing x·W + r (Epilogue::residual); when r is
//    read by nothing later the sum is written over r (the in-place residual
//    add gemm allows), so a residual stream is one buffer for the whole model;
//  - horizontal fusion: linears without a residual that read the same tensor
//    (Q, K, V) are packed as segments of one PackedWeights and run as one
//    gemm_fused, each segment with its own bias and activation;
//  - packing: each linear's weights once, fp32 or bf16 (per graph or per node);
//  - planning: every tensor's lifetime (its producing node to its last reader)
//    and size at the maximum row count; tensors are placed in one arena,
//    largest first, each at the lowest offset free of the tensors alive at the
//    same time (XNNPACK's memory planner, ggml-alloc's reuse), and an output
//    may take the buffer of an input read for the last time by its node when
//    the kernel allows in place (the residual of a GEMM, an add, an rms_norm).
//
// run(): one Step holds the token ids and, per sequence, its KV block table,
// its position and how many of the step's tokens are its (contiguous, in
// order). Prefill chunks, single-token decode and several sequences of
// different lengths in one decode step all use the same graph. The executor
// is handed to every kernel; every kernel gives the same bits for any thread
// count, so the graph does too. A node adds no arithmetic of its own: the
// embedding lookup and taking the last row of each sequence are copies.
//
// Target-independent, header-only: it calls the entry points of tilekit.h.
#ifndef TILEKIT_GRAPH_GRAPH_H_
#define TILEKIT_GRAPH_GRAPH_H_

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <vector>

#include "tilekit/attention/attention.h"
#include "tilekit/attention/kv_cache.h"
#include "tilekit/base/aligned_buffer.h"
#include "tilekit/base/matrix.h"
#include "tilekit/base/status.h"
#include "tilekit/epilogue/apply.h"
#include "tilekit/epilogue/epilogue.h"
#include "tilekit/gemm/gemm.h"
#include "tilekit/gemm/packed_weights.h"
#include "tilekit/graph/arena.h"
#include "tilekit/ops/rms_norm.h"
#include "tilekit/ops/rope.h"
#include "tilekit/threading/executor.h"

namespace tilekit {

using TensorId = uint32_t;
constexpr TensorId kNoTensor = std::numeric_limits<TensorId>::max();

// What a tensor's rows are: one per token of the step, or one per sequence.
enum class Rows : uint8_t { kTokens, kSequences };

// A sequence's part of a step: its KV block table (covering pos + tokens), how
// many tokens it already holds in the cache, and how many of the step's tokens
// are its own (the next `tokens` of Step::token_ids).
struct SequenceStep {
  const uint32_t* blocks = nullptr;
  size_t num_blocks = 0;
  size_t pos = 0;
  size_t tokens = 0;
};

struct Step {
  const int32_t* token_ids = nullptr;  // sum of seqs[i].tokens ids
  const SequenceStep* seqs = nullptr;
  size_t num_seqs = 0;
};

struct GraphConfig {
  size_t max_tokens = 0;     // the largest step the graph runs (tokens of all sequences)
  size_t max_sequences = 1;  // the most sequences in one step
  WeightType weights = WeightType::kF32;  // linears that do not choose their own
  KvCache* kv_cache = nullptr;            // read and written by kv_write and attention nodes
  Executor* pack_executor = nullptr;      // threads for packing at build
};

// Per-node choice of a linear's weight type.
enum class NodeWeights : uint8_t { kGraphDefault, kF32, kBf16 };

struct LinearOptions {
  const float* bias = nullptr;  // [N], copied at build
  Activation activation = Activation::kNone;
  NodeWeights weights = NodeWeights::kGraphDefault;
};

struct GraphStats {
  size_t arena_bytes = 0;         // the planned arena
  size_t intermediate_bytes = 0;  // every tensor in its own buffer, at the maximum rows
  size_t packed_bytes = 0;        // all packed weights
  size_t tensors = 0;
  size_t kernel_nodes = 0;        // nodes run per step after fusion
  size_t folded_adds = 0;         // residual adds stored by a GEMM epilogue
  size_t fused_linears = 0;       // linears that joined another's GEMM (horizontal fusion)
};

class Graph {
 public:
  Graph() = default;
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  // --- description ---------------------------------------------------------
  // Errors (an unknown tensor, mismatched columns) are kept and returned by
  // build(); the calls return kNoTensor then.

  // A tensor the caller fills before each run (input_data()), e.g. hidden
  // states from elsewhere; its rows are the step's tokens.
  TensorId input(size_t cols);
  // Rows of `table` ([vocab][dim], kept by the caller) picked by the step's
  // token ids.
  TensorId embedding(const float* table, size_t vocab, size_t dim);
  // x · W (+ bias, activation). W: K = x's columns.
  TensorId linear(TensorId x, const WeightSource& w, const LinearOptions& options = {});
  // silu(x · Wg) · (x · Wu) (+ bias over the gate/up pair is not supported),
  // one GEMM over weights packed as a gate/up pair.
  TensorId gate_up_swiglu(TensorId x, const WeightSource& gate, const WeightSource& up,
                          NodeWeights weights = NodeWeights::kGraphDefault);
  TensorId rms_norm(TensorId x, const float* weight, float eps);
  // h = x + residual, *residual ← h (a new tensor id for the sum), returns rmsnorm(h).
  TensorId add_rms_norm(TensorId x, TensorId* residual, const float* weight, float eps);
  TensorId add(TensorId a, TensorId b);
  // Rotates q's and k's heads in place at the step's positions (q and k two
  // tensors: the kernel refuses overlapping heads).
  void rope(TensorId q, TensorId k, const RopeTable* table);
  // Writes k and v ([rows][kv_heads · head_dim], [rows][kv_heads · v_head_dim])
  // into the cache's `layer` at the step's positions. The cache is the
  // config's: build() checks the layer and the columns against it.
  void kv_write(TensorId k, TensorId v, size_t layer);
  // Causal attention of q ([rows][heads · head_dim]) over the cache's `layer`
  // (heads a multiple of its KV heads, its v_head_dim = head_dim; build()
  // checks). scale: finite, >= 0 (0: 1/sqrt(head_dim)).
  TensorId attention(TensorId q, size_t heads, size_t layer, float scale = 0.f);
  // The last row of each sequence: [sequences][cols].
  TensorId last_tokens(TensorId x);
  void mark_output(TensorId t);

  // --- build and run -------------------------------------------------------
  Status build(const GraphConfig& config);
  Status run(const Step& step, Executor* executor = nullptr);

  // Where an input tensor's rows go (max_tokens rows of cols floats); valid after build.
  float* input_data(TensorId t) const { return built_ && t < tensors_.size() ? data(t) : nullptr; }
  // The rows of the last run (tokens or sequences).
  MatrixView<const float> output(TensorId t) const;
  size_t cols(TensorId t) const { return t < tensors_.size() ? tensors_[t].cols : 0; }
  const GraphStats& stats() const { return stats_; }
  bool built() const { return built_; }

 private:
  enum class Op : uint8_t { kInput, kEmbedding, kLinear, kRmsNorm, kAddRmsNorm, kAdd, kRope, kKvWrite, kAttention, kLastTokens };

  struct Tensor {
    size_t cols = 0;
    Rows rows = Rows::kTokens;
    bool output = false;
    int def = -1, last = -1;  // producing node and last reader (indices into nodes_)
    size_t storage = 0;       // index into storage_ (tensors sharing a buffer in place)
  };
  struct Storage {
    size_t bytes = 0, offset = 0;
    int first = 0, last = 0;
  };
  // One GEMM output: its tensor and epilogue ops (bias copied into biases_).
  struct Segment {
    TensorId out = kNoTensor;
    WeightSource w;
    size_t bias = kNone;  // index into biases_
    Activation activation = Activation::kNone;
  };
  struct Node {
    explicit Node(Op o) : op(o) {}
    Op op;
    bool dead = false;
    TensorId a = kNoTensor, b = kNoTensor, out = kNoTensor, out2 = kNoTensor;
    // linear
    std::vector<Segment> segs;
    bool gate_up = false;
    TensorId residual = kNoTensor;
    WeightType type = WeightType::kF32;
    NodeWeights weights = NodeWeights::kGraphDefault;
    size_t packed = 0;
    std::vector<FusedOutput<float>> fused;  // filled per run, allocated at build
    // others
    size_t param = kNone;  // norm weight (index into biases_), or layer
    float eps = 0.f, scale = 0.f;
    size_t heads = 0;
    const float* table = nullptr;
    size_t vocab = 0;
    const RopeTable* rope = nullptr;
  };
  static constexpr size_t kNone = std::numeric_limits<size_t>::max();

  TensorId new_tensor(size_t cols, Rows rows);
  bool valid(TensorId t, const char* op);
  // Keeps the first description error (returned by build()); returns false.
  __attribute__((format(printf, 3, 4))) bool record(Status code, const char* format, ...);
  size_t keep(const float* data, size_t n);
  TensorId add_node(Node node);
  size_t rows_at(Rows r) const { return r == Rows::kTokens ? step_tokens_ : step_seqs_; }
  float* data(TensorId t) const { return arena_.as<unsigned char>() ? reinterpret_cast<float*>(arena_.as<unsigned char>() + storage_[tensors_[t].storage].offset) : nullptr; }
  MatrixView<float> view(TensorId t) const { return MatrixView<float>{data(t), rows_at(tensors_[t].rows), tensors_[t].cols, tensors_[t].cols}; }
  bool same_storage(TensorId x, TensorId y) const { return tensors_[x].storage == tensors_[y].storage; }

  void fold_adds();
  void fuse_horizontally();
  Status pack(const GraphConfig& config);
  void plan();
  Status run_node(Node& n, const Step& step, Executor* ex);
  Status check_step(const Step& step) const;

  std::vector<Tensor> tensors_;
  std::vector<Node> nodes_;
  std::vector<std::vector<float>> biases_;
  std::vector<PackedWeights> packed_;
  std::vector<Storage> storage_;
  std::vector<int32_t> positions_;
  std::vector<AttentionBatchItem> items_;
  AlignedBuffer arena_;
  GraphConfig config_;
  GraphStats stats_;
  Status error_ = Status::kOk;
  char error_text_[256] = "";
  bool built_ = false;
  size_t step_tokens_ = 0, step_seqs_ = 0;
};

// ---------------------------------------------------------------------------
// Definitions (inline: small, target-independent, calls public entry points).

inline TensorId Graph::new_tensor(size_t cols, Rows rows) {
  Tensor t;
  t.cols = cols;
  t.rows = rows;
  tensors_.push_back(t);
  return static_cast<TensorId>(tensors_.size() - 1);
}

inline bool Graph::record(Status code, const char* format, ...) {
  if (error_ != Status::kOk) return false;
  va_list args;
  va_start(args, format);
  std::vsnprintf(error_text_, sizeof(error_text_), format, args);
  va_end(args);
  error_ = fail(code, "%s", error_text_);
  return false;
}

inline bool Graph::valid(TensorId t, const char* op) {
  if (built_) return record(Status::kInvalidArgument, "graph: %s added after build", op);
  if (t < tensors_.size()) return true;
  return record(Status::kInvalidArgument, "graph: %s reads an unknown tensor %u", op, t);
}

inline size_t Graph::keep(const float* data, size_t n) {
  if (!data) return kNone;
  biases_.emplace_back(data, data + n);
  return biases_.size() - 1;
}

inline TensorId Graph::add_node(Node node) {
  const TensorId out = node.out;
  nodes_.push_back(std::move(node));
  return out;
}

// A description check of a call that returns a tensor: on failure, records
// the error and returns kNoTensor.
#define TILEKIT_GRAPH_REQUIRE(cond, ...)          \
  do {                                            \
    if (!(cond)) {                                \
      record(Status::kShapeMismatch, __VA_ARGS__); \
      return kNoTensor;                           \
    }                                             \
  } while (0)

inline TensorId Graph::input(size_t cols) {
  TILEKIT_GRAPH_REQUIRE(!built_ && cols, "graph: an input needs columns");
  Node n{Op::kInput};
  n.out = new_tensor(cols, Rows::kTokens);
  return add_node(std::move(n));
}

inline TensorId Graph::embedding(const float* table, size_t vocab, size_t dim) {
  TILEKIT_GRAPH_REQUIRE(!built_ && table && vocab && dim, "graph: embedding needs a table of vocab x dim > 0");
  Node n{Op::kEmbedding};
  n.table = table;
  n.vocab = vocab;
  n.out = new_tensor(dim, Rows::kTokens);
  return add_node(std::move(n));
}

inline TensorId Graph::linear(TensorId x, const WeightSource& w, const LinearOptions& options) {
  if (!valid(x, "linear")) return kNoTensor;
  TILEKIT_GRAPH_REQUIRE(w.data && w.k == tensors_[x].cols && w.n,
                        "graph: linear weights are %zu x %zu for an input of %zu columns", w.k, w.n,
                        tensors_[x].cols);
  TILEKIT_GRAPH_REQUIRE(options.activation != Activation::kSwiGlu, "graph: SwiGLU is gate_up_swiglu's");
  Node n{Op::kLinear};
  n.a = x;
  n.weights = options.weights;
  Segment s;
  s.out = new_tensor(w.n, tensors_[x].rows);
  s.w = w;
  s.bias = keep(options.bias, w.n);
  s.activation = options.activation;
  n.segs.push_back(s);
  n.out = s.out;
  return add_node(std::move(n));
}

inline TensorId Graph::gate_up_swiglu(TensorId x, const WeightSource& gate, const WeightSource& up,
                                      NodeWeights weights) {
  if (!valid(x, "gate_up_swiglu")) return kNoTensor;
  TILEKIT_GRAPH_REQUIRE(gate.data && up.data && gate.k == tensors_[x].cols && up.k == gate.k && up.n == gate.n &&
                            gate.n,
                        "graph: gate/up weights %zu x %zu and %zu x %zu for an input of %zu columns", gate.k,
                        gate.n, up.k, up.n, tensors_[x].cols);
  Node n{Op::kLinear};
  n.a = x;
  n.gate_up = true;
  n.weights = weights;
  Segment g;
  g.out = new_tensor(gate.n, tensors_[x].rows);
  g.w = gate;
  g.activation = Activation::kSwiGlu;
  Segment u = g;
  u.w = up;
  n.segs = {g, u};
  n.out = g.out;
  return add_node(std::move(n));
}

inline TensorId Graph::rms_norm(TensorId x, const float* weight, float eps) {
  if (!valid(x, "rms_norm")) return kNoTensor;
  // The kernel refuses such an eps on every run: refuse the node instead.
  TILEKIT_GRAPH_REQUIRE(weight && eps >= 0.f, "graph: rms_norm needs a weight and eps >= 0 (eps %g)", eps);
  Node n{Op::kRmsNorm};
  n.a = x;
  n.param = keep(weight, tensors_[x].cols);
  n.eps = eps;
  n.out = new_tensor(tensors_[x].cols, tensors_[x].rows);
  return add_node(std::move(n));
}

inline TensorId Graph::add_rms_norm(TensorId x, TensorId* residual, const float* weight, float eps) {
  if (!valid(x, "add_rms_norm") || !residual || !valid(*residual, "add_rms_norm")) return kNoTensor;
  TILEKIT_GRAPH_REQUIRE(weight && eps >= 0.f && tensors_[x].cols == tensors_[*residual].cols &&
                            tensors_[x].rows == tensors_[*residual].rows,
                        "graph: add_rms_norm of %zu and %zu columns (eps %g, weight %s)", tensors_[x].cols,
                        tensors_[*residual].cols, eps, weight ? "given" : "null");
  Node n{Op::kAddRmsNorm};
  n.a = x;
  n.b = *residual;
  n.param = keep(weight, tensors_[x].cols);
  n.eps = eps;
  n.out2 = new_tensor(tensors_[x].cols, tensors_[x].rows);  // the sum, written over the residual
  n.out = new_tensor(tensors_[x].cols, tensors_[x].rows);
  *residual = n.out2;
  return add_node(std::move(n));
}

inline TensorId Graph::add(TensorId a, TensorId b) {
  if (!valid(a, "add") || !valid(b, "add")) return kNoTensor;
  TILEKIT_GRAPH_REQUIRE(tensors_[a].cols == tensors_[b].cols && tensors_[a].rows == tensors_[b].rows,
                        "graph: add of %zu and %zu columns", tensors_[a].cols, tensors_[b].cols);
  Node n{Op::kAdd};
  n.a = a;
  n.b = b;
  n.out = new_tensor(tensors_[a].cols, tensors_[a].rows);
  return add_node(std::move(n));
}

inline void Graph::rope(TensorId q, TensorId k, const RopeTable* table) {
  if (!valid(q, "rope") || !valid(k, "rope")) return;
  if (!table || !table->head_dim() || tensors_[q].cols % table->head_dim() || tensors_[k].cols % table->head_dim() ||
      tensors_[q].rows != Rows::kTokens || tensors_[k].rows != Rows::kTokens) {
    record(Status::kShapeMismatch, "graph: rope of %zu and %zu columns by heads of %zu", tensors_[q].cols,
           tensors_[k].cols, table ? table->head_dim() : 0);
    return;
  }
  // One tensor as q and k: the kernel refuses the overlap on every run.
  if (q == k) {
    record(Status::kAliasing, "graph: rope of tensor %u as both q and k", q);
    return;
  }
  Node n{Op::kRope};
  n.a = q;
  n.b = k;
  n.rope = table;
  nodes_.push_back(std::move(n));
}

inline void Graph::kv_write(TensorId k, TensorId v, size_t layer) {
  if (!valid(k, "kv_write") || !valid(v, "kv_write")) return;
  if (tensors_[k].rows != Rows::kTokens || tensors_[v].rows != Rows::kTokens) {
    record(Status::kShapeMismatch, "graph: kv_write reads per-token tensors");
    return;
  }
  Node n{Op::kKvWrite};
  n.a = k;
  n.b = v;
  n.param = layer;
  nodes_.push_back(std::move(n));
}

inline TensorId Graph::attention(TensorId q, size_t heads, size_t layer, float scale) {
  if (!valid(q, "attention")) return kNoTensor;
  TILEKIT_GRAPH_REQUIRE(heads && tensors_[q].cols % heads == 0 && tensors_[q].rows == Rows::kTokens,
                        "graph: attention of %zu columns in %zu heads", tensors_[q].cols, heads);
  // The kernel refuses such a scale on every run: refuse the node instead.
  if (!(scale >= 0.f) || !std::isfinite(scale)) {
    record(Status::kInvalidArgument, "graph: attention scale %g must be finite and >= 0 (0: 1/sqrt(head_dim))", scale);
    return kNoTensor;
  }
  Node n{Op::kAttention};
  n.a = q;
  n.heads = heads;
  n.param = layer;
  n.scale = scale;
  n.out = new_tensor(tensors_[q].cols, Rows::kTokens);
  return add_node(std::move(n));
}

inline TensorId Graph::last_tokens(TensorId x) {
  if (!valid(x, "last_tokens")) return kNoTensor;
  // A per-sequence tensor has no token rows: run() would index it by the
  // step's token count, past its sequence rows.
  TILEKIT_GRAPH_REQUIRE(tensors_[x].rows == Rows::kTokens, "graph: last_tokens of a tensor with a row per sequence");
  Node n{Op::kLastTokens};
  n.a = x;
  n.out = new_tensor(tensors_[x].cols, Rows::kSequences);
  return add_node(std::move(n));
}

#undef TILEKIT_GRAPH_REQUIRE

inline void Graph::mark_output(TensorId t) {
  if (valid(t, "mark_output")) tensors_[t].output = true;
}

// add(linear(x), r) → one GEMM with r as its epilogue's residual, when the
// linear's output is read by the add alone and is no graph output.
inline void Graph::fold_adds() {
  std::vector<int> readers(tensors_.size(), 0);
  for (const Node& n : nodes_) {
    for (TensorId t : {n.a, n.b}) if (t != kNoTensor) ++readers[t];
  }
  std::vector<int> producer(tensors_.size(), -1);
  for (size_t i = 0; i < nodes_.size(); ++i) {
    Node& n = nodes_[i];
    if (n.op == Op::kLinear) {
      for (const Segment& s : n.segs) producer[s.out] = static_cast<int>(i);
      continue;
    }
    if (n.op != Op::kAdd) continue;
    for (int side = 0; side < 2; ++side) {
      const TensorId y = side ? n.b : n.a, r = side ? n.a : n.b;
      const int p = producer[y];
      if (p < 0 || readers[y] != 1 || tensors_[y].output) continue;
      Node& lin = nodes_[p];
      if (lin.segs.size() != (lin.gate_up ? 2u : 1u) || lin.residual != kNoTensor) continue;
      // The residual must exist when the GEMM runs; it does (it is an input
      // of the add, defined before it), but a node between the GEMM and the add
      // must not change it in place.
      bool changed = false;
      for (size_t j = p + 1; j < i; ++j) {
        const Node& m = nodes_[j];
        if (m.op == Op::kRope && (m.a == r || m.b == r || m.a == lin.a || m.b == lin.a)) changed = true;
      }
      if (changed) continue;
      lin.residual = r;
      lin.segs[0].out = n.out;
      lin.out = n.out;
      if (lin.gate_up) lin.segs[1].out = n.out;
      // The GEMM now runs where the add was: the residual may be written by a
      // node after the linear (it is in a residual stream).
      Node moved = std::move(lin);
      lin = Node(Op::kAdd);
      lin.dead = true;
      n = std::move(moved);
      producer[n.out] = static_cast<int>(i);
      ++stats_.folded_adds;
      break;
    }
  }
}

// Linears (no residual, not gate/up) reading the same tensor, of the same
// weight type, become one node: one pass over their input.
inline void Graph::fuse_horizontally() {
  for (size_t i = 0; i < nodes_.size(); ++i) {
    Node& first = nodes_[i];
    if (first.dead || first.op != Op::kLinear || first.gate_up || first.residual != kNoTensor) continue;
    for (size_t j = i + 1; j < nodes_.size(); ++j) {
      Node& n = nodes_[j];
      if (n.dead) continue;
      // A node that changes the input in place ends the run of readers.
      if (n.op == Op::kRope && (n.a == first.a || n.b == first.a)) break;
      if (n.op != Op::kLinear || n.gate_up || n.residual != kNoTensor || n.a != first.a || n.type != first.type) {
        continue;
      }
      first.segs.push_back(n.segs[0]);
      n.dead = true;
      ++stats_.fused_linears;
    }
  }
}

inline Status Graph::pack(const GraphConfig& config) {
  size_t count = 0;
  for (const Node& n : nodes_) count += !n.dead && n.op == Op::kLinear;
  packed_.clear();
  packed_.reserve(count);
  PackOptions po;
  po.executor = config.pack_executor;
  std::vector<WeightSource> parts;
  for (Node& n : nodes_) {
    if (n.dead || n.op != Op::kLinear) continue;
    parts.clear();
    for (const Segment& s : n.segs) parts.push_back(s.w);
    packed_.emplace_back();
    const Status st = pack_weights(parts.data(), parts.size(), n.type, n.gate_up ? PackKind::kGateUp : PackKind::kSeparate,
                                   &packed_.back(), po);
    if (st != Status::kOk) return st;
    n.packed = packed_.size() - 1;
    stats_.packed_bytes += packed_.back().bytes();
    n.fused.resize(n.gate_up ? 1 : n.segs.size());
  }
  return Status::kOk;
}

// Lifetimes and in-place sharing, then placement (arena.h).
inline void Graph::plan() {
  const int end = static_cast<int>(nodes_.size());
  for (Tensor& t : tensors_) t.def = t.last = -1;
  auto read = [&](TensorId t, int i) {
    if (t != kNoTensor) tensors_[t].last = std::max(tensors_[t].last, i);
  };
  auto write = [&](TensorId t, int i) {
    if (t != kNoTensor && tensors_[t].def < 0) tensors_[t].def = i;
  };
  for (int i = 0; i < end; ++i) {
    const Node& n = nodes_[i];
    if (n.dead) continue;
    read(n.a, i);
    read(n.b, i);
    read(n.residual, i);
    write(n.out, i);
    write(n.out2, i);
    for (const Segment& s : n.segs) write(s.out, i);
  }
  // The caller writes an input before the run: it is alive from the first
  // node (else a tensor that dies before its input node may share its bytes
  // and overwrite them).
  for (const Node& n : nodes_) {
    if (n.op == Op::kInput) tensors_[n.out].def = 0;
  }
  for (Tensor& t : tensors_) {
    if (t.def < 0) t.def = 0;  // never produced (a dead node's): costs nothing below
    if (t.last < t.def) t.last = t.def;
    if (t.output) t.last = end;
  }
  storage_.clear();
  const size_t max_rows[2] = {config_.max_tokens, config_.max_sequences};
  for (size_t i = 0; i < tensors_.size(); ++i) {
    Tensor& t = tensors_[i];
    Storage s;
    s.bytes = (max_rows[t.rows == Rows::kSequences] * t.cols * sizeof(float) + kCacheLine - 1) / kCacheLine * kCacheLine;
    s.first = t.def;
    s.last = t.last;
    t.storage = storage_.size();
    storage_.push_back(s);
  }
  std::vector<char> produced(tensors_.size(), 0);
  for (int i = 0; i < end; ++i) {
    for (const Segment& s : nodes_[i].segs) produced[s.out] |= !nodes_[i].dead;
    if (!nodes_[i].dead) {
      if (nodes_[i].out != kNoTensor) produced[nodes_[i].out] = 1;
      if (nodes_[i].out2 != kNoTensor) produced[nodes_[i].out2] = 1;
    }
  }
  stats_.intermediate_bytes = 0;
  stats_.tensors = 0;
  for (size_t i = 0; i < tensors_.size(); ++i) {
    if (!produced[i]) continue;
    stats_.intermediate_bytes += storage_[i].bytes;
    ++stats_.tensors;
  }
  // In place: an output takes the buffer of an input whose last reader is this
  // node, where the kernel allows it.
  auto share = [&](TensorId out, TensorId in, int i) {
    if (out == kNoTensor || in == kNoTensor) return false;
    Tensor &o = tensors_[out], &x = tensors_[in];
    Storage& sx = storage_[x.storage];
    if (x.output || sx.last != i || o.cols != x.cols || o.rows != x.rows) return false;
    storage_[o.storage].bytes = 0;
    o.storage = x.storage;
    sx.last = std::max(sx.last, o.last);
    return true;
  };
  for (int i = 0; i < end; ++i) {
    Node& n = nodes_[i];
    if (n.dead) continue;
    switch (n.op) {
      case Op::kLinear:
        // Not over the GEMM's own input (x + x·W): gemm refuses A overlapping C.
        if (n.residual == kNoTensor || !same_storage(n.residual, n.a)) share(n.out, n.residual, i);
        break;
      case Op::kAdd: share(n.out, n.a, i) || share(n.out, n.b, i); break;
      case Op::kRmsNorm: share(n.out, n.a, i); break;
      case Op::kAddRmsNorm:
        // Not when x is the residual (add_rms_norm(x, &x)): the sum over it
        // would overlap x, which add_rms_norm refuses.
        if (!same_storage(n.a, n.b)) share(n.out2, n.b, i);
        break;
      default: break;
    }
  }
  std::vector<graph_detail::ArenaUsage> usage(storage_.size());
  for (size_t i = 0; i < storage_.size(); ++i) {
    if (!produced[i]) continue;  // never written: no bytes
    usage[i].bytes = storage_[i].bytes;
    usage[i].first = static_cast<size_t>(storage_[i].first);
    usage[i].last = static_cast<size_t>(storage_[i].last);
  }
  std::vector<size_t> offsets;
  const size_t arena = graph_detail::plan_arena(usage, &offsets);
  for (size_t i = 0; i < storage_.size(); ++i) storage_[i].offset = offsets[i];
  stats_.arena_bytes = arena;
}

inline Status Graph::build(const GraphConfig& config) {
  if (built_) return fail(Status::kInvalidArgument, "graph: built already");
  if (error_ != Status::kOk) return fail(error_, "%s", error_text_);
  if (config.max_tokens == 0 || config.max_sequences == 0 || config.max_sequences > config.max_tokens) {
    return fail(Status::kInvalidArgument, "graph: max_tokens (%zu) and max_sequences (%zu) must be > 0, sequences <= tokens",
                config.max_tokens, config.max_sequences);
  }
  for (const Node& n : nodes_) {
    if ((n.op == Op::kKvWrite || n.op == Op::kAttention) && !config.kv_cache) {
      return fail(Status::kNullPointer, "graph: kv_write and attention nodes need GraphConfig::kv_cache");
    }
  }
  // The cache's shape against the nodes that use it: what the kernels would
  // refuse on every run (or, for K/V columns past kv_heads · head_dim, drop).
  if (config.kv_cache) {
    const KvCache& cache = *config.kv_cache;
    if (cache.empty()) return fail(Status::kInvalidArgument, "graph: GraphConfig::kv_cache is not initialised");
    const KvCacheConfig& kc = cache.config();
    for (const Node& n : nodes_) {
      if (n.op != Op::kKvWrite && n.op != Op::kAttention) continue;
      if (n.param >= kc.layers) {
        return fail(Status::kInvalidArgument, "graph: %s of layer %zu, the cache has %zu",
                    n.op == Op::kKvWrite ? "kv_write" : "attention", n.param, kc.layers);
      }
      if (n.op == Op::kKvWrite &&
          (tensors_[n.a].cols != kc.kv_heads * kc.head_dim || tensors_[n.b].cols != kc.kv_heads * kc.v_head_dim)) {
        return fail(Status::kShapeMismatch,
                    "graph: kv_write of K %zu and V %zu columns, the cache holds %zu heads x %zu (K) and x %zu (V)",
                    tensors_[n.a].cols, tensors_[n.b].cols, kc.kv_heads, kc.head_dim, kc.v_head_dim);
      }
      if (n.op == Op::kAttention && (tensors_[n.a].cols / n.heads != kc.head_dim || n.heads % kc.kv_heads ||
                                     kc.v_head_dim != kc.head_dim)) {
        return fail(Status::kShapeMismatch,
                    "graph: attention of %zu heads x %zu over a cache of %zu KV heads x %zu (K) and x %zu (V): needs "
                    "the same head_dim, heads a multiple of the KV heads, v_head_dim = head_dim",
                    n.heads, tensors_[n.a].cols / n.heads, kc.kv_heads, kc.head_dim, kc.v_head_dim);
      }
    }
  }
  // Each tensor's bytes at the most rows, and all of them together (the arena
  // is at most their sum), must fit in size_t: an input or embedding of 2^62
  // columns planned a wrapped, tiny arena that run() then wrote past.
  size_t total = 0;
  for (const Tensor& t : tensors_) {
    const size_t rows = t.rows == Rows::kSequences ? config.max_sequences : config.max_tokens;
    // total <= SIZE_MAX / 2 - kCacheLine before each step, so nothing wraps.
    if (t.cols > (SIZE_MAX / 2 - kCacheLine - total) / sizeof(float) / rows) {
      return fail(Status::kOverflow, "graph: a tensor of %zu x %zu floats (after %zu bytes of others) does not fit",
                  rows, t.cols, total);
    }
    total += rows * t.cols * sizeof(float) + kCacheLine;
    if (total > SIZE_MAX / 2 - kCacheLine) return fail(Status::kOverflow, "graph: the tensors' bytes do not fit");
  }
  config_ = config;
  for (Node& n : nodes_) {
    if (n.op != Op::kLinear) continue;
    n.type = n.weights == NodeWeights::kF32    ? WeightType::kF32
             : n.weights == NodeWeights::kBf16 ? WeightType::kBf16
                                               : config.weights;
  }
  fold_adds();
  fuse_horizontally();
  const Status st = pack(config);
  if (st != Status::kOk) return st;
  plan();
  if (!arena_.allocate(stats_.arena_bytes, PageHint::kHuge)) {
    return fail(Status::kOutOfMemory, "graph: cannot allocate an arena of %zu bytes", stats_.arena_bytes);
  }
  positions_.assign(config.max_tokens, 0);
  items_.assign(config.max_sequences, AttentionBatchItem{});
  stats_.kernel_nodes = 0;
  for (const Node& n : nodes_) stats_.kernel_nodes += !n.dead && n.op != Op::kInput && n.op != Op::kEmbedding && n.op != Op::kLastTokens;
  built_ = true;
  return Status::kOk;
}

inline Status Graph::check_step(const Step& step) const {
  if (!built_) return fail(Status::kInvalidArgument, "graph: run before build");
  if (!step.seqs || step.num_seqs == 0) return fail(Status::kInvalidArgument, "graph: a step needs sequences");
  if (step.num_seqs > config_.max_sequences) {
    return fail(Status::kInvalidArgument, "graph: %zu sequences in a step, built for at most %zu", step.num_seqs,
                config_.max_sequences);
  }
  size_t tokens = 0;
  const KvCache* cache = config_.kv_cache;
  for (size_t s = 0; s < step.num_seqs; ++s) {
    const SequenceStep& q = step.seqs[s];
    if (q.tokens == 0) return fail(Status::kInvalidArgument, "graph: sequence %zu has no tokens in the step", s);
    tokens += q.tokens;
    if (tokens > config_.max_tokens) {
      return fail(Status::kInvalidArgument, "graph: a step of more than %zu tokens, built for at most %zu", tokens - 1,
                  config_.max_tokens);
    }
    if (q.pos > SIZE_MAX - q.tokens) {
      return fail(Status::kOverflow, "graph: sequence %zu's pos %zu + %zu tokens overflows", s, q.pos, q.tokens);
    }
    // The block table as kv_cache_write and attention read it, checked before
    // any node runs (so a refused step writes no output and no cache row).
    if (cache) {
      const KvCacheConfig& kc = cache->config();
      const size_t end = q.pos + q.tokens, used = end / kc.block_tokens + (end % kc.block_tokens != 0);
      if (q.num_blocks < used || q.num_blocks > SIZE_MAX / kc.block_tokens) {
        return fail(Status::kInvalidArgument, "graph: sequence %zu's %zu blocks cannot hold %zu tokens%s", s,
                    q.num_blocks, end, q.num_blocks < used ? "" : " (or their tokens overflow size_t)");
      }
      if (!q.blocks) return fail(Status::kNullPointer, "graph: sequence %zu's block table is null", s);
      for (size_t b = 0; b < used; ++b) {
        if (q.blocks[b] >= kc.num_blocks) {
          return fail(Status::kInvalidArgument, "graph: sequence %zu's block %zu is %u, the pool has %zu blocks", s,
                      b, q.blocks[b], kc.num_blocks);
        }
      }
    }
  }
  for (const Node& n : nodes_) {
    if (n.dead) continue;
    if (n.op == Op::kEmbedding) {
      if (!step.token_ids) return fail(Status::kNullPointer, "graph: token_ids is null");
      for (size_t t = 0; t < tokens; ++t) {
        if (step.token_ids[t] < 0 || static_cast<size_t>(step.token_ids[t]) >= n.vocab) {
          return fail(Status::kInvalidArgument, "graph: token %zu is %d, outside the vocabulary of %zu", t,
                      step.token_ids[t], n.vocab);
        }
      }
    }
    if (n.op == Op::kRope) {
      for (size_t s = 0; s < step.num_seqs; ++s) {
        if (step.seqs[s].pos + step.seqs[s].tokens > n.rope->max_positions()) {
          return fail(Status::kInvalidArgument, "graph: sequence %zu reaches position %zu, RoPE table has %zu", s,
                      step.seqs[s].pos + step.seqs[s].tokens - 1, n.rope->max_positions());
        }
      }
    }
  }
  return Status::kOk;
}

inline Status Graph::run(const Step& step, Executor* executor) {
  const Status st = check_step(step);
  if (st != Status::kOk) return st;
  step_seqs_ = step.num_seqs;
  step_tokens_ = 0;
  for (size_t s = 0; s < step.num_seqs; ++s) {
    for (size_t i = 0; i < step.seqs[s].tokens; ++i) {
      positions_[step_tokens_ + i] = static_cast<int32_t>(step.seqs[s].pos + i);
    }
    step_tokens_ += step.seqs[s].tokens;
  }
  for (Node& n : nodes_) {
    if (n.dead) continue;
    const Status s = run_node(n, step, executor);
    if (s != Status::kOk) return s;
  }
  return Status::kOk;
}

inline Status Graph::run_node(Node& n, const Step& step, Executor* ex) {
  const size_t rows = n.a != kNoTensor ? rows_at(tensors_[n.a].rows) : step_tokens_;
  switch (n.op) {
    case Op::kInput: return Status::kOk;
    case Op::kEmbedding: {
      const MatrixView<float> y = view(n.out);
      for (size_t t = 0; t < y.rows; ++t) {
        std::memcpy(y.data + t * y.ld, n.table + static_cast<size_t>(step.token_ids[t]) * y.cols,
                    y.cols * sizeof(float));
      }
      return Status::kOk;
    }
    case Op::kLastTokens: {
      const MatrixView<float> x = view(n.a), y = view(n.out);
      size_t end = 0;
      for (size_t s = 0; s < step.num_seqs; ++s) {
        end += step.seqs[s].tokens;
        std::memcpy(y.data + s * y.ld, x.data + (end - 1) * x.ld, x.cols * sizeof(float));
      }
      return Status::kOk;
    }
    case Op::kLinear: {
      GemmOptions go;
      go.executor = ex;
      const PackedWeights& w = packed_[n.packed];
      for (size_t s = 0; s < n.fused.size(); ++s) {
        const Segment& seg = n.segs[s];
        Epilogue& e = n.fused[s].epilogue;
        e = Epilogue();
        e.bias = seg.bias == kNone ? nullptr : biases_[seg.bias].data();
        e.activation = seg.activation;
        if (n.residual != kNoTensor) e.with_residual(data(n.residual), tensors_[n.residual].cols);
        n.fused[s].c = view(seg.out);
      }
      if (n.fused.size() == 1) return gemm(view(n.a), w, n.fused[0].c, n.fused[0].epilogue, go);
      return gemm_fused(view(n.a), w, n.fused.data(), n.fused.size(), go);
    }
    case Op::kRmsNorm: {
      RmsNormOptions o;
      o.eps = n.eps;
      o.executor = ex;
      return tilekit::rms_norm(rows_of(MatrixView<const float>(view(n.a))), biases_[n.param].data(),
                               rows_of(view(n.out)), o);
    }
    case Op::kAddRmsNorm: {
      RmsNormOptions o;
      o.eps = n.eps;
      o.executor = ex;
      MatrixView<float> sum = view(n.out2);
      if (!same_storage(n.out2, n.b)) {
        const MatrixView<float> r = view(n.b);
        for (size_t t = 0; t < rows; ++t) std::memcpy(sum.data + t * sum.ld, r.data + t * r.ld, r.cols * sizeof(float));
      }
      return tilekit::add_rms_norm(rows_of(MatrixView<const float>(view(n.a))), rows_of(sum), biases_[n.param].data(),
                                   rows_of(view(n.out)), o);
    }
    case Op::kAdd: {
      // out = a + b as an epilogue pass over out (in place over a or b when it
      // dies here; otherwise a is copied there first).
      const bool over_b = same_storage(n.out, n.b) && !same_storage(n.out, n.a);
      const TensorId base = over_b ? n.b : n.a, other = over_b ? n.a : n.b;
      MatrixView<float> y = view(n.out);
      if (!same_storage(n.out, base)) {
        const MatrixView<float> x = view(base);
        for (size_t t = 0; t < rows; ++t) std::memcpy(y.data + t * y.ld, x.data + t * x.ld, x.cols * sizeof(float));
      }
      return apply_epilogue(y, Epilogue().with_residual(data(other), tensors_[other].cols));
    }
    case Op::kRope: {
      const size_t d = n.rope->head_dim();
      const MatrixView<float> q = view(n.a), k = view(n.b);
      return tilekit::rope(heads_view(q.data, rows, q.cols / d, d, q.ld), heads_view(k.data, rows, k.cols / d, d, k.ld),
                           positions_.data(), *n.rope, ex);
    }
    case Op::kKvWrite: {
      KvCache& cache = *config_.kv_cache;
      const size_t d = cache.config().head_dim, dv = cache.config().v_head_dim ? cache.config().v_head_dim : d;
      const MatrixView<float> k = view(n.a), v = view(n.b);
      size_t row = 0;
      for (size_t s = 0; s < step.num_seqs; ++s) {
        const SequenceStep& q = step.seqs[s];
        const KvSequence seq{q.blocks, q.num_blocks, q.pos + q.tokens};
        const Status st = kv_cache_write(cache, n.param, seq, q.pos,
                                         heads_view<const float>(k.data + row * k.ld, q.tokens, k.cols / d, d, k.ld),
                                         heads_view<const float>(v.data + row * v.ld, q.tokens, v.cols / dv, dv, v.ld));
        if (st != Status::kOk) return st;
        row += q.tokens;
      }
      return Status::kOk;
    }
    case Op::kAttention: {
      const MatrixView<float> q = view(n.a), o = view(n.out);
      const size_t d = q.cols / n.heads;
      size_t row = 0;
      for (size_t s = 0; s < step.num_seqs; ++s) {
        const SequenceStep& sq = step.seqs[s];
        AttentionBatchItem& it = items_[s];
        it.q = heads_view<const float>(q.data + row * q.ld, sq.tokens, n.heads, d, q.ld);
        it.seq = KvSequence{sq.blocks, sq.num_blocks, sq.pos + sq.tokens};
        it.out = heads_view(o.data + row * o.ld, sq.tokens, n.heads, d, o.ld);
        it.lse = nullptr;
        row += sq.tokens;
      }
      AttentionParams p;
      p.mask.causal = true;
      p.scale = n.scale;
      p.executor = ex;
      return attention_batch(*config_.kv_cache, n.param, items_.data(), step.num_seqs, p);
    }
  }
  return Status::kOk;
}

inline MatrixView<const float> Graph::output(TensorId t) const {
  if (!built_ || t >= tensors_.size()) return {};
  return MatrixView<const float>{data(t), rows_at(tensors_[t].rows), tensors_[t].cols, tensors_[t].cols};
}

}  // namespace tilekit

#endif  // TILEKIT_GRAPH_GRAPH_H_

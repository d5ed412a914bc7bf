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
//   g.run(step, &pool, &prof); // the same, its time per kind of node added to prof
//
// build():
//  - epilogue folding: add(linear(x), r) becomes one GEMM storing x·W + r,
//    written over r when nothing reads r later, so a residual stream is one
//    buffer for the whole model;
//  - horizontal fusion: linears that read the same tensor (Q, K, V) become
//    one gemm_fused, each segment with its own bias and activation;
//  - packing: each linear's weights once, fp32, bf16, or quantized to int8 or
//    int4 (per graph or per node; GraphConfig::weight_group K values per scale);
//  - planning: every tensor is alive from its producing node to its last
//    reader, an output may take the buffer of an input its node reads last
//    where the kernel allows in place, and the buffers share one arena,
//    largest first, each at the lowest offset free of the buffers alive at the
//    same time (XNNPACK's memory planner, ggml-alloc's reuse).
//
// run(): one Step holds the token ids and, per sequence, its KV block table,
// its position and how many of the step's tokens are its (contiguous, in
// order). Prefill chunks, single-token decode and several sequences of
// different lengths in one decode step all use the same graph. The executor
// is handed to every kernel; every kernel gives the same bits for any thread
// count, so the graph does too. A node adds no arithmetic of its own: the
// embedding lookup and taking the last row of each sequence are copies. A
// StepProfile handed to run() gets the step's wall time per kind of node
// (GEMMs, attention, norms, RoPE, the rest); without one no clock is read.
//
// Target-independent, header-only: it calls the entry points of tilekit.h.
// This header is the API. The definitions follow it, one job per header,
// included at its end: node.h (the node list a description builds),
// describe.h (the calls that build it), passes.h (folding and fusion),
// lifetimes.h (each tensor's buffer and when it is alive), arena.h (placing
// the buffers), build.h and run.h (step checks and the interpreter).
#ifndef TILEKIT_GRAPH_GRAPH_H_
#define TILEKIT_GRAPH_GRAPH_H_

#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

// The public API headers of the modules below (never an -impl.h or -inl.h):
// the graph calls entry points only.
#include "tilekit/attention/attention.h"
#include "tilekit/attention/kv_cache.h"
#include "tilekit/base/aligned_buffer.h"
#include "tilekit/base/matrix.h"
#include "tilekit/base/size_math.h"
#include "tilekit/base/status.h"
#include "tilekit/epilogue/epilogue.h"
#include "tilekit/gemm/gemm.h"
#include "tilekit/gemm/packed_weights.h"
#include "tilekit/ops/elementwise.h"
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
// are its own (the next `tokens` of Step::token_ids). `generations`, optional,
// one per table entry, as KvSequence::generations (KvSequenceState::step gives
// both): a block released and taken again since is then refused.
struct SequenceStep {
  const uint32_t* blocks = nullptr;
  size_t num_blocks = 0;
  size_t pos = 0;
  size_t tokens = 0;
  const uint32_t* generations = nullptr;
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
  // Quantized linears (kInt8, kInt4, by default or by node): K values per
  // scale, one group size for the whole graph, as a checkpoint format has one
  // (GGUF's Q8_0 / Q4_0: 32). 32, 64 or 128; or 0, one scale per output column
  // over all of K (kInt8 only). Checked at build even when no linear is
  // quantized.
  size_t weight_group = 32;
  KvCache* kv_cache = nullptr;            // read and written by kv_write and attention nodes
  Executor* pack_executor = nullptr;      // threads for packing at build
};

// Per-node choice of a linear's weight type. kInt8 / kInt4 quantize the
// node's fp32 (or bf16) weights at build, by pack_weights' rule (symmetric,
// round to nearest, one fp32 scale per output column and weight_group K
// values; gemm/packed_weights.h).
enum class NodeWeights : uint8_t { kGraphDefault, kF32, kBf16, kInt8, kInt4 };

struct LinearOptions {
  const float* bias = nullptr;  // [N], copied
  Activation activation = Activation::kNone;
  NodeWeights weights = NodeWeights::kGraphDefault;
};

// How an rms_norm node normalises: over each of `heads` equal column groups
// of its input (the QK-norm of Qwen3 and Gemma 3: every head of head_dim
// columns by one weight of head_dim), and by (1 + w) (Gemma's weights).
struct NormOptions {
  size_t heads = 1;
  bool weight_offset = false;
};

// An attention node's structural mask and scale (attention/attention.h):
// scale 0 = 1/sqrt(head_dim); window 0 = none; softcap 0 = none.
struct AttentionNodeOptions {
  float scale = 0.f;
  size_t window = 0;
  float softcap = 0.f;
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

// The kinds of node a step's time is split into (StepProfile): every GEMM
// (gemm and gemm_fused: the GEMVs of a decode step), attention, the norms
// (rms_norm, add_rms_norm), RoPE, and the rest (embedding lookup, KV cache
// writes, adds not folded into a GEMM, mul, scale, softcap, copies of each
// sequence's last row, and input nodes, which run nothing).
enum class NodeKind : uint8_t { kLinear, kAttention, kNorm, kRope, kOther };
constexpr size_t kNodeKinds = 5;
inline const char* node_kind_name(NodeKind k) {
  static const char* const kNames[kNodeKinds] = {"linear", "attention", "norm", "rope", "other"};
  return kNames[static_cast<size_t>(k)];
}

// Where the time of steps went, by kind of node: Graph::run(step, executor,
// &profile) adds each node's wall time (steady_clock around its kernel call,
// the executor's threads included) to its kind, and the whole run's, from
// the step's checks to the last node, to step_ns. It sums over runs until the
// caller clears it (`profile = StepProfile()`), so a profile of n steps
// divides by `steps`. Only runs that return kOk are added. step_ns minus
// nodes_ns() is what is outside every node: the step's checks and the
// interpreter (and the clock reads themselves, two per node).
//
// Off unless passed: run() without a profile reads no clock (the profiled
// loop is a separate instantiation). The caller owns the profile: no global
// state, nothing allocated; one profile per thread that runs a graph.
struct StepProfile {
  uint64_t ns[kNodeKinds] = {};     // wall time in nodes of each kind (index: NodeKind)
  uint64_t nodes[kNodeKinds] = {};  // nodes of each kind run
  uint64_t step_ns = 0;             // wall time of the runs, nodes and all
  uint64_t steps = 0;               // runs added

  uint64_t kind_ns(NodeKind k) const { return ns[static_cast<size_t>(k)]; }
  uint64_t kind_nodes(NodeKind k) const { return nodes[static_cast<size_t>(k)]; }
  uint64_t nodes_ns() const {
    uint64_t sum = 0;
    for (uint64_t t : ns) sum += t;
    return sum;
  }
  StepProfile& operator+=(const StepProfile& o) {
    for (size_t k = 0; k < kNodeKinds; ++k) ns[k] += o.ns[k], nodes[k] += o.nodes[k];
    step_ns += o.step_ns;
    steps += o.steps;
    return *this;
  }
};

namespace graph_detail {  // node.h
enum class Op : uint8_t;
struct Node;
struct TensorInfo;
}  // namespace graph_detail

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
  // silu(x · Wg) · (x · Wu), one GEMM over weights packed as a gate/up pair
  // (no bias).
  TensorId gate_up_swiglu(TensorId x, const WeightSource& gate, const WeightSource& up,
                          NodeWeights weights = NodeWeights::kGraphDefault);
  // gelu_tanh(x · Wg) · (x · Wu) (Gemma's MLP), the same pair.
  TensorId gate_up_geglu(TensorId x, const WeightSource& gate, const WeightSource& up,
                         NodeWeights weights = NodeWeights::kGraphDefault);
  // `weight` ([x's columns], or [columns / heads] with options.heads) is
  // copied, as add_rms_norm's.
  TensorId rms_norm(TensorId x, const float* weight, float eps, const NormOptions& options = {});
  // h = x + residual, *residual ← h (a new tensor id for the sum), returns rmsnorm(h).
  TensorId add_rms_norm(TensorId x, TensorId* residual, const float* weight, float eps,
                        const NormOptions& options = {});
  // a + b, a · b (ops/elementwise.h); an add of a linear's output is folded
  // into its GEMM (build()), any other runs as a row op.
  TensorId add(TensorId a, TensorId b);
  TensorId mul(TensorId a, TensorId b);
  // s · x (s finite), and c · tanh(x / c) (c finite, > 0: Gemma 2's final logits).
  TensorId scale(TensorId x, float s);
  TensorId softcap(TensorId x, float cap);
  // Rotates q's and k's heads in place at the step's positions (q and k two
  // tensors: the kernel refuses overlapping heads). The table must outlive
  // the graph.
  void rope(TensorId q, TensorId k, const RopeTable* table);
  // Writes k and v ([rows][kv_heads · head_dim], [rows][kv_heads · v_head_dim])
  // into the cache's `layer` at the step's positions. The cache is the
  // config's: build() checks the layer and the columns against it.
  void kv_write(TensorId k, TensorId v, size_t layer);
  // Causal attention of q ([rows][heads · head_dim]) over the cache's `layer`
  // (heads a multiple of its KV heads, its v_head_dim = head_dim; build()
  // checks). scale: finite, >= 0 (0: 1/sqrt(head_dim)).
  TensorId attention(TensorId q, size_t heads, size_t layer, float scale = 0.f);
  // The same with a sliding window and a logit softcap (softcap finite, >= 0).
  TensorId attention(TensorId q, size_t heads, size_t layer, const AttentionNodeOptions& options);
  // The last row of each sequence: [sequences][cols].
  TensorId last_tokens(TensorId x);
  void mark_output(TensorId t);

  // --- build and run -------------------------------------------------------
  Status build(const GraphConfig& config);
  // profile: where the step's time went, added to it (StepProfile); null: not timed.
  Status run(const Step& step, Executor* executor = nullptr, StepProfile* profile = nullptr);

  // Where an input tensor's rows go (max_tokens rows of cols floats); valid after build.
  float* input_data(TensorId t) const;
  // The rows of the last run (tokens or sequences).
  MatrixView<const float> output(TensorId t) const;
  size_t cols(TensorId t) const;
  const GraphStats& stats() const { return stats_; }
  bool built() const { return built_; }

 private:
  using Op = graph_detail::Op;
  using Node = graph_detail::Node;
  using TensorInfo = graph_detail::TensorInfo;

  // describe.h
  TensorId new_tensor(size_t cols, Rows rows);
  bool valid(TensorId t, const char* op);
  // Keeps the first description error (returned by build()); returns false.
  __attribute__((format(printf, 3, 4))) bool record(Status code, const char* format, ...);
  TensorId add_node(Node node);
  TensorId elementwise(Op op, TensorId a, TensorId b, float value, const char* name);
  TensorId gate_up(TensorId x, const WeightSource& gate, const WeightSource& up, Activation act,
                   NodeWeights weights);
  // build.h
  Status check_cache(const GraphConfig& config) const;
  Status check_weights(const GraphConfig& config) const;
  Status check_sizes(const GraphConfig& config) const;
  Status pack(const GraphConfig& config);
  // run.h
  Status check_step(const Step& step) const;
  template <bool kProfiled>
  Status run_step(const Step& step, Executor* ex, StepProfile* profile);
  Status run_node(Node& n, const Step& step, Executor* ex);
  size_t rows_at(Rows r) const { return r == Rows::kTokens ? step_tokens_ : step_seqs_; }
  float* data(TensorId t) const;
  MatrixView<float> view(TensorId t) const;
  bool same_buffer(TensorId x, TensorId y) const { return buffer_of_[x] == buffer_of_[y]; }

  std::vector<TensorInfo> tensors_;
  std::vector<Node> nodes_;
  std::vector<PackedWeights> packed_;
  std::vector<size_t> buffer_of_;  // per tensor: its buffer (tensors in place share one)
  std::vector<size_t> offsets_;    // per buffer: its offset in the arena
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

}  // namespace tilekit

#include "tilekit/graph/node.h"
#include "tilekit/graph/describe.h"
#include "tilekit/graph/passes.h"
#include "tilekit/graph/lifetimes.h"
#include "tilekit/graph/build.h"
#include "tilekit/graph/run.h"

#endif  // TILEKIT_GRAPH_GRAPH_H_

// The description calls of Graph (a part of graph.h): each checks its
// arguments, keeps the first error for build() to return, and appends a node
// (node.h). A node the kernel would refuse on every run (a negative eps, rope
// of one tensor as q and k) is refused here, where the message can say why.
#ifndef TILEKIT_GRAPH_DESCRIBE_H_
#define TILEKIT_GRAPH_DESCRIBE_H_

#ifndef TILEKIT_GRAPH_GRAPH_H_
#error "tilekit/graph/describe.h is a part of tilekit/graph/graph.h: include that"
#endif

#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <utility>

namespace tilekit {

inline TensorId Graph::new_tensor(size_t cols, Rows rows) {
  TensorInfo t;
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
  n.embedding.table = table;
  n.embedding.vocab = vocab;
  n.out = new_tensor(dim, Rows::kTokens);
  return add_node(std::move(n));
}

inline TensorId Graph::linear(TensorId x, const WeightSource& w, const LinearOptions& options) {
  if (!valid(x, "linear")) return kNoTensor;
  TILEKIT_GRAPH_REQUIRE(w.data && w.k == tensors_[x].cols && w.n,
                        "graph: linear weights are %zu x %zu for an input of %zu columns", w.k, w.n,
                        tensors_[x].cols);
  TILEKIT_GRAPH_REQUIRE(!is_gated(options.activation), "graph: %s is gate_up_%s's",
                        activation_name(options.activation), activation_name(options.activation));
  Node n{Op::kLinear};
  n.a = x;
  n.linear.weights = options.weights;
  graph_detail::Segment s;
  s.out = new_tensor(w.n, tensors_[x].rows);
  s.w = w;
  if (options.bias) s.bias.assign(options.bias, options.bias + w.n);
  s.activation = options.activation;
  n.out = s.out;
  n.linear.segs.push_back(std::move(s));
  return add_node(std::move(n));
}

inline TensorId Graph::gate_up_swiglu(TensorId x, const WeightSource& gate, const WeightSource& up,
                                      NodeWeights weights) {
  return gate_up(x, gate, up, Activation::kSwiGlu, weights);
}

inline TensorId Graph::gate_up_geglu(TensorId x, const WeightSource& gate, const WeightSource& up,
                                     NodeWeights weights) {
  return gate_up(x, gate, up, Activation::kGeGlu, weights);
}

inline TensorId Graph::gate_up(TensorId x, const WeightSource& gate, const WeightSource& up, Activation act,
                               NodeWeights weights) {
  if (!valid(x, act == Activation::kGeGlu ? "gate_up_geglu" : "gate_up_swiglu")) return kNoTensor;
  TILEKIT_GRAPH_REQUIRE(gate.data && up.data && gate.k == tensors_[x].cols && up.k == gate.k && up.n == gate.n &&
                            gate.n,
                        "graph: gate/up weights %zu x %zu and %zu x %zu for an input of %zu columns", gate.k,
                        gate.n, up.k, up.n, tensors_[x].cols);
  Node n{Op::kLinear};
  n.a = x;
  n.linear.gate_up = true;
  n.linear.weights = weights;
  graph_detail::Segment g;
  g.out = new_tensor(gate.n, tensors_[x].rows);
  g.w = gate;
  g.activation = act;
  graph_detail::Segment u = g;
  u.w = up;
  n.linear.segs = {g, u};
  n.out = g.out;
  return add_node(std::move(n));
}

inline TensorId Graph::rms_norm(TensorId x, const float* weight, float eps, const NormOptions& options) {
  if (!valid(x, "rms_norm")) return kNoTensor;
  // The kernel refuses such an eps on every run: refuse the node instead.
  TILEKIT_GRAPH_REQUIRE(weight && eps >= 0.f, "graph: rms_norm needs a weight and eps >= 0 (eps %g)", eps);
  TILEKIT_GRAPH_REQUIRE(options.heads && tensors_[x].cols % options.heads == 0,
                        "graph: rms_norm of %zu columns in %zu heads", tensors_[x].cols, options.heads);
  Node n{Op::kRmsNorm};
  n.a = x;
  n.norm.weight.assign(weight, weight + tensors_[x].cols / options.heads);
  n.norm.eps = eps;
  n.norm.heads = options.heads;
  n.norm.weight_offset = options.weight_offset;
  n.out = new_tensor(tensors_[x].cols, tensors_[x].rows);
  return add_node(std::move(n));
}

inline TensorId Graph::add_rms_norm(TensorId x, TensorId* residual, const float* weight, float eps,
                                    const NormOptions& options) {
  if (!valid(x, "add_rms_norm") || !residual || !valid(*residual, "add_rms_norm")) return kNoTensor;
  TILEKIT_GRAPH_REQUIRE(weight && eps >= 0.f && tensors_[x].cols == tensors_[*residual].cols &&
                            tensors_[x].rows == tensors_[*residual].rows,
                        "graph: add_rms_norm of %zu and %zu columns (eps %g, weight %s)", tensors_[x].cols,
                        tensors_[*residual].cols, eps, weight ? "given" : "null");
  TILEKIT_GRAPH_REQUIRE(options.heads && tensors_[x].cols % options.heads == 0,
                        "graph: add_rms_norm of %zu columns in %zu heads", tensors_[x].cols, options.heads);
  Node n{Op::kAddRmsNorm};
  n.a = x;
  n.b = *residual;
  n.norm.weight.assign(weight, weight + tensors_[x].cols / options.heads);
  n.norm.eps = eps;
  n.norm.heads = options.heads;
  n.norm.weight_offset = options.weight_offset;
  n.out2 = new_tensor(tensors_[x].cols, tensors_[x].rows);  // the sum, written over the residual
  n.out = new_tensor(tensors_[x].cols, tensors_[x].rows);
  *residual = n.out2;
  return add_node(std::move(n));
}

inline TensorId Graph::elementwise(Op op, TensorId a, TensorId b, float value, const char* name) {
  if (!valid(a, name) || (b != kNoTensor && !valid(b, name))) return kNoTensor;
  TILEKIT_GRAPH_REQUIRE(b == kNoTensor || (tensors_[a].cols == tensors_[b].cols && tensors_[a].rows == tensors_[b].rows),
                        "graph: %s of %zu and %zu columns", name, tensors_[a].cols, tensors_[b].cols);
  // The kernel refuses such a value on every run: refuse the node instead.
  if (!std::isfinite(value) || (op == Op::kSoftcap && !(value > 0.f))) {
    record(Status::kInvalidArgument, "graph: %s of %g (finite%s)", name, value, op == Op::kSoftcap ? ", > 0" : "");
    return kNoTensor;
  }
  Node n{op};
  n.a = a;
  n.b = b;
  n.scalar.value = value;
  n.out = new_tensor(tensors_[a].cols, tensors_[a].rows);
  return add_node(std::move(n));
}

inline TensorId Graph::add(TensorId a, TensorId b) {
  return valid(b, "add") ? elementwise(Op::kAdd, a, b, 0.f, "add") : kNoTensor;
}
inline TensorId Graph::mul(TensorId a, TensorId b) {
  return valid(b, "mul") ? elementwise(Op::kMul, a, b, 0.f, "mul") : kNoTensor;
}
inline TensorId Graph::scale(TensorId x, float s) { return elementwise(Op::kScale, x, kNoTensor, s, "scale"); }
inline TensorId Graph::softcap(TensorId x, float cap) { return elementwise(Op::kSoftcap, x, kNoTensor, cap, "softcap"); }

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
  n.rope.table = table;
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
  n.kv_write.layer = layer;
  nodes_.push_back(std::move(n));
}

inline TensorId Graph::attention(TensorId q, size_t heads, size_t layer, float scale) {
  AttentionNodeOptions o;
  o.scale = scale;
  return attention(q, heads, layer, o);
}

inline TensorId Graph::attention(TensorId q, size_t heads, size_t layer, const AttentionNodeOptions& options) {
  const float scale = options.scale;
  if (!valid(q, "attention")) return kNoTensor;
  TILEKIT_GRAPH_REQUIRE(heads && tensors_[q].cols % heads == 0 && tensors_[q].rows == Rows::kTokens,
                        "graph: attention of %zu columns in %zu heads", tensors_[q].cols, heads);
  // The kernel refuses such a scale on every run: refuse the node instead.
  if (!(scale >= 0.f) || !std::isfinite(scale)) {
    record(Status::kInvalidArgument, "graph: attention scale %g must be finite and >= 0 (0: 1/sqrt(head_dim))", scale);
    return kNoTensor;
  }
  if (!(options.softcap >= 0.f) || !std::isfinite(options.softcap)) {
    record(Status::kInvalidArgument, "graph: attention softcap %g must be finite and >= 0 (0: none)", options.softcap);
    return kNoTensor;
  }
  Node n{Op::kAttention};
  n.a = q;
  n.attention.layer = layer;
  n.attention.heads = heads;
  n.attention.scale = scale;
  n.attention.window = options.window;
  n.attention.softcap = options.softcap;
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

inline size_t Graph::cols(TensorId t) const { return t < tensors_.size() ? tensors_[t].cols : 0; }

}  // namespace tilekit

#endif  // TILEKIT_GRAPH_DESCRIBE_H_

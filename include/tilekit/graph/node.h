// The node list a description builds (a part of graph.h). A node is one
// kernel call, or a copy; it reads tensors a and b and writes out and out2
// (the operands passes and planning see of every node), and keeps what only
// its op needs in that op's own struct, unused by every other op.
//
//   op            reads                  writes                      its struct
//   input         -                      out (by the caller)         -
//   embedding     the step's token ids   out                         embedding
//   linear        a, linear.residual     every linear.segs[i].out    linear
//   rms_norm      a                      out                         norm
//   add_rms_norm  a, b (the residual)    out2 = a + b, out           norm
//   add, mul      a, b                   out                         -
//   scale         a                      out                         scalar
//   softcap       a                      out                         scalar
//   rope          a (q), b (k)           a and b, in place           rope
//   kv_write      a (k), b (v)           the cache                   kv_write
//   attention     a (q), the cache       out                         attention
//   last_tokens   a                      out                         -
// (A linear's out is also its first segment's out.)
#ifndef TILEKIT_GRAPH_NODE_H_
#define TILEKIT_GRAPH_NODE_H_

#ifndef TILEKIT_GRAPH_GRAPH_H_
#error "tilekit/graph/node.h is a part of tilekit/graph/graph.h: include that"
#endif

#include <cstddef>
#include <cstdint>
#include <vector>

namespace tilekit {
namespace graph_detail {

enum class Op : uint8_t {
  kInput, kEmbedding, kLinear, kRmsNorm, kAddRmsNorm, kAdd, kRope, kKvWrite, kAttention, kLastTokens,
  kMul, kScale, kSoftcap
};

// The StepProfile kind a node's time is added to.
inline NodeKind kind_of(Op op) {
  switch (op) {
    case Op::kLinear: return NodeKind::kLinear;
    case Op::kAttention: return NodeKind::kAttention;
    case Op::kRmsNorm:
    case Op::kAddRmsNorm: return NodeKind::kNorm;
    case Op::kRope: return NodeKind::kRope;
    case Op::kInput:
    case Op::kEmbedding:
    case Op::kAdd:
    case Op::kMul:
    case Op::kScale:
    case Op::kSoftcap:
    case Op::kKvWrite:
    case Op::kLastTokens: break;
  }
  return NodeKind::kOther;
}

// A tensor as described; its rows are counted per step.
struct TensorInfo {
  size_t cols = 0;
  Rows rows = Rows::kTokens;
  bool output = false;  // read by the caller after a run: alive to the end
};

struct EmbeddingArgs {
  const float* table = nullptr;  // [vocab][out's columns], the caller's
  size_t vocab = 0;
};

// One output of a linear's GEMM: its weights and epilogue.
struct Segment {
  TensorId out = kNoTensor;
  WeightSource w;
  std::vector<float> bias;  // a copy; empty: none
  Activation activation = Activation::kNone;
};

// The weight type a linear packs: its own choice, or the graph's.
inline WeightType weight_type(NodeWeights w, WeightType graph_default) {
  switch (w) {
    case NodeWeights::kF32: return WeightType::kF32;
    case NodeWeights::kBf16: return WeightType::kBf16;
    case NodeWeights::kInt8: return WeightType::kInt8;
    case NodeWeights::kInt4: return WeightType::kInt4;
    case NodeWeights::kGraphDefault: break;
  }
  return graph_default;
}

struct LinearArgs {
  // One segment; several after horizontal fusion; or gate and up (gate_up),
  // packed as a pair into one SwiGLU or GeGLU output (both segments' out).
  std::vector<Segment> segs;
  bool gate_up = false;
  TensorId residual = kNoTensor;  // added in the GEMM's store: a folded add
  NodeWeights weights = NodeWeights::kGraphDefault;  // as described
  WeightType type = WeightType::kF32;                // as packed: weights, or the config's (weight_type)
  size_t packed = 0;                                 // index into the graph's packed weights
  std::vector<FusedOutput<float>> fused;             // filled per run, allocated at build
};

struct NormArgs {
  std::vector<float> weight;  // a copy
  float eps = 0.f;
  size_t heads = 1;  // column groups normalised apart (QK-norm), each by the weight
  bool weight_offset = false;
};

struct ScalarArgs {
  float value = 0.f;  // scale: s; softcap: c
};

struct RopeArgs {
  const RopeTable* table = nullptr;  // the caller's
};

struct KvWriteArgs {
  size_t layer = 0;  // of the config's cache
};

struct AttentionArgs {
  size_t layer = 0;  // of the config's cache
  size_t heads = 0;
  float scale = 0.f;
  size_t window = 0;
  float softcap = 0.f;
};

struct Node {
  explicit Node(Op o) : op(o) {}
  Op op;
  bool dead = false;  // folded into another node or fused with one: not run
  TensorId a = kNoTensor, b = kNoTensor, out = kNoTensor, out2 = kNoTensor;
  EmbeddingArgs embedding;
  LinearArgs linear;
  NormArgs norm;  // rms_norm and add_rms_norm
  ScalarArgs scalar;  // scale and softcap
  RopeArgs rope;
  KvWriteArgs kv_write;
  AttentionArgs attention;
};

}  // namespace graph_detail
}  // namespace tilekit

#endif  // TILEKIT_GRAPH_NODE_H_

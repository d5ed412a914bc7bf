// The node list a description builds (a part of graph.h).
#ifndef TILEKIT_GRAPH_NODE_H_
#define TILEKIT_GRAPH_NODE_H_

#ifndef TILEKIT_GRAPH_GRAPH_H_
#error "tilekit/graph/node.h is a part of tilekit/graph/graph.h: include that"
#endif

#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace tilekit {

namespace graph_detail {

enum class Op : uint8_t { kInput, kEmbedding, kLinear, kRmsNorm, kAddRmsNorm, kAdd, kRope, kKvWrite, kAttention, kLastTokens };

constexpr size_t kNone = std::numeric_limits<size_t>::max();

struct TensorInfo {
  size_t cols = 0;
  Rows rows = Rows::kTokens;
  bool output = false;
  int def = -1, last = -1;  // producing node and last reader (indices into nodes_)
  size_t storage = 0;       // index into storage_ (tensors sharing a buffer in place)
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

}  // namespace graph_detail

}  // namespace tilekit

#endif  // TILEKIT_GRAPH_NODE_H_

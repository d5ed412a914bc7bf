// The rewrites build() makes to the node list (a part of graph.h).
#ifndef TILEKIT_GRAPH_PASSES_H_
#define TILEKIT_GRAPH_PASSES_H_

#ifndef TILEKIT_GRAPH_GRAPH_H_
#error "tilekit/graph/passes.h is a part of tilekit/graph/graph.h: include that"
#endif

#include <vector>

namespace tilekit {

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

}  // namespace tilekit

#endif  // TILEKIT_GRAPH_PASSES_H_

// The rewrites build() makes to the node list before packing (a part of
// graph.h). Each removes a pass over memory and changes no value:
//  - a residual add folded into the GEMM before it: add(linear(x), r) becomes
//    one GEMM storing x·W + r (Epilogue::residual); planning then lets the sum
//    take r's buffer when nothing reads r later (gemm allows that in-place
//    residual add), so a residual stream is one buffer for the whole model;
//  - horizontal fusion: linears that read one tensor (Q, K, V) become one
//    node whose weights are packed as segments of one PackedWeights, run as
//    one gemm_fused (one pass over the input), each segment with its own bias
//    and activation.
// rope is the only node that changes a tensor in place, so it is the only node
// either pass must not move a read across.
#ifndef TILEKIT_GRAPH_PASSES_H_
#define TILEKIT_GRAPH_PASSES_H_

#include <cstddef>
#include <utility>
#include <vector>

#include "tilekit/graph/node.h"

namespace tilekit {
namespace graph_detail {

// add(linear(x), r) → one GEMM with r as its epilogue's residual, when the
// linear's output is read by the add alone and is no graph output. Returns
// how many adds were folded.
inline size_t fold_residual_adds(std::vector<Node>& nodes, const std::vector<TensorInfo>& tensors) {
  size_t folded = 0;
  std::vector<int> readers(tensors.size(), 0);
  for (const Node& n : nodes) {
    for (TensorId t : {n.a, n.b}) if (t != kNoTensor) ++readers[t];
  }
  std::vector<int> producer(tensors.size(), -1);
  for (size_t i = 0; i < nodes.size(); ++i) {
    Node& n = nodes[i];
    if (n.op == Op::kLinear) {
      for (const Segment& s : n.linear.segs) producer[s.out] = static_cast<int>(i);
      continue;
    }
    if (n.op != Op::kAdd) continue;
    for (int side = 0; side < 2; ++side) {
      const TensorId y = side ? n.b : n.a, r = side ? n.a : n.b;
      const int p = producer[y];
      if (p < 0 || readers[y] != 1 || tensors[y].output) continue;
      Node& lin = nodes[p];
      if (lin.linear.segs.size() != (lin.linear.gate_up ? 2u : 1u) || lin.linear.residual != kNoTensor) continue;
      // The GEMM moves to the add's place (below), so it reads x there: a
      // rope in between would rotate its input first. A rope of r in between
      // also keeps the add (the add read the rotated r as the GEMM would).
      bool changed = false;
      for (size_t j = p + 1; j < i; ++j) {
        const Node& m = nodes[j];
        if (m.op == Op::kRope && (m.a == r || m.b == r || m.a == lin.a || m.b == lin.a)) changed = true;
      }
      if (changed) continue;
      lin.linear.residual = r;
      lin.linear.segs[0].out = n.out;
      lin.out = n.out;
      if (lin.linear.gate_up) lin.linear.segs[1].out = n.out;
      // At the add's place, r holds what the add read, even when a node
      // after the linear writes r (as each layer writes a residual stream).
      Node moved = std::move(lin);
      lin = Node(Op::kAdd);
      lin.dead = true;
      n = std::move(moved);
      producer[n.out] = static_cast<int>(i);
      ++folded;
      break;
    }
  }
  return folded;
}

// Linears (no residual, not gate/up) reading the same tensor, of the same
// weight type, become the first one's node, one segment each. Returns how many
// linears joined another.
inline size_t fuse_linears_sharing_input(std::vector<Node>& nodes) {
  size_t fused = 0;
  for (size_t i = 0; i < nodes.size(); ++i) {
    Node& first = nodes[i];
    const LinearArgs& fl = first.linear;
    if (first.dead || first.op != Op::kLinear || fl.gate_up || fl.residual != kNoTensor) continue;
    for (size_t j = i + 1; j < nodes.size(); ++j) {
      Node& n = nodes[j];
      if (n.dead) continue;
      // A node that changes the input in place ends the run of readers.
      if (n.op == Op::kRope && (n.a == first.a || n.b == first.a)) break;
      const LinearArgs& l = n.linear;
      if (n.op != Op::kLinear || l.gate_up || l.residual != kNoTensor || n.a != first.a || l.type != fl.type) continue;
      first.linear.segs.push_back(std::move(n.linear.segs[0]));
      n.dead = true;
      ++fused;
    }
  }
  return fused;
}

}  // namespace graph_detail
}  // namespace tilekit

#endif  // TILEKIT_GRAPH_PASSES_H_

// Which buffer each tensor lives in and at which nodes that buffer is in use
// (a part of graph.h), for arena.h to place. A tensor is alive from the node
// that writes it to its last reader; an input (the caller writes it before the
// run) from the first node, an output to the end. An output of a node may take
// the buffer of an input that node reads last, where the kernel allows in
// place: the residual of a GEMM, either side of an add or mul, the input of
// an rms_norm, a scale or a softcap, the residual of an add_rms_norm (for the
// sum).
#ifndef TILEKIT_GRAPH_LIFETIMES_H_
#define TILEKIT_GRAPH_LIFETIMES_H_

#include <algorithm>
#include <cstddef>
#include <vector>

#include "tilekit/graph/arena.h"
#include "tilekit/graph/node.h"

namespace tilekit {
namespace graph_detail {

struct BufferPlan {
  std::vector<size_t> buffer_of;    // per tensor: its buffer (tensors in place share one)
  std::vector<ArenaUsage> buffers;  // per buffer, at the most rows; 0 bytes: not placed (shared, or never written)
  size_t intermediate_bytes = 0;    // every written tensor in a buffer of its own
  size_t tensors = 0;               // written tensors
};

// Buffer i starts as tensor i's, its bytes those of max_tokens (or
// max_sequences) rows, rounded up to a cache line; lifetimes count nodes.
inline BufferPlan plan_buffers(const std::vector<Node>& nodes, const std::vector<TensorInfo>& tensors,
                               size_t max_tokens, size_t max_sequences) {
  const int end = static_cast<int>(nodes.size());
  std::vector<int> def(tensors.size(), -1), last(tensors.size(), -1);
  auto read = [&](TensorId t, int i) {
    if (t != kNoTensor) last[t] = std::max(last[t], i);
  };
  auto write = [&](TensorId t, int i) {
    if (t != kNoTensor && def[t] < 0) def[t] = i;
  };
  for (int i = 0; i < end; ++i) {
    const Node& n = nodes[i];
    if (n.dead) continue;
    read(n.a, i);
    read(n.b, i);
    read(n.linear.residual, i);
    write(n.out, i);
    write(n.out2, i);
    for (const Segment& s : n.linear.segs) write(s.out, i);
  }
  // Else a tensor that dies before the input node could share the input's
  // bytes and overwrite what the caller wrote.
  for (const Node& n : nodes) {
    if (n.op == Op::kInput) def[n.out] = 0;
  }
  for (size_t t = 0; t < tensors.size(); ++t) {
    if (def[t] < 0) def[t] = 0;  // never written (a dead node's): no bytes below
    if (last[t] < def[t]) last[t] = def[t];
    if (tensors[t].output) last[t] = end;
  }
  BufferPlan plan;
  plan.buffer_of.resize(tensors.size());
  plan.buffers.resize(tensors.size());
  const size_t max_rows[2] = {max_tokens, max_sequences};
  for (size_t t = 0; t < tensors.size(); ++t) {
    const size_t bytes = max_rows[tensors[t].rows == Rows::kSequences] * tensors[t].cols * sizeof(float);
    plan.buffer_of[t] = t;
    plan.buffers[t].bytes = (bytes + kCacheLine - 1) / kCacheLine * kCacheLine;
    plan.buffers[t].first = static_cast<size_t>(def[t]);
    plan.buffers[t].last = static_cast<size_t>(last[t]);
  }
  std::vector<char> written(tensors.size(), 0);
  for (const Node& n : nodes) {
    if (n.dead) continue;
    for (const Segment& s : n.linear.segs) written[s.out] = 1;
    if (n.out != kNoTensor) written[n.out] = 1;
    if (n.out2 != kNoTensor) written[n.out2] = 1;
  }
  for (size_t t = 0; t < tensors.size(); ++t) {
    if (!written[t]) continue;
    plan.intermediate_bytes += plan.buffers[t].bytes;
    ++plan.tensors;
  }
  auto same_buffer = [&](TensorId x, TensorId y) { return plan.buffer_of[x] == plan.buffer_of[y]; };
  auto share = [&](TensorId out, TensorId in, int i) {
    if (out == kNoTensor || in == kNoTensor) return false;
    ArenaUsage& bx = plan.buffers[plan.buffer_of[in]];
    if (tensors[in].output || bx.last != static_cast<size_t>(i) || tensors[out].cols != tensors[in].cols ||
        tensors[out].rows != tensors[in].rows) {
      return false;
    }
    plan.buffers[plan.buffer_of[out]].bytes = 0;
    plan.buffer_of[out] = plan.buffer_of[in];
    bx.last = std::max(bx.last, static_cast<size_t>(last[out]));
    return true;
  };
  for (int i = 0; i < end; ++i) {
    const Node& n = nodes[i];
    if (n.dead) continue;
    switch (n.op) {
      case Op::kLinear:
        // Not over the GEMM's own input (x + x·W): gemm refuses A overlapping C.
        if (n.linear.residual == kNoTensor || !same_buffer(n.linear.residual, n.a)) share(n.out, n.linear.residual, i);
        break;
      case Op::kAdd:
      case Op::kMul: share(n.out, n.a, i) || share(n.out, n.b, i); break;
      case Op::kScale:
      case Op::kSoftcap:
      case Op::kRmsNorm: share(n.out, n.a, i); break;
      case Op::kAddRmsNorm:
        // Not when x is the residual (add_rms_norm(x, &x)): the sum over it
        // would overlap x, which add_rms_norm refuses.
        if (!same_buffer(n.a, n.b)) share(n.out2, n.b, i);
        break;
      default: break;
    }
  }
  for (size_t t = 0; t < tensors.size(); ++t) {
    if (!written[t]) plan.buffers[t].bytes = 0;
  }
  return plan;
}

}  // namespace graph_detail
}  // namespace tilekit

#endif  // TILEKIT_GRAPH_LIFETIMES_H_

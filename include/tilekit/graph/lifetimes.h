// Each tensor's buffer and when it is alive (a part of graph.h).
#ifndef TILEKIT_GRAPH_LIFETIMES_H_
#define TILEKIT_GRAPH_LIFETIMES_H_

#ifndef TILEKIT_GRAPH_GRAPH_H_
#error "tilekit/graph/lifetimes.h is a part of tilekit/graph/graph.h: include that"
#endif

#include <algorithm>
#include <cstddef>
#include <vector>

#include "tilekit/graph/arena.h"

namespace tilekit {

namespace graph_detail {

// A buffer: one tensor's, or several sharing it in place.
struct Storage {
  size_t bytes = 0, offset = 0;
  int first = 0, last = 0;
};

}  // namespace graph_detail

// Lifetimes and in-place sharing, then placement (arena.h).
inline void Graph::plan() {
  const int end = static_cast<int>(nodes_.size());
  for (TensorInfo& t : tensors_) t.def = t.last = -1;
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
  for (TensorInfo& t : tensors_) {
    if (t.def < 0) t.def = 0;  // never produced (a dead node's): costs nothing below
    if (t.last < t.def) t.last = t.def;
    if (t.output) t.last = end;
  }
  storage_.clear();
  const size_t max_rows[2] = {config_.max_tokens, config_.max_sequences};
  for (size_t i = 0; i < tensors_.size(); ++i) {
    TensorInfo& t = tensors_[i];
    graph_detail::Storage s;
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
    TensorInfo &o = tensors_[out], &x = tensors_[in];
    graph_detail::Storage& sx = storage_[x.storage];
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

}  // namespace tilekit

#endif  // TILEKIT_GRAPH_LIFETIMES_H_

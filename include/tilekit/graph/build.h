// Graph::build (a part of graph.h): the config against the description (what
// every run would refuse is refused here), then the passes, packing, the
// buffer plan and the arena.
#ifndef TILEKIT_GRAPH_BUILD_H_
#define TILEKIT_GRAPH_BUILD_H_

#ifndef TILEKIT_GRAPH_GRAPH_H_
#error "tilekit/graph/build.h is a part of tilekit/graph/graph.h: include that"
#endif

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <utility>
#include <vector>

#include "tilekit/graph/arena.h"
#include "tilekit/graph/lifetimes.h"
#include "tilekit/graph/passes.h"

namespace tilekit {

inline Status Graph::build(const GraphConfig& config) {
  if (built_) return fail(Status::kInvalidArgument, "graph: built already");
  if (error_ != Status::kOk) return fail(error_, "%s", error_text_);
  if (config.max_tokens == 0 || config.max_sequences == 0 || config.max_sequences > config.max_tokens) {
    return fail(Status::kInvalidArgument, "graph: max_tokens (%zu) and max_sequences (%zu) must be > 0, sequences <= tokens",
                config.max_tokens, config.max_sequences);
  }
  Status st = check_cache(config);
  if (st != Status::kOk) return st;
  if ((st = check_sizes(config)) != Status::kOk) return st;
  if ((st = check_weights(config)) != Status::kOk) return st;
  config_ = config;
  for (Node& n : nodes_) {
    if (n.op == Op::kLinear) n.linear.type = graph_detail::weight_type(n.linear.weights, config.weights);
  }
  stats_.folded_adds += graph_detail::fold_residual_adds(nodes_, tensors_);
  stats_.fused_linears += graph_detail::fuse_linears_sharing_input(nodes_);
  if ((st = pack(config)) != Status::kOk) return st;
  graph_detail::BufferPlan plan = graph_detail::plan_buffers(nodes_, tensors_, config.max_tokens, config.max_sequences);
  stats_.intermediate_bytes = plan.intermediate_bytes;
  stats_.tensors = plan.tensors;
  stats_.arena_bytes = graph_detail::plan_arena(plan.buffers, &offsets_);
  buffer_of_ = std::move(plan.buffer_of);
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

// kv_write and attention nodes against the config's cache: what the kernels
// would refuse on every run (or, for K/V columns past kv_heads · head_dim,
// drop).
inline Status Graph::check_cache(const GraphConfig& config) const {
  for (const Node& n : nodes_) {
    if ((n.op == Op::kKvWrite || n.op == Op::kAttention) && !config.kv_cache) {
      return fail(Status::kNullPointer, "graph: kv_write and attention nodes need GraphConfig::kv_cache");
    }
  }
  if (!config.kv_cache) return Status::kOk;
  const KvCache& cache = *config.kv_cache;
  if (cache.empty()) return fail(Status::kInvalidArgument, "graph: GraphConfig::kv_cache is not initialised");
  const KvCacheConfig& kc = cache.config();
  for (const Node& n : nodes_) {
    if (n.op != Op::kKvWrite && n.op != Op::kAttention) continue;
    const size_t layer = n.op == Op::kKvWrite ? n.kv_write.layer : n.attention.layer;
    if (layer >= kc.layers) {
      return fail(Status::kInvalidArgument, "graph: %s of layer %zu, the cache has %zu",
                  n.op == Op::kKvWrite ? "kv_write" : "attention", layer, kc.layers);
    }
    if (n.op == Op::kKvWrite &&
        (tensors_[n.a].cols != kc.kv_heads * kc.head_dim || tensors_[n.b].cols != kc.kv_heads * kc.v_head_dim)) {
      return fail(Status::kShapeMismatch,
                  "graph: kv_write of K %zu and V %zu columns, the cache holds %zu heads x %zu (K) and x %zu (V)",
                  tensors_[n.a].cols, tensors_[n.b].cols, kc.kv_heads, kc.head_dim, kc.v_head_dim);
    }
    const size_t heads = n.attention.heads;
    if (n.op == Op::kAttention &&
        (tensors_[n.a].cols / heads != kc.head_dim || heads % kc.kv_heads || kc.v_head_dim != kc.head_dim)) {
      return fail(Status::kShapeMismatch,
                  "graph: attention of %zu heads x %zu over a cache of %zu KV heads x %zu (K) and x %zu (V): needs "
                  "the same head_dim, heads a multiple of the KV heads, v_head_dim = head_dim",
                  heads, tensors_[n.a].cols / heads, kc.kv_heads, kc.head_dim, kc.v_head_dim);
    }
  }
  return Status::kOk;
}

// The weight types and the group size, before anything is packed: what
// pack_weights would refuse for the first quantized linear is refused here
// for the graph.
inline Status Graph::check_weights(const GraphConfig& config) const {
  const WeightType types[] = {WeightType::kF32, WeightType::kBf16, WeightType::kInt8, WeightType::kInt4};
  if (std::find(std::begin(types), std::end(types), config.weights) == std::end(types)) {
    return fail(Status::kInvalidArgument, "graph: GraphConfig::weights is an unknown weight type %d",
                static_cast<int>(config.weights));
  }
  const size_t g = config.weight_group;
  if (g != 0 && g != 32 && g != 64 && g != 128) {
    return fail(Status::kInvalidArgument, "graph: GraphConfig::weight_group is %zu; quantized weights take 32, 64, "
                "128 or 0 (one scale per column over all of K)", g);
  }
  if (g != 0) return Status::kOk;
  for (const Node& n : nodes_) {
    if (n.op == Op::kLinear && graph_detail::weight_type(n.linear.weights, config.weights) == WeightType::kInt4) {
      return fail(Status::kInvalidArgument, "graph: int4 weights need a group size (32, 64 or 128); "
                  "GraphConfig::weight_group is 0");
    }
  }
  return Status::kOk;
}

// Each tensor's bytes at the most rows, and all of them together (the arena
// is at most their sum), must fit in size_t: an input or embedding of 2^62
// columns planned a wrapped, tiny arena that run() then wrote past.
inline Status Graph::check_sizes(const GraphConfig& config) const {
  size_t total = 0;
  for (const TensorInfo& t : tensors_) {
    const size_t rows = t.rows == Rows::kSequences ? config.max_sequences : config.max_tokens;
    // total <= SIZE_MAX / 2 - kCacheLine before each step, so nothing wraps.
    if (t.cols > (SIZE_MAX / 2 - kCacheLine - total) / sizeof(float) / rows) {
      return fail(Status::kOverflow, "graph: a tensor of %zu x %zu floats (after %zu bytes of others) does not fit",
                  rows, t.cols, total);
    }
    total += rows * t.cols * sizeof(float) + kCacheLine;
    if (total > SIZE_MAX / 2 - kCacheLine) return fail(Status::kOverflow, "graph: the tensors' bytes do not fit");
  }
  return Status::kOk;
}

// Each live linear's weights, packed once: its segments side by side, or gate
// and up as a pair.
inline Status Graph::pack(const GraphConfig& config) {
  size_t count = 0;
  for (const Node& n : nodes_) count += !n.dead && n.op == Op::kLinear;
  packed_.clear();
  packed_.reserve(count);
  PackOptions po;
  po.executor = config.pack_executor;
  po.group = config.weight_group;  // read for quantized weights only
  std::vector<WeightSource> parts;
  for (Node& n : nodes_) {
    if (n.dead || n.op != Op::kLinear) continue;
    graph_detail::LinearArgs& l = n.linear;
    parts.clear();
    for (const graph_detail::Segment& s : l.segs) parts.push_back(s.w);
    packed_.emplace_back();
    const Status st = pack_weights(parts.data(), parts.size(), l.type, l.gate_up ? PackKind::kGateUp : PackKind::kSeparate,
                                   &packed_.back(), po);
    if (st != Status::kOk) return st;
    l.packed = packed_.size() - 1;
    stats_.packed_bytes += packed_.back().bytes();
    l.fused.resize(l.gate_up ? 1 : l.segs.size());
  }
  return Status::kOk;
}

}  // namespace tilekit

#endif  // TILEKIT_GRAPH_BUILD_H_

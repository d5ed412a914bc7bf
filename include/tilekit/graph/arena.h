// Places buffers in one arena from when each is in use, as XNNPACK's memory
// planner does (ggml-alloc reuses freed bytes the same way): the largest
// buffer first, each at the lowest offset that no buffer placed before it and
// alive at an overlapping step covers. Large buffers placed first leave the
// gaps between them to smaller ones.
//
// Standalone (usage records in, offsets out) and deterministic: equal sizes
// keep their record order, so one description always gives one plan.
#ifndef TILEKIT_GRAPH_ARENA_H_
#define TILEKIT_GRAPH_ARENA_H_

#include <algorithm>
#include <cstddef>
#include <utility>
#include <vector>

namespace tilekit {
namespace graph_detail {

// A buffer and the steps it is in use at, first to last (both included).
struct ArenaUsage {
  size_t bytes = 0;
  size_t first = 0, last = 0;
};

// Writes each record's offset to (*offsets)[i] (0 for a record of 0 bytes,
// which takes no space) and returns the arena's bytes: the end of the
// furthest-reaching buffer, at most the sum of all sizes. Two records alive at
// a common step never overlap.
inline size_t plan_arena(const std::vector<ArenaUsage>& usage, std::vector<size_t>* offsets) {
  offsets->assign(usage.size(), 0);
  std::vector<size_t> order;
  for (size_t i = 0; i < usage.size(); ++i) {
    if (usage[i].bytes) order.push_back(i);
  }
  std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) { return usage[x].bytes > usage[y].bytes; });
  std::vector<size_t> placed;
  std::vector<std::pair<size_t, size_t>> busy;  // [offset, end) of placed buffers alive at the same time
  size_t arena = 0;
  for (size_t id : order) {
    const ArenaUsage& u = usage[id];
    busy.clear();
    for (size_t p : placed) {
      const ArenaUsage& o = usage[p];
      if (o.first <= u.last && u.first <= o.last) busy.emplace_back((*offsets)[p], (*offsets)[p] + o.bytes);
    }
    std::sort(busy.begin(), busy.end());
    size_t offset = 0;
    for (const auto& b : busy) {
      if (b.first >= offset + u.bytes) break;
      offset = std::max(offset, b.second);
    }
    (*offsets)[id] = offset;
    arena = std::max(arena, offset + u.bytes);
    placed.push_back(id);
  }
  return arena;
}

}  // namespace graph_detail
}  // namespace tilekit

#endif  // TILEKIT_GRAPH_ARENA_H_

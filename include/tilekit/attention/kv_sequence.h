// One sequence's bookkeeping over a KvCache: its block tables, the generation
// of each block, its length, and, for layers with a sliding window, the blocks
// no later query can read, released as the sequence moves past them. An engine
// step is three calls:
//
//   seq.reserve(T);                            // blocks for positions [length, length + T)
//   per layer: kv_cache_write(cache, l, seq.step(l, T), seq.length(), k, v);
//              attention(q, cache, l, seq.step(l, T), out, params);   // params.mask.window = the layer's
//   seq.advance(T);                            // length += T; blocks behind every window released
//
// One block id serves every layer of the cache (kv_cache.h), so layers with
// different windows cannot share a table when some release blocks: the state
// keeps one table per distinct window (Gemma 2's global and local layers: two
// tables), each holding whole blocks of which its layers use their rows. A
// windowed table holds at most (window - 1) / block_tokens + 2 blocks between
// steps (plus what reserve takes for the next).
//
// init reserves every table's capacity (max_tokens); reserve, step and advance
// allocate nothing. Not thread-safe (a scheduler's object, like the cache's
// block management). release() gives the blocks back; the destructor does not
// (the cache may be gone by then).
#ifndef TILEKIT_ATTENTION_KV_SEQUENCE_H_
#define TILEKIT_ATTENTION_KV_SEQUENCE_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "tilekit/attention/kv_cache.h"
#include "tilekit/base/size_math.h"
#include "tilekit/base/status.h"

namespace tilekit {

class KvSequenceState {
 public:
  KvSequenceState() = default;
  // Move-only: two copies would each release the same blocks.
  KvSequenceState(const KvSequenceState&) = delete;
  KvSequenceState& operator=(const KvSequenceState&) = delete;
  KvSequenceState(KvSequenceState&&) = default;
  KvSequenceState& operator=(KvSequenceState&&) = default;

  // A sequence of at most max_tokens tokens over `cache`, which must outlive
  // the state. layer_windows: per layer of the cache, the sliding window its
  // attention uses (0: none, every position stays); null: no layer has one.
  // Refused while the state holds blocks (they would be lost): release() first.
  Status init(KvCache& cache, size_t max_tokens, const size_t* layer_windows = nullptr) {
    if (blocks_held()) {
      return fail(Status::kInvalidArgument, "KvSequenceState::init: %zu blocks still held (release() first)",
                  blocks_held());
    }
    if (cache.empty()) return fail(Status::kInvalidArgument, "KvSequenceState: the cache is not initialised");
    const KvCacheConfig& c = cache.config();
    // A table entry per block of max_tokens (released ones too): more than a
    // pool's 2^32 - 1 blocks would be a table of 16 GB.
    if (max_tokens / c.block_tokens >= UINT32_MAX) {
      return fail(Status::kInvalidArgument, "KvSequenceState: %zu tokens is more than 2^32 - 1 blocks of %zu",
                  max_tokens, c.block_tokens);
    }
    std::vector<size_t> windows;
    std::vector<uint32_t> layer_table(c.layers, 0);
    for (size_t l = 0; l < c.layers; ++l) {
      const size_t w = layer_windows ? layer_windows[l] : 0;
      size_t t = 0;
      while (t < windows.size() && windows[t] != w) ++t;
      if (t == windows.size()) windows.push_back(w);
      layer_table[l] = static_cast<uint32_t>(t);
    }
    std::vector<Table> tables(windows.size());
    const size_t entries = div_ceil(max_tokens, c.block_tokens);
    for (size_t t = 0; t < tables.size(); ++t) {
      tables[t].window = windows[t];
      tables[t].blocks.reserve(entries);
      tables[t].generations.reserve(entries);
    }
    cache_ = &cache;
    tables_ = std::move(tables);
    layer_table_ = std::move(layer_table);
    max_tokens_ = max_tokens;
    length_ = 0;
    return Status::kOk;
  }

  // Blocks for `tokens` more positions after length(), in every table. Refused
  // whole (nothing taken) past max_tokens or when the pool has too few free
  // blocks (kOutOfMemory).
  Status reserve(size_t tokens) {
    if (!cache_ || tables_.empty()) return fail(Status::kInvalidArgument, "KvSequenceState::reserve before init");
    if (tokens > max_tokens_ - length_) {
      return fail(Status::kInvalidArgument, "KvSequenceState: %zu + %zu tokens, the sequence holds at most %zu",
                  length_, tokens, max_tokens_);
    }
    const size_t entries = div_ceil(length_ + tokens, cache_->config().block_tokens);
    size_t need = 0;
    for (const Table& t : tables_) need += entries > t.blocks.size() ? entries - t.blocks.size() : 0;
    if (need > cache_->free_blocks()) {
      return fail(Status::kOutOfMemory, "KvSequenceState: %zu blocks needed, %zu free", need, cache_->free_blocks());
    }
    for (Table& t : tables_) {
      while (t.blocks.size() < entries) {
        uint32_t id = 0, gen = 0;
        const Status st = cache_->allocate_block(&id, &gen);
        if (st != Status::kOk) return st;  // not reached: counted above
        t.blocks.push_back(id);
        t.generations.push_back(gen);
      }
    }
    return Status::kOk;
  }

  // The sequence as `layer` sees it in a step of `tokens` new tokens at
  // length(): its table, generations and the length length() + tokens, for
  // kv_cache_write (at length()) and attention. Valid until the next reserve.
  KvSequence step(size_t layer, size_t tokens) const {
    if (!cache_ || layer >= layer_table_.size()) return KvSequence{};  // refused by the calls it is passed to
    const Table& t = tables_[layer_table_[layer]];
    return KvSequence{t.blocks.data(), t.blocks.size(), length_ + tokens, t.generations.data()};
  }

  // After a step of `tokens` tokens: the length moves on, and every block that
  // holds only positions no query from the new length on can see (before
  // length + 1 - window) is released and its entry becomes kKvNoBlock.
  Status advance(size_t tokens) {
    if (!cache_ || tables_.empty()) return fail(Status::kInvalidArgument, "KvSequenceState::advance before init");
    const size_t bt = cache_->config().block_tokens;
    if (tokens > max_tokens_ - length_ || length_ + tokens > tables_[0].blocks.size() * bt) {
      return fail(Status::kInvalidArgument, "KvSequenceState: advancing %zu tokens past the %zu reserved after %zu",
                  tokens, tables_[0].blocks.size() * bt - length_, length_);
    }
    length_ += tokens;
    for (Table& t : tables_) {
      if (!t.window || length_ + 1 <= t.window) continue;
      const size_t first_seen = length_ + 1 - t.window;  // the next query (position length_) sees keys >= this
      for (; t.dropped < first_seen / bt; ++t.dropped) {
        (void)cache_->release_block(t.blocks[t.dropped]);  // held: this state took it
        t.blocks[t.dropped] = kKvNoBlock;
      }
    }
    return Status::kOk;
  }

  // Gives every block back; the length is 0 again (the tables keep their capacity).
  void release() {
    if (!cache_) return;
    for (Table& t : tables_) {
      for (size_t b = t.dropped; b < t.blocks.size(); ++b) (void)cache_->release_block(t.blocks[b]);
      t.blocks.clear();
      t.generations.clear();
      t.dropped = 0;
    }
    length_ = 0;
  }

  size_t length() const { return length_; }
  size_t max_tokens() const { return max_tokens_; }
  // Blocks the sequence holds now, over all its tables.
  size_t blocks_held() const {
    size_t n = 0;
    for (const Table& t : tables_) n += t.blocks.size() - t.dropped;
    return n;
  }

 private:
  struct Table {
    size_t window = 0;
    size_t dropped = 0;  // entries [0, dropped) released (kKvNoBlock)
    std::vector<uint32_t> blocks, generations;
  };
  KvCache* cache_ = nullptr;
  std::vector<Table> tables_;
  std::vector<uint32_t> layer_table_;  // layer -> its table
  size_t max_tokens_ = 0, length_ = 0;
};

}  // namespace tilekit

#endif  // TILEKIT_ATTENTION_KV_SEQUENCE_H_

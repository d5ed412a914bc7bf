// A paged key/value cache: one pool of fixed-size blocks shared by every
// sequence (continuous batching), each sequence naming its blocks in a block
// table, so a sequence grows one block at a time and nothing stored ever moves;
// two sequences may name the same block (prefix sharing, reference counted).
//
// Layout (plain rows, read in place by attention, no repacking per call):
//   pool  = [block][layer][K rows | V rows]
//   K rows of a block = [token][kv_head][head_dim]      (cache dtype)
//   V rows of a block = [token][kv_head][v_head_dim]
// Token t of a sequence lives in block table[t / block_tokens], row
// t % block_tokens. One block id serves every layer (one table per sequence, as
// a server keeps it). Storage is fp32 or bf16; writes cast to it.
//
// Block management (allocate_block / share_block / release_block) is not
// thread-safe: a scheduler does it from one thread. Writes to different blocks
// and attention reads may run concurrently from any threads.
#ifndef TILEKIT_ATTENTION_KV_CACHE_H_
#define TILEKIT_ATTENTION_KV_CACHE_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "tilekit/attention/heads.h"
#include "tilekit/base/aligned_buffer.h"
#include "tilekit/base/api.h"
#include "tilekit/base/bf16.h"
#include "tilekit/base/status.h"

namespace tilekit {

enum class KvDtype { kF32, kBf16 };

inline size_t kv_dtype_bytes(KvDtype t) { return t == KvDtype::kBf16 ? 2 : 4; }

struct KvCacheConfig {
  size_t layers = 1;
  size_t kv_heads = 0;
  size_t head_dim = 0;
  size_t v_head_dim = 0;     // 0: same as head_dim
  size_t block_tokens = 16;  // tokens per block
  size_t num_blocks = 0;     // pool capacity, shared by all sequences
  KvDtype dtype = KvDtype::kF32;
};

// What a sequence holds: its block table (token t in blocks[t / block_tokens])
// and how many tokens are valid. Blocks past `length` may hold anything (stale
// tokens, NaN): attention never reads past `length`.
struct KvSequence {
  const uint32_t* blocks = nullptr;
  size_t num_blocks = 0;
  size_t length = 0;
};

class KvCache {
 public:
  // Bytes the pool of `config` takes, before allocating it.
  static Status bytes_needed(const KvCacheConfig& config, size_t* bytes);

  // Allocates the pool (once; a second init replaces it). Every block is free.
  Status init(const KvCacheConfig& config);

  bool empty() const { return pool_.data() == nullptr; }
  const KvCacheConfig& config() const { return config_; }
  size_t bytes() const { return pool_.size(); }
  size_t free_blocks() const { return free_.size(); }

  // Takes a free block (reference count 1); kOutOfMemory when none is left.
  Status allocate_block(uint32_t* id);
  // One more sequence holds the block (prefix sharing).
  Status share_block(uint32_t id);
  // One fewer holder; the block is free again at zero.
  Status release_block(uint32_t id);

  // Bytes of one layer's K (or V) rows in a block, and the distance between two
  // blocks of the pool.
  size_t k_block_bytes() const { return config_.block_tokens * config_.kv_heads * config_.head_dim * elem_; }
  size_t v_block_bytes() const { return config_.block_tokens * config_.kv_heads * config_.v_head_dim * elem_; }
  size_t block_stride() const { return config_.layers * (k_block_bytes() + v_block_bytes()); }

  // Raw rows of a block (fp32 or bf16 per config().dtype); for kernels and tests.
  unsigned char* key_rows(size_t layer, uint32_t id) const {
    return pool_.as<unsigned char>() + id * block_stride() + layer * (k_block_bytes() + v_block_bytes());
  }
  unsigned char* value_rows(size_t layer, uint32_t id) const { return key_rows(layer, id) + k_block_bytes(); }

 private:
  KvCacheConfig config_;
  size_t elem_ = 4;
  AlignedBuffer pool_;
  std::vector<uint32_t> free_;  // a stack: the most recently freed block is reused first
  std::vector<uint32_t> refs_;
};

// Writes K and V of T new tokens at positions [pos, pos + T) of `seq` (whose
// block table must already cover them), converting to the cache dtype. k: T ×
// kv_heads × head_dim, v: T × kv_heads × v_head_dim, any token stride (slices
// of a fused QKV projection). Does not change seq.length (the caller owns it).
TILEKIT_API Status kv_cache_write(KvCache& cache, size_t layer, const KvSequence& seq, size_t pos,
                                  HeadsView<const float> k, HeadsView<const float> v);
TILEKIT_API Status kv_cache_write(KvCache& cache, size_t layer, const KvSequence& seq, size_t pos,
                                  HeadsView<const bf16> k, HeadsView<const bf16> v);

}  // namespace tilekit

#endif  // TILEKIT_ATTENTION_KV_CACHE_H_

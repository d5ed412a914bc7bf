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
// The same plain rows on every path (issue 28 allowed a layout per path): the
// matrix-unit prefill (attention/tiled_brgemm-inl.h) reads K in place on AMX
// (d a multiple of 32) and packs V (and K on BFMMLA) once per 64-key tile,
// which measured ~3% of a tile's time on the AVX3 target (docs/performance.md,
// "Prefill on the matrix units"); a second cache layout is not worth that.
//
// What the cache checks, so a misused table is refused instead of read
// (issue 27), each check per block, never per position:
//  - liveness: every block has a generation, odd while allocated, moved on when
//    it is allocated and when it is freed. A table entry naming a free block is
//    refused; a sequence that keeps the generations it was handed
//    (KvSequence::generations) also has a block refused that was released and
//    taken again since (by another sequence).
//  - written positions: per block and layer, how many rows from row 0 were
//    written since the block was allocated. kv_cache_write refuses to leave a
//    gap, and a write ends the layer's positions at pos + T (what followed is
//    dropped, as a speculative rollback wants, in the blocks the write's table
//    names: a rollback passes the sequence's whole table, as KvSequenceState
//    does, or the blocks past its view keep their rows). attention refuses a length
//    whose positions were not all written, and one short of what was written
//    (K/V written at position length: the engine did not advance the length).
// KvSequenceState (kv_sequence.h) does the bookkeeping that keeps these true.
//
// Block management (allocate_block / share_block / release_block) is not
// thread-safe: a scheduler does it from one thread. Writes to different blocks
// and attention reads may run concurrently from any threads (a block's written
// count is written by whoever writes its rows, and a block's generation moves
// only when it is allocated or freed).
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

// A table entry naming no block: positions a sliding window has dropped. The
// cache refuses it wherever a call would read or write those positions.
constexpr uint32_t kKvNoBlock = UINT32_MAX;

// What a sequence holds: its block table (token t in blocks[t / block_tokens])
// and how many tokens are valid. Blocks past `length` may hold anything (stale
// tokens, NaN): attention never reads past `length`.
struct KvSequence {
  const uint32_t* blocks = nullptr;
  size_t num_blocks = 0;
  size_t length = 0;
  // Optional, one per table entry: the generation each block had when the
  // sequence took it (allocate_block's, or generation() when sharing it). With
  // it a block released and taken again since is refused, not only a free one.
  const uint32_t* generations = nullptr;
};

namespace detail {
struct KvCacheAccess;  // kv_cache_write's bookkeeping (kv_cache-impl.h)
}  // namespace detail

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

  // Takes a free block (reference count 1, no rows written); kOutOfMemory
  // when none is left. `generation`, if not null, receives the block's new
  // generation, to keep beside the id (KvSequence::generations).
  Status allocate_block(uint32_t* id, uint32_t* generation = nullptr);
  // One more sequence holds the block (prefix sharing).
  Status share_block(uint32_t id);
  // One fewer holder; the block is free again at zero.
  Status release_block(uint32_t id);

  // The block's generation: odd while it is allocated. It moves on twice per
  // allocate / free cycle, so a uint32_t repeats after 2^31 cycles of a block.
  uint32_t generation(uint32_t id) const { return id < gen_.size() ? gen_[id] : 0; }
  bool allocated(uint32_t id) const { return (generation(id) & 1) != 0; }
  // Rows of `layer` written in block `id` since it was allocated, from row 0
  // in order (the rows attention may read); 0 for an id outside the pool.
  size_t written_rows(size_t layer, uint32_t id) const {
    return id < gen_.size() && layer < config_.layers ? written_[id * config_.layers + layer] : 0;
  }

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
  std::vector<uint32_t> gen_;      // per block
  std::vector<uint32_t> written_;  // per block and layer: rows written from row 0 (block_tokens fits: init checks)
  friend struct detail::KvCacheAccess;
};

// Writes K and V of T new tokens at positions [pos, pos + T) of `seq` (whose
// block table must already cover them), converting to the cache dtype. k: T ×
// kv_heads × head_dim, v: T × kv_heads × v_head_dim, any token stride (slices
// of a fused QKV projection). Does not change seq.length (the caller owns it:
// attention then wants pos + T, or refuses the length as one short). Refused:
// a block of [pos, pos + T) that is free (or of another generation than
// seq.generations says), and a gap (positions before pos of this layer not
// written in pos's block, or in the block before it when pos opens a block).
// The layer's written positions end at pos + T (in the blocks seq names).
TILEKIT_API Status kv_cache_write(KvCache& cache, size_t layer, const KvSequence& seq, size_t pos,
                                  HeadsView<const float> k, HeadsView<const float> v);
TILEKIT_API Status kv_cache_write(KvCache& cache, size_t layer, const KvSequence& seq, size_t pos,
                                  HeadsView<const bf16> k, HeadsView<const bf16> v);

// Whether one causal step of `tokens` new tokens at `pos` may run on `layer`
// (kv_cache_write at pos, then attention over pos + tokens with no window; with
// tokens = 0, attention alone over pos): what those calls check, before any
// writes, so a caller that writes several layers (the graph executor) refuses
// a bad step whole.
TILEKIT_API Status kv_cache_check_step(const KvCache& cache, size_t layer, const KvSequence& seq, size_t pos,
                                       size_t tokens);

}  // namespace tilekit

#endif  // TILEKIT_ATTENTION_KV_CACHE_H_

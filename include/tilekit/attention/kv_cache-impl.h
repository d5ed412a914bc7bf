// Definitions of attention/kv_cache.h (compiled once per program, by its module's implementation.h).
#ifndef TILEKIT_ATTENTION_KV_CACHE_IMPL_H_
#define TILEKIT_ATTENTION_KV_CACHE_IMPL_H_

#include <algorithm>
#include <cstring>

#include "tilekit/attention/kv_cache.h"
#include "tilekit/cpu/dispatch.h"
#include "tilekit/attention/exports.h"

namespace tilekit {

namespace detail {

inline Status check_kv_config(const KvCacheConfig& c, size_t* bytes) {
  const size_t dv = c.v_head_dim ? c.v_head_dim : c.head_dim;
  if (!c.layers || !c.kv_heads || !c.head_dim || !c.block_tokens || !c.num_blocks) {
    return fail(Status::kInvalidArgument,
                "KvCache: layers, kv_heads, head_dim, block_tokens and num_blocks must be > 0 (got %zu, %zu, %zu, "
                "%zu, %zu)",
                c.layers, c.kv_heads, c.head_dim, c.block_tokens, c.num_blocks);
  }
  if (c.num_blocks > UINT32_MAX) return fail(Status::kInvalidArgument, "KvCache: more than 2^32 - 1 blocks");
  // The written-rows count of a block is a uint32_t.
  if (c.block_tokens > UINT32_MAX) return fail(Status::kInvalidArgument, "KvCache: block_tokens above 2^32 - 1");
  // The sum first: head_dim = v_head_dim = 2^63 wrapped to a row of 0 bytes, an
  // accepted config with an empty pool (kv_cache_fuzz).
  if (dv > SIZE_MAX - c.head_dim) return fail(Status::kOverflow, "KvCache: head_dim + v_head_dim overflows size_t");
  size_t row = 0, block = 0, all = 0;
  if (!mul_fits(c.kv_heads, c.head_dim + dv, &row) || !mul_fits(row, c.block_tokens, &block) ||
      !mul_fits(block, kv_dtype_bytes(c.dtype), &block) || !mul_fits(block, c.layers, &block) ||
      !mul_fits(block, c.num_blocks, &all)) {
    return fail(Status::kOverflow, "KvCache: the pool size overflows size_t");
  }
  *bytes = all;
  return Status::kOk;
}

}  // namespace detail

TILEKIT_API Status KvCache::bytes_needed(const KvCacheConfig& config, size_t* bytes) {
  if (!bytes) return fail(Status::kNullPointer, "KvCache::bytes_needed: bytes is null");
  return detail::check_kv_config(config, bytes);
}

TILEKIT_API Status KvCache::init(const KvCacheConfig& config) {
  size_t bytes = 0;
  const Status s = detail::check_kv_config(config, &bytes);
  if (s != Status::kOk) return s;
  AlignedBuffer pool;
  if (!pool.allocate(bytes, PageHint::kHuge)) {
    return fail(Status::kOutOfMemory, "KvCache: cannot allocate %zu bytes", bytes);
  }
  config_ = config;
  if (!config_.v_head_dim) config_.v_head_dim = config_.head_dim;
  elem_ = kv_dtype_bytes(config.dtype);
  pool_ = std::move(pool);
  refs_.assign(config.num_blocks, 0);
  gen_.assign(config.num_blocks, 0);
  written_.assign(config.num_blocks * config.layers, 0);  // fits: the pool has at least that many bytes
  free_.resize(config.num_blocks);
  for (size_t i = 0; i < config.num_blocks; ++i) free_[i] = static_cast<uint32_t>(config.num_blocks - 1 - i);
  return Status::kOk;
}

TILEKIT_API Status KvCache::allocate_block(uint32_t* id, uint32_t* generation) {
  if (!id) return fail(Status::kNullPointer, "KvCache::allocate_block: id is null");
  if (empty()) return fail(Status::kInvalidArgument, "KvCache::allocate_block: the cache is not initialised");
  if (free_.empty()) {
    return fail(Status::kOutOfMemory, "KvCache::allocate_block: all %zu blocks are in use", config_.num_blocks);
  }
  const uint32_t b = free_.back();
  free_.pop_back();
  refs_[b] = 1;
  ++gen_[b];  // odd: allocated
  std::fill_n(written_.begin() + b * config_.layers, config_.layers, 0u);
  *id = b;
  if (generation) *generation = gen_[b];
  return Status::kOk;
}

TILEKIT_API Status KvCache::share_block(uint32_t id) {
  if (id >= refs_.size() || refs_[id] == 0) {
    return fail(Status::kInvalidArgument, "KvCache::share_block: block %u is not allocated", id);
  }
  ++refs_[id];
  return Status::kOk;
}

TILEKIT_API Status KvCache::release_block(uint32_t id) {
  if (id >= refs_.size() || refs_[id] == 0) {
    return fail(Status::kInvalidArgument, "KvCache::release_block: block %u is not allocated", id);
  }
  if (--refs_[id] == 0) {
    ++gen_[id];  // even: free, and a table still naming it no longer matches
    free_.push_back(id);
  }
  return Status::kOk;
}

namespace detail {

// The checks every use of a sequence shares: a cache, a layer, a block table
// covering `tokens` tokens.
inline Status check_kv_sequence(const char* op, const KvCache& cache, size_t layer, const KvSequence& seq,
                                size_t tokens) {
  if (cache.empty()) return fail(Status::kInvalidArgument, "%s: the cache is not initialised", op);
  const KvCacheConfig& c = cache.config();
  if (layer >= c.layers) return fail(Status::kInvalidArgument, "%s: layer %zu of %zu", op, layer, c.layers);
  if (!seq.blocks && seq.num_blocks) return fail(Status::kNullPointer, "%s: the block table is null", op);
  if (seq.num_blocks > SIZE_MAX / c.block_tokens || tokens > seq.num_blocks * c.block_tokens) {
    return fail(Status::kInvalidArgument, "%s: position %zu is beyond the %zu blocks x %zu tokens of the sequence", op,
                tokens, seq.num_blocks, c.block_tokens);
  }
  return Status::kOk;
}

// Whether table entry b names a block the sequence still holds: inside the
// pool, allocated, and of the generation the sequence took it at (if it says).
inline bool kv_entry_held(const KvCache& cache, const KvSequence& seq, size_t b) {
  const uint32_t id = seq.blocks[b];
  return id < cache.config().num_blocks && cache.allocated(id) &&
         (!seq.generations || seq.generations[b] == cache.generation(id));
}

// Table entries [b0, b1) name blocks the sequence holds; else why not.
inline Status check_kv_blocks(const char* op, const KvCache& cache, const KvSequence& seq, size_t b0, size_t b1) {
  const KvCacheConfig& c = cache.config();
  for (size_t b = b0; b < b1; ++b) {
    if (kv_entry_held(cache, seq, b)) continue;
    const uint32_t id = seq.blocks[b];
    if (id == kKvNoBlock) {
      return fail(Status::kInvalidArgument,
                  "%s: positions %zu to %zu are used but their block was dropped (kKvNoBlock in table entry %zu; a "
                  "sliding window wider than the one the blocks were kept for?)",
                  op, b * c.block_tokens, (b + 1) * c.block_tokens - 1, b);
    }
    if (id >= c.num_blocks) {
      return fail(Status::kInvalidArgument, "%s: block table entry %zu is %u, the pool has %zu blocks", op, b, id,
                  c.num_blocks);
    }
    if (!cache.allocated(id)) {
      return fail(Status::kInvalidArgument, "%s: block %u (table entry %zu) was released: it is free", op, id, b);
    }
    return fail(Status::kInvalidArgument,
                "%s: block %u (table entry %zu) was released and taken again since the sequence took it "
                "(generation %u, now %u)",
                op, id, b, seq.generations[b], cache.generation(id));
  }
  return Status::kOk;
}

// Positions [from, length) of `layer` were written, and nothing at length
// (K/V written there with the length left behind: attention would read one
// position short). Blocks before `from` are not read (a sliding window).
inline Status check_kv_written(const char* op, const KvCache& cache, size_t layer, const KvSequence& seq,
                               size_t from, size_t length) {
  const size_t bt = cache.config().block_tokens;
  const size_t b0 = from / bt, used = (length + bt - 1) / bt;
  Status st = check_kv_blocks(op, cache, seq, b0, used);
  if (st != Status::kOk) return st;
  for (size_t b = b0; b < used; ++b) {
    const size_t need = b + 1 < used ? bt : length - b * bt, rows = cache.written_rows(layer, seq.blocks[b]);
    if (rows < need) {
      return fail(Status::kInvalidArgument,
                  "%s: position %zu of layer %zu was not written, the length is %zu (write K/V before attending)", op,
                  b * bt + rows, layer, length);
    }
  }
  // The block holding position `length`: the last one used, or the next entry
  // when the length ends a block (if the sequence still holds it).
  size_t rows_after = 0;
  if (length % bt) {
    rows_after = cache.written_rows(layer, seq.blocks[used - 1]) - length % bt;
  } else if (used < seq.num_blocks && kv_entry_held(cache, seq, used)) {
    rows_after = cache.written_rows(layer, seq.blocks[used]);
  }
  if (rows_after) {
    return fail(Status::kInvalidArgument,
                "%s: layer %zu has K/V written at position %zu but the length is %zu: advance the length with the "
                "write (attention would read one position short)",
                op, layer, length, length);
  }
  return Status::kOk;
}

// Before a write of [pos, end): its blocks held, and no gap before pos: in
// pos's block, or, when pos opens a block, in the block before it (if the
// sequence still holds it; a sliding window may have released it). Blocks
// past a sequence's last write hold no rows (note_written clears them), so a
// gap of whole blocks shows as the block before pos not being full.
inline Status check_kv_write(const char* op, const KvCache& cache, size_t layer, const KvSequence& seq, size_t pos,
                             size_t end) {
  if (end == pos) return Status::kOk;
  const size_t bt = cache.config().block_tokens;
  const Status st = check_kv_blocks(op, cache, seq, pos / bt, (end + bt - 1) / bt);
  if (st != Status::kOk) return st;
  size_t written_to = 0;  // the layer's positions written before pos, as far as its blocks tell
  if (pos % bt) {
    written_to = pos - pos % bt + cache.written_rows(layer, seq.blocks[pos / bt]);
  } else if (pos == 0 || !kv_entry_held(cache, seq, pos / bt - 1)) {
    written_to = pos;
  } else {
    written_to = pos - bt + cache.written_rows(layer, seq.blocks[pos / bt - 1]);
  }
  if (written_to < pos) {
    return fail(Status::kInvalidArgument,
                "%s: layer %zu is written up to position %zu; writing at %zu would leave positions unwritten (write "
                "K/V in order)",
                op, layer, written_to, pos);
  }
  return Status::kOk;
}

// kv_cache_write's bookkeeping: the rows of [pos, end) written; the layer's
// positions end at `end`: rows after it in end's block, and in the held
// blocks after that, are no longer valid (a rewind followed by a shorter
// write). The clearing stops at the first block already empty, so a decode
// step touches one entry past its own.
struct KvCacheAccess {
  static void note_written(KvCache& cache, size_t layer, const KvSequence& seq, size_t pos, size_t end) {
    if (end == pos) return;
    const size_t bt = cache.config_.block_tokens, layers = cache.config_.layers;
    const size_t b1 = (end + bt - 1) / bt;
    for (size_t b = pos / bt; b < b1; ++b) {
      cache.written_[seq.blocks[b] * layers + layer] = static_cast<uint32_t>(b + 1 < b1 ? bt : end - b * bt);
    }
    for (size_t b = b1; b < seq.num_blocks && kv_entry_held(cache, seq, b); ++b) {
      uint32_t& rows = cache.written_[seq.blocks[b] * layers + layer];
      if (rows == 0) break;
      rows = 0;
    }
  }
};

template <typename T>
Status write_kv(const char* op, KvCache& cache, size_t layer, const KvSequence& seq, size_t pos,
                const HeadsView<const T>& k, const HeadsView<const T>& v) {
  size_t k_bytes = 0, v_bytes = 0;
  Status s;
  if ((s = check_heads(op, "k", k, &k_bytes)) != Status::kOk) return s;
  if ((s = check_heads(op, "v", v, &v_bytes)) != Status::kOk) return s;
  if (cache.empty()) return fail(Status::kInvalidArgument, "%s: the cache is not initialised", op);
  const KvCacheConfig& c = cache.config();
  if (k.heads != c.kv_heads || v.heads != c.kv_heads || k.head_dim != c.head_dim || v.head_dim != c.v_head_dim) {
    return fail(Status::kShapeMismatch,
                "%s: k is %zu heads x %zu, v %zu heads x %zu; the cache holds %zu heads x %zu (K) and x %zu (V)", op,
                k.heads, k.head_dim, v.heads, v.head_dim, c.kv_heads, c.head_dim, c.v_head_dim);
  }
  if (k.tokens != v.tokens) {
    return fail(Status::kShapeMismatch, "%s: k has %zu tokens, v %zu", op, k.tokens, v.tokens);
  }
  if (pos > SIZE_MAX - k.tokens) return fail(Status::kOverflow, "%s: pos + tokens overflows", op);
  if ((s = check_kv_sequence(op, cache, layer, seq, pos + k.tokens)) != Status::kOk) return s;
  if ((s = check_kv_write(op, cache, layer, seq, pos, pos + k.tokens)) != Status::kOk) return s;
  const unsigned char* pool = cache.key_rows(0, 0);
  const size_t pool_bytes = cache.bytes();
  if (ranges_overlap(k.data, k_bytes, pool, pool_bytes) || ranges_overlap(v.data, v_bytes, pool, pool_bytes)) {
    return fail(Status::kAliasing, "%s: k or v lies inside the cache", op);
  }
  const size_t bt = c.block_tokens;
  const size_t k_row = c.kv_heads * c.head_dim, v_row = c.kv_heads * c.v_head_dim;
  const bool to_bf16 = c.dtype == KvDtype::kBf16;
  // The conversions of the active path, chosen once for the whole write.
  const Isa isa = cpu::active_isa();
  const auto narrow = TILEKIT_DISPATCH_ON(isa, ConvertF32ToBf16);
  const bool native_bf16 = cpu::isa_converts_bf16(isa);
  const auto widen = TILEKIT_DISPATCH_ON(isa, ConvertBf16ToF32);
  for (size_t t = 0; t < k.tokens; ++t) {
    const size_t p = pos + t;
    const uint32_t block = seq.blocks[p / bt];
    const size_t slot = p % bt;
    unsigned char* kd = cache.key_rows(layer, block) + slot * k_row * kv_dtype_bytes(c.dtype);
    unsigned char* vd = cache.value_rows(layer, block) + slot * v_row * kv_dtype_bytes(c.dtype);
    const T* ks = k.data + t * k.token_stride;
    const T* vs = v.data + t * v.token_stride;
    if (std::is_same<T, float>::value == !to_bf16) {  // same type: a copy
      std::memcpy(kd, ks, k_row * sizeof(T));
      std::memcpy(vd, vs, v_row * sizeof(T));
    } else if (to_bf16) {
      const auto* kf = reinterpret_cast<const float*>(ks);
      const auto* vf = reinterpret_cast<const float*>(vs);
      narrow(kf, reinterpret_cast<uint16_t*>(kd), k_row, native_bf16);
      narrow(vf, reinterpret_cast<uint16_t*>(vd), v_row, native_bf16);
    } else {
      const auto* kb = reinterpret_cast<const uint16_t*>(ks);
      const auto* vb = reinterpret_cast<const uint16_t*>(vs);
      widen(kb, reinterpret_cast<float*>(kd), k_row);
      widen(vb, reinterpret_cast<float*>(vd), v_row);
    }
  }
  KvCacheAccess::note_written(cache, layer, seq, pos, pos + k.tokens);
  return Status::kOk;
}

}  // namespace detail

TILEKIT_API Status kv_cache_write(KvCache& cache, size_t layer, const KvSequence& seq, size_t pos,
                                  HeadsView<const float> k, HeadsView<const float> v) {
  return detail::write_kv("kv_cache_write", cache, layer, seq, pos, k, v);
}
TILEKIT_API Status kv_cache_write(KvCache& cache, size_t layer, const KvSequence& seq, size_t pos,
                                  HeadsView<const bf16> k, HeadsView<const bf16> v) {
  return detail::write_kv("kv_cache_write", cache, layer, seq, pos, k, v);
}

TILEKIT_API Status kv_cache_check_step(const KvCache& cache, size_t layer, const KvSequence& seq, size_t pos,
                                       size_t tokens) {
  const char* op = "kv_cache_check_step";
  if (pos > SIZE_MAX - tokens) return fail(Status::kOverflow, "%s: pos + tokens overflows", op);
  Status st = detail::check_kv_sequence(op, cache, layer, seq, pos + tokens);
  if (st != Status::kOk) return st;
  if (tokens == 0) return detail::check_kv_written(op, cache, layer, seq, 0, pos);  // attention alone
  // Attention reads [0, pos + tokens): [0, pos) written before, the rest by
  // this step's write, which needs nothing written past pos in pos's block...
  // unless it rewrites (a rollback), which it may: only [0, pos) is required.
  const size_t bt = cache.config().block_tokens;
  if ((st = detail::check_kv_blocks(op, cache, seq, 0, (pos + tokens + bt - 1) / bt)) != Status::kOk) return st;
  for (size_t b = 0; b < (pos + bt - 1) / bt; ++b) {
    const size_t need = std::min(bt, pos - b * bt), rows = cache.written_rows(layer, seq.blocks[b]);
    if (rows < need) {
      return fail(Status::kInvalidArgument, "%s: position %zu of layer %zu was not written, the step starts at %zu",
                  op, b * bt + rows, layer, pos);
    }
  }
  return Status::kOk;
}

}  // namespace tilekit

#endif  // TILEKIT_ATTENTION_KV_CACHE_IMPL_H_

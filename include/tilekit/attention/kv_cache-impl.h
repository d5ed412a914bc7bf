// Definitions of attention/kv_cache.h (compiled once per program, by its module's implementation.h).
#ifndef TILEKIT_ATTENTION_KV_CACHE_IMPL_H_
#define TILEKIT_ATTENTION_KV_CACHE_IMPL_H_

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
  free_.resize(config.num_blocks);
  for (size_t i = 0; i < config.num_blocks; ++i) free_[i] = static_cast<uint32_t>(config.num_blocks - 1 - i);
  return Status::kOk;
}

TILEKIT_API Status KvCache::allocate_block(uint32_t* id) {
  if (!id) return fail(Status::kNullPointer, "KvCache::allocate_block: id is null");
  if (empty()) return fail(Status::kInvalidArgument, "KvCache::allocate_block: the cache is not initialised");
  if (free_.empty()) {
    return fail(Status::kOutOfMemory, "KvCache::allocate_block: all %zu blocks are in use", config_.num_blocks);
  }
  *id = free_.back();
  free_.pop_back();
  refs_[*id] = 1;
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
  if (--refs_[id] == 0) free_.push_back(id);
  return Status::kOk;
}

namespace detail {

// The checks every use of a sequence shares: a cache, a layer, a block table
// covering `tokens` tokens, and block ids inside the pool.
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
  const size_t used = (tokens + c.block_tokens - 1) / c.block_tokens;
  for (size_t b = 0; b < used; ++b) {
    if (seq.blocks[b] >= c.num_blocks) {
      return fail(Status::kInvalidArgument, "%s: block table entry %zu is %u, the pool has %zu blocks", op, b,
                  seq.blocks[b], c.num_blocks);
    }
  }
  return Status::kOk;
}

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
  const unsigned char* pool = cache.key_rows(0, 0);
  const size_t pool_bytes = cache.bytes();
  if (ranges_overlap(k.data, k_bytes, pool, pool_bytes) || ranges_overlap(v.data, v_bytes, pool, pool_bytes)) {
    return fail(Status::kAliasing, "%s: k or v lies inside the cache", op);
  }
  const size_t bt = c.block_tokens;
  const size_t k_row = c.kv_heads * c.head_dim, v_row = c.kv_heads * c.v_head_dim;
  const bool to_bf16 = c.dtype == KvDtype::kBf16;
  // The conversions of the active path, chosen once for the whole write.
  const auto narrow = TILEKIT_DISPATCH(ConvertF32ToBf16);
  const auto widen = TILEKIT_DISPATCH(ConvertBf16ToF32);
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
      narrow(kf, reinterpret_cast<uint16_t*>(kd), k_row);
      narrow(vf, reinterpret_cast<uint16_t*>(vd), v_row);
    } else {
      const auto* kb = reinterpret_cast<const uint16_t*>(ks);
      const auto* vb = reinterpret_cast<const uint16_t*>(vs);
      widen(kb, reinterpret_cast<float*>(kd), k_row);
      widen(vb, reinterpret_cast<float*>(vd), v_row);
    }
  }
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

}  // namespace tilekit

#endif  // TILEKIT_ATTENTION_KV_CACHE_IMPL_H_

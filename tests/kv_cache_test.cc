// The paged KV cache: its size before allocation, block management (sharing,
// reuse), and writes from strided views cast to the cache dtype, on every path;
// the misuses the cache refuses (issue 27: a length one short of the write, a
// released block in a live table), each with its message and outputs untouched.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "attention_reference.h"
#include "harness.h"

namespace tilekit {
namespace {

using testing::PathTest;

KvCacheConfig SmallConfig(KvDtype dtype) {
  KvCacheConfig cfg;
  cfg.layers = 2;
  cfg.kv_heads = 3;
  cfg.head_dim = 17;
  cfg.v_head_dim = 9;
  cfg.block_tokens = 4;
  cfg.num_blocks = 6;
  cfg.dtype = dtype;
  return cfg;
}

TEST(KvCacheBlocks, SizeIsKnownBeforeAllocation) {
  const KvCacheConfig cfg = SmallConfig(KvDtype::kBf16);
  size_t bytes = 0;
  ASSERT_EQ(KvCache::bytes_needed(cfg, &bytes), Status::kOk);
  EXPECT_EQ(bytes, size_t{6} * 2 * 4 * 3 * (17 + 9) * 2);  // blocks × layers × tokens × heads × (d + dv) × 2 B
  KvCache cache;
  ASSERT_EQ(cache.init(cfg), Status::kOk);
  EXPECT_EQ(cache.bytes(), bytes);
  KvCacheConfig bad = cfg;
  bad.block_tokens = 0;
  EXPECT_EQ(KvCache::bytes_needed(bad, &bytes), Status::kInvalidArgument);
  bad = cfg;
  bad.num_blocks = SIZE_MAX / 4;
  EXPECT_NE(KvCache::bytes_needed(bad, &bytes), Status::kOk);
}

// kv_cache_fuzz: head_dim + v_head_dim = 2 x 2^63 wrapped to 0, so bytes_needed
// reported 0 bytes and init accepted the config with an empty pool.
TEST(KvCacheBlocks, HeadDimSumOverflowIsRefused) {
  KvCacheConfig cfg = SmallConfig(KvDtype::kF32);
  cfg.head_dim = SIZE_MAX / 2 + 1;
  cfg.v_head_dim = 0;  // the same as head_dim
  size_t bytes = 7;
  EXPECT_EQ(KvCache::bytes_needed(cfg, &bytes), Status::kOverflow);
  KvCache cache;
  EXPECT_EQ(cache.init(cfg), Status::kOverflow);
  EXPECT_TRUE(cache.empty());
}

TEST(KvCacheBlocks, AllocateShareRelease) {
  KvCache cache;
  KvCacheConfig cfg = SmallConfig(KvDtype::kF32);
  cfg.num_blocks = 2;
  ASSERT_EQ(cache.init(cfg), Status::kOk);
  uint32_t a, b, c;
  ASSERT_EQ(cache.allocate_block(&a), Status::kOk);
  ASSERT_EQ(cache.allocate_block(&b), Status::kOk);
  EXPECT_NE(a, b);
  EXPECT_EQ(cache.allocate_block(&c), Status::kOutOfMemory);
  ASSERT_EQ(cache.share_block(a), Status::kOk);  // a prefix shared by two sequences
  ASSERT_EQ(cache.release_block(a), Status::kOk);
  EXPECT_EQ(cache.free_blocks(), 0u);
  ASSERT_EQ(cache.release_block(a), Status::kOk);
  EXPECT_EQ(cache.free_blocks(), 1u);
  EXPECT_EQ(cache.release_block(a), Status::kInvalidArgument);
  ASSERT_EQ(cache.allocate_block(&c), Status::kOk);
  EXPECT_EQ(c, a);
}

class KvCacheTest : public PathTest {};

// Writes tokens in pieces as a sequence grows block by block; what was stored
// never moves, and every row reads back as the cast of its source.
TEST_P(KvCacheTest, WritesGrowBlockByBlockAndCast) {
  TILEKIT_SEED_TRACE();
  for (KvDtype dtype : {KvDtype::kF32, KvDtype::kBf16}) {
    const KvCacheConfig cfg = SmallConfig(dtype);
    KvCache cache;
    ASSERT_EQ(cache.init(cfg), Status::kOk);
    const size_t tokens = 21, ks = 3 * 17 + 2, vs = 3 * 9 + 5;  // strided: slices of a fused QKV
    testing::Rng rng(static_cast<uint64_t>(dtype) + 1);
    std::vector<float> k(tokens * ks), v(tokens * vs);
    rng.fill(k.data(), k.size());
    rng.fill(v.data(), v.size());
    std::vector<uint32_t> table;
    for (size_t done = 0; done < tokens;) {
      const size_t n = std::min<size_t>(done == 0 ? 7 : 1 + done % 3, tokens - done);
      while (table.size() * cfg.block_tokens < done + n) {
        uint32_t id;
        ASSERT_EQ(cache.allocate_block(&id), Status::kOk);
        table.push_back(id);
      }
      const KvSequence seq{table.data(), table.size(), done};
      ASSERT_EQ(kv_cache_write(cache, 1, seq, done, heads_view<const float>(k.data() + done * ks, n, 3, 17, ks),
                               heads_view<const float>(v.data() + done * vs, n, 3, 9, vs)),
                Status::kOk)
          << last_error();
      done += n;
    }
    for (size_t t = 0; t < tokens; ++t) {
      const uint32_t block = table[t / cfg.block_tokens];
      const size_t slot = t % cfg.block_tokens;
      for (size_t i = 0; i < 3 * 17; ++i) {
        const float want = dtype == KvDtype::kBf16 ? bf16_to_f32(f32_to_bf16(k[t * ks + i])) : k[t * ks + i];
        float got;
        if (dtype == KvDtype::kBf16) {
          got = bf16_to_f32(reinterpret_cast<const bf16*>(cache.key_rows(1, block))[slot * 51 + i]);
        } else {
          got = reinterpret_cast<const float*>(cache.key_rows(1, block))[slot * 51 + i];
        }
        ASSERT_EQ(got, want) << "t=" << t << " i=" << i;
      }
      for (size_t i = 0; i < 3 * 9; ++i) {
        const float want = dtype == KvDtype::kBf16 ? bf16_to_f32(f32_to_bf16(v[t * vs + i])) : v[t * vs + i];
        float got;
        if (dtype == KvDtype::kBf16) {
          got = bf16_to_f32(reinterpret_cast<const bf16*>(cache.value_rows(1, block))[slot * 27 + i]);
        } else {
          got = reinterpret_cast<const float*>(cache.value_rows(1, block))[slot * 27 + i];
        }
        ASSERT_EQ(got, want) << "t=" << t << " i=" << i;
      }
    }
  }
}

TEST_P(KvCacheTest, Bf16SourcesWidenIntoAnF32Cache) {
  KvCache cache;
  KvCacheConfig cfg = SmallConfig(KvDtype::kF32);
  ASSERT_EQ(cache.init(cfg), Status::kOk);
  uint32_t id;
  ASSERT_EQ(cache.allocate_block(&id), Status::kOk);
  std::vector<bf16> k(2 * 51), v(2 * 27);
  for (size_t i = 0; i < k.size(); ++i) k[i] = f32_to_bf16(0.5f + i);
  for (size_t i = 0; i < v.size(); ++i) v[i] = f32_to_bf16(-1.5f - i);
  const KvSequence seq{&id, 1, 0};
  // Rows 0 and 1 first (a write may not leave a gap), then the two checked.
  for (size_t pos : {0, 2}) {
    ASSERT_EQ(kv_cache_write(cache, 0, seq, pos, heads_view<const bf16>(k.data(), 2, 3, 17),
                             heads_view<const bf16>(v.data(), 2, 3, 9)),
              Status::kOk)
        << last_error();
  }
  const float* kr = reinterpret_cast<const float*>(cache.key_rows(0, id));
  const float* vr = reinterpret_cast<const float*>(cache.value_rows(0, id));
  for (size_t i = 0; i < k.size(); ++i) ASSERT_EQ(kr[2 * 51 + i], bf16_to_f32(k[i]));
  for (size_t i = 0; i < v.size(); ++i) ASSERT_EQ(vr[2 * 27 + i], bf16_to_f32(v[i]));
}

TEST_P(KvCacheTest, BadWritesAreReportedAndTheCacheUntouched) {
  KvCache cache;
  ASSERT_EQ(cache.init(SmallConfig(KvDtype::kF32)), Status::kOk);
  uint32_t id;
  ASSERT_EQ(cache.allocate_block(&id), Status::kOk);
  std::memset(cache.key_rows(0, id), 0, cache.k_block_bytes());
  std::vector<float> k(5 * 51, 1.f), v(5 * 27, 1.f);
  const KvSequence seq{&id, 1, 0};
  const auto kk = heads_view<const float>(k.data(), 5, 3, 17), vv = heads_view<const float>(v.data(), 5, 3, 9);
  EXPECT_EQ(kv_cache_write(cache, 0, seq, 0, kk, vv), Status::kInvalidArgument);  // 5 tokens > one block of 4
  EXPECT_NE(std::string(last_error()).find("beyond"), std::string::npos) << last_error();
  EXPECT_EQ(kv_cache_write(cache, 2, seq, 0, heads_view<const float>(k.data(), 1, 3, 17),
                           heads_view<const float>(v.data(), 1, 3, 9)),
            Status::kInvalidArgument);  // layer 2 of 2
  EXPECT_EQ(kv_cache_write(cache, 0, seq, 0, heads_view<const float>(k.data(), 1, 3, 17),
                           heads_view<const float>(v.data(), 2, 3, 9)),
            Status::kShapeMismatch);
  EXPECT_EQ(kv_cache_write(cache, 0, KvSequence{nullptr, 1, 0}, 0, heads_view<const float>(k.data(), 1, 3, 17),
                           heads_view<const float>(v.data(), 1, 3, 9)),
            Status::kNullPointer);
  const auto* inside = reinterpret_cast<const float*>(cache.key_rows(0, id));
  EXPECT_EQ(kv_cache_write(cache, 0, seq, 0, heads_view(inside, 1, 3, 17), heads_view<const float>(v.data(), 1, 3, 9)),
            Status::kAliasing);
  for (size_t i = 0; i < 4 * 51; ++i) ASSERT_EQ(reinterpret_cast<const float*>(cache.key_rows(0, id))[i], 0.f);
}

// A small cache and one sequence of it, with random K/V for `tokens` positions
// kept beside it, and the fp64 reference of a decode step over any prefix.
struct Decoding {
  KvCache cache;
  std::vector<uint32_t> table;
  std::vector<float> k, v, q;
  static constexpr size_t kHeads = 2, kD = 8, kBlock = 4;

  void Init(size_t tokens, testing::Rng& rng) {
    KvCacheConfig cfg;
    cfg.layers = 2;
    cfg.kv_heads = kHeads;
    cfg.head_dim = kD;
    cfg.block_tokens = kBlock;
    cfg.num_blocks = 8;
    ASSERT_EQ(cache.init(cfg), Status::kOk);
    k.resize(tokens * kHeads * kD);
    v.resize(tokens * kHeads * kD);
    q.resize(kHeads * kD);
    rng.fill(k.data(), k.size());
    rng.fill(v.data(), v.size());
    rng.fill(q.data(), q.size());
  }
  // Blocks for [0, end), then K/V of [pos, end) into `layer`.
  void Write(size_t layer, size_t pos, size_t end) {
    while (table.size() * kBlock < end) {
      uint32_t id;
      ASSERT_EQ(cache.allocate_block(&id), Status::kOk);
      table.push_back(id);
    }
    const size_t row = kHeads * kD;
    ASSERT_EQ(kv_cache_write(cache, layer, KvSequence{table.data(), table.size(), end}, pos,
                             heads_view<const float>(k.data() + pos * row, end - pos, kHeads, kD, row),
                             heads_view<const float>(v.data() + pos * row, end - pos, kHeads, kD, row)),
              Status::kOk)
        << last_error();
  }
  Status Attend(size_t layer, size_t length, std::vector<float>* out) const {
    return attention(heads_view<const float>(q.data(), 1, kHeads, kD), cache, layer,
                     KvSequence{table.data(), table.size(), length}, heads_view(out->data(), 1, kHeads, kD));
  }
  // The step's output against the fp64 reference over positions [0, length).
  void ExpectMatches(const std::vector<float>& out, size_t length) const {
    testing::AttentionProblem pr;
    pr.t = 1, pr.s = length, pr.hq = kHeads, pr.hkv = kHeads, pr.d = kD, pr.dv = kD;
    pr.q = q.data(), pr.k = k.data(), pr.v = v.data();
    pr.q_stride = pr.k_stride = pr.v_stride = kHeads * kD;
    pr.tile_keys = kBlock;
    const testing::AttentionReference ref = testing::AttentionReference64(pr);
    for (size_t i = 0; i < ref.o.size(); ++i) {
      ASSERT_LE(std::fabs(out[i] - ref.o[i]), ref.bound[i]) << "length " << length << ", out[" << i << "]";
    }
  }
};

void ExpectRefused(Status got, Status want, const char* needle, const std::vector<float>& out) {
  EXPECT_EQ(got, want) << status_name(got) << ": " << last_error();
  EXPECT_NE(std::string(last_error()).find(needle), std::string::npos) << "message: " << last_error();
  for (float f : out) ASSERT_EQ(f, 7.f) << "a refused call wrote its output";
}

// Issue 27: a decode step that writes K/V at position p and leaves the length
// at p (the engine forgot to advance it) read one position short and returned
// kOk, off by up to 4.0. Inside a block (p = 9) and at a block's first row (p = 12).
TEST_P(KvCacheTest, LengthOneShortOfTheWriteIsRefused) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(11);
  Decoding dec;
  dec.Init(13, rng);
  dec.Write(0, 0, 9);  // the prompt
  std::vector<float> out(Decoding::kHeads * Decoding::kD, 7.f);
  for (size_t p = 9; p < 13; ++p) {
    dec.Write(0, p, p + 1);
    if (p == 9 || p == 12) {
      ExpectRefused(dec.Attend(0, p, &out), Status::kInvalidArgument, "written", out);
    }
    ASSERT_EQ(dec.Attend(0, p + 1, &out), Status::kOk) << last_error();
    dec.ExpectMatches(out, p + 1);
    std::fill(out.begin(), out.end(), 7.f);
  }
}

// A write that opens a block after a gap of whole blocks: the check of pos's
// own block sees no gap (pos is its first row), so the block before it must be
// full. Found by graph_fuzz (block_tokens 1: position 2 written after 0 only).
// And after a rewind (a shorter rewrite), the rows past it no longer count.
TEST_P(KvCacheTest, GapOfWholeBlocksIsRefused) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(13);
  Decoding dec;
  dec.Init(16, rng);
  constexpr size_t kBt = Decoding::kBlock, kRow = Decoding::kHeads * Decoding::kD;
  dec.Write(0, 0, kBt);  // block 0 full
  while (dec.table.size() < 3) {
    uint32_t id;
    ASSERT_EQ(dec.cache.allocate_block(&id), Status::kOk);
    dec.table.push_back(id);
  }
  auto write_at = [&](size_t pos, size_t end) {
    return kv_cache_write(dec.cache, 0, KvSequence{dec.table.data(), dec.table.size(), end}, pos,
                          heads_view<const float>(dec.k.data() + pos * kRow, end - pos, Decoding::kHeads, Decoding::kD, kRow),
                          heads_view<const float>(dec.v.data() + pos * kRow, end - pos, Decoding::kHeads, Decoding::kD, kRow));
  };
  EXPECT_EQ(write_at(2 * kBt, 2 * kBt + 1), Status::kInvalidArgument);  // block 1 skipped
  EXPECT_NE(std::string(last_error()).find("unwritten"), std::string::npos) << last_error();
  EXPECT_EQ(dec.cache.written_rows(0, dec.table[2]), 0u) << "a refused write counted its rows";
  ASSERT_EQ(write_at(kBt, 2 * kBt + 1), Status::kOk) << last_error();  // in order: accepted
  // Rewind: rewrite [1, 2) only. Positions from 2 on are no longer written, in
  // block 0 and in the blocks after it, so opening block 2 again is a gap.
  ASSERT_EQ(write_at(1, 2), Status::kOk) << last_error();
  EXPECT_EQ(dec.cache.written_rows(0, dec.table[1]), 0u);
  EXPECT_EQ(dec.cache.written_rows(0, dec.table[2]), 0u);
  EXPECT_EQ(write_at(2 * kBt, 2 * kBt + 1), Status::kInvalidArgument);
  EXPECT_EQ(write_at(kBt, kBt + 1), Status::kInvalidArgument);  // block 0 holds 2 rows of 4
  ASSERT_EQ(write_at(2, 2 * kBt + 1), Status::kOk) << last_error();
  std::vector<float> out(kRow, 7.f);
  ASSERT_EQ(dec.Attend(0, 2 * kBt + 1, &out), Status::kOk) << last_error();
  dec.ExpectMatches(out, 2 * kBt + 1);
}

// Issue 27: attention over a block id already released returned kOk.
TEST_P(KvCacheTest, ReleasedBlockInATableIsRefused) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(12);
  Decoding dec;
  dec.Init(8, rng);
  dec.Write(0, 0, 8);
  std::vector<float> out(Decoding::kHeads * Decoding::kD, 7.f);
  ASSERT_EQ(dec.Attend(0, 8, &out), Status::kOk) << last_error();
  dec.ExpectMatches(out, 8);
  std::fill(out.begin(), out.end(), 7.f);
  ASSERT_EQ(dec.cache.release_block(dec.table[1]), Status::kOk);
  ExpectRefused(dec.Attend(0, 8, &out), Status::kInvalidArgument, "released", out);
}

// The same misuse with the block taken again by another sequence (and written
// whole by it, so the written rows say nothing): the generation the first
// sequence kept refuses it.
TEST_P(KvCacheTest, BlockTakenAgainByAnotherSequenceIsRefused) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(13);
  Decoding dec;
  dec.Init(8, rng);
  dec.Write(0, 0, 8);
  std::vector<uint32_t> gens;
  for (uint32_t id : dec.table) gens.push_back(dec.cache.generation(id));
  std::vector<float> out(Decoding::kHeads * Decoding::kD, 7.f);
  const KvSequence a{dec.table.data(), dec.table.size(), 8, gens.data()};
  const auto q = heads_view<const float>(dec.q.data(), 1, Decoding::kHeads, Decoding::kD);
  const auto o = heads_view(out.data(), 1, Decoding::kHeads, Decoding::kD);
  ASSERT_EQ(attention(q, dec.cache, 0, a, o), Status::kOk) << last_error();
  std::fill(out.begin(), out.end(), 7.f);
  ASSERT_EQ(dec.cache.release_block(dec.table[1]), Status::kOk);
  uint32_t b = 0, b_gen = 0;
  ASSERT_EQ(dec.cache.allocate_block(&b, &b_gen), Status::kOk);
  ASSERT_EQ(b, dec.table[1]);  // the most recently freed block comes back first
  EXPECT_EQ(b_gen, gens[1] + 2);
  const KvSequence other{&b, 1, 4, &b_gen};
  const size_t row = Decoding::kHeads * Decoding::kD;
  ASSERT_EQ(kv_cache_write(dec.cache, 0, other, 0, heads_view<const float>(dec.k.data(), 4, Decoding::kHeads, Decoding::kD, row),
                           heads_view<const float>(dec.v.data(), 4, Decoding::kHeads, Decoding::kD, row)),
            Status::kOk)
      << last_error();
  ExpectRefused(attention(q, dec.cache, 0, a, o), Status::kInvalidArgument, "taken again", out);
  std::vector<float> k1(row, 1.f);
  EXPECT_EQ(kv_cache_write(dec.cache, 0, a, 5, heads_view<const float>(k1.data(), 1, Decoding::kHeads, Decoding::kD),
                           heads_view<const float>(k1.data(), 1, Decoding::kHeads, Decoding::kD)),
            Status::kInvalidArgument);
  EXPECT_NE(std::string(last_error()).find("taken again"), std::string::npos) << last_error();
}

// KvSequenceState: reserve, write and attend per layer, advance; layer 0
// attends every position, layers 1 and 2 a sliding window of 5, so their
// table drops (releases) blocks as the sequence moves on. Every step's output
// against the fp64 reference over the whole K/V (windowed where the layer is),
// the blocks held against what the windows need, the pool's free count
// against what the state holds.
TEST_P(KvCacheTest, SequenceStateReservesAdvancesAndDropsBehindWindows) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(14);
  constexpr size_t kLayers = 3, kHkv = 2, kHq = 4, kD = 8, kBt = 2, kTokens = 23, kWindow = 5;
  const size_t windows[kLayers] = {0, kWindow, kWindow};
  KvCacheConfig cfg;
  cfg.layers = kLayers;
  cfg.kv_heads = kHkv;
  cfg.head_dim = kD;
  cfg.block_tokens = kBt;
  cfg.num_blocks = 40;
  KvCache cache;
  ASSERT_EQ(cache.init(cfg), Status::kOk);
  const size_t row = kHkv * kD;
  std::vector<float> k(kLayers * kTokens * row), v(k.size()), q(kTokens * kHq * kD);
  rng.fill(k.data(), k.size());
  rng.fill(v.data(), v.size());
  rng.fill(q.data(), q.size());
  KvSequenceState seq;
  ASSERT_EQ(seq.init(cache, kTokens, windows), Status::kOk);
  EXPECT_EQ(seq.reserve(kTokens + 1), Status::kInvalidArgument);  // past max_tokens
  ASSERT_EQ(seq.reserve(1), Status::kOk);
  EXPECT_EQ(seq.init(cache, kTokens, windows), Status::kInvalidArgument);  // would lose the blocks
  EXPECT_NE(std::string(last_error()).find("still held"), std::string::npos) << last_error();
  for (size_t pos = 0; pos < kTokens;) {
    const size_t n = std::min<size_t>(pos == 0 ? 7 : pos % 4 == 0 ? 3 : 1, kTokens - pos);
    ASSERT_EQ(seq.reserve(n), Status::kOk) << last_error();
    for (size_t l = 0; l < kLayers; ++l) {
      const float* kl = k.data() + (l * kTokens + pos) * row;
      const float* vl = v.data() + (l * kTokens + pos) * row;
      ASSERT_EQ(kv_cache_write(cache, l, seq.step(l, n), seq.length(), heads_view<const float>(kl, n, kHkv, kD),
                               heads_view<const float>(vl, n, kHkv, kD)),
                Status::kOk)
          << "layer " << l << " at " << pos << ": " << last_error();
      std::vector<float> out(n * kHq * kD, 7.f);
      AttentionParams p;
      p.mask.causal = true;
      p.mask.window = windows[l];
      const auto qv = heads_view<const float>(q.data() + pos * kHq * kD, n, kHq, kD);
      ASSERT_EQ(attention(qv, cache, l, seq.step(l, n), heads_view(out.data(), n, kHq, kD), p), Status::kOk)
          << "layer " << l << " at " << pos << ": " << last_error();
      testing::AttentionProblem pr;
      pr.t = n, pr.s = pos + n, pr.hq = kHq, pr.hkv = kHkv, pr.d = kD, pr.dv = kD;
      pr.q = qv.data, pr.k = k.data() + l * kTokens * row, pr.v = v.data() + l * kTokens * row;
      pr.q_stride = kHq * kD, pr.k_stride = pr.v_stride = row;
      pr.causal = true;
      pr.window = windows[l];
      pr.tile_keys = kBt;
      const testing::AttentionReference ref = testing::AttentionReference64(pr);
      for (size_t i = 0; i < ref.o.size(); ++i) {
        ASSERT_LE(std::fabs(out[i] - ref.o[i]), ref.bound[i]) << "layer " << l << " at " << pos << ", out[" << i << "]";
      }
      if (windows[l] && pos > kWindow + kBt) {  // a wider window than the table was kept for reads dropped blocks
        p.mask.window = 0;
        std::fill(out.begin(), out.end(), 7.f);
        ExpectRefused(attention(qv, cache, l, seq.step(l, n), heads_view(out.data(), n, kHq, kD), p),
                      Status::kInvalidArgument, "dropped", out);
      }
    }
    ASSERT_EQ(seq.advance(n), Status::kOk) << last_error();
    pos += n;
    EXPECT_EQ(seq.length(), pos);
    // The global table holds every block; the windowed one those at or after
    // the next query's first key, pos + 1 - window.
    const size_t first = pos + 1 > kWindow ? pos + 1 - kWindow : 0;
    const size_t held = div_ceil(pos, kBt) + (div_ceil(pos, kBt) - first / kBt);
    EXPECT_EQ(seq.blocks_held(), held) << "at " << pos;
    EXPECT_EQ(cache.free_blocks(), cfg.num_blocks - held) << "at " << pos;
  }
  EXPECT_EQ(seq.advance(1), Status::kInvalidArgument);  // nothing reserved
  KvSequenceState moved = std::move(seq);  // the blocks go with it; the source is as before init
  EXPECT_EQ(seq.reserve(1), Status::kInvalidArgument);
  EXPECT_EQ(seq.advance(0), Status::kInvalidArgument);
  seq.release();  // nothing to give back
  EXPECT_EQ(moved.length(), kTokens);
  seq = std::move(moved);
  seq.release();
  EXPECT_EQ(cache.free_blocks(), cfg.num_blocks);
  EXPECT_EQ(seq.length(), 0u);
  // A reservation the pool cannot hold takes nothing.
  KvSequenceState big;
  ASSERT_EQ(big.init(cache, 200), Status::kOk);
  EXPECT_EQ(big.reserve(200), Status::kOutOfMemory);
  EXPECT_EQ(cache.free_blocks(), cfg.num_blocks);
  EXPECT_EQ(big.blocks_held(), 0u);
}

TILEKIT_INSTANTIATE_PATHS(KvCacheTest);

}  // namespace
}  // namespace tilekit

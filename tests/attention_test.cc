// Flash attention against an fp64 softmax(QKᵀ)V reference with the same masks,
// on every path: plain strided K/V and the paged cache (fp32 and bf16), GQA/MQA,
// head dims, causal offsets, windows, softcap, additive masks, invariants
// (chunked == one-shot, decode == prefill, paged == contiguous), bad input,
// determinism over thread counts. The reference and its error bound, derived
// from the fp32 arithmetic, are tests/attention_reference.h's.
#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <thread>
#include <tuple>
#include <vector>

#include "attention_reference.h"
#include "bf16_store_checks.h"
#include "harness.h"
#include "tilekit/attention/plan.h"

namespace tilekit {
namespace {

using testing::PathTest;
constexpr double kU = testing::kF32Eps;
constexpr float kInf = std::numeric_limits<float>::infinity();

struct Case {
  size_t t = 1, s = 1, hq = 1, hkv = 1, d = 16, dv = 16;
  bool causal = false;
  size_t window = 0;
  float softcap = 0.f;
  bool additive = false;
  bool kv_bf16 = false;
  bool out_bf16 = false;
};

std::string Describe(const Case& c) {
  char buf[200];
  std::snprintf(buf, sizeof(buf), "T=%zu S=%zu Hq=%zu Hkv=%zu d=%zu dv=%zu causal=%d window=%zu softcap=%g mask=%d kv_bf16=%d out_bf16=%d",
                c.t, c.s, c.hq, c.hkv, c.d, c.dv, c.causal, c.window, c.softcap, c.additive, c.kv_bf16, c.out_bf16);
  return buf;
}

float RoundBf16(float x) { return bf16_to_f32(f32_to_bf16(x)); }

// Random data of one case; K/V already rounded to bf16 when the case stores bf16.
struct Data {
  std::vector<float> q, k, v, mask;
  size_t q_stride, k_stride, v_stride;
};

Data MakeData(const Case& c, testing::Rng& rng) {
  Data x;
  // Token strides wider than the rows: Q, K, V as slices of a fused projection.
  x.q_stride = c.hq * c.d + 3;
  x.k_stride = c.hkv * c.d + 5;
  x.v_stride = c.hkv * c.dv + 1;
  x.q.resize(c.t * x.q_stride);
  x.k.resize(c.s * x.k_stride);
  x.v.resize(c.s * x.v_stride);
  rng.fill(x.q.data(), x.q.size(), -2.f, 2.f);
  rng.fill(x.k.data(), x.k.size(), -2.f, 2.f);
  rng.fill(x.v.data(), x.v.size());
  if (c.kv_bf16) {
    for (float& f : x.k) f = RoundBf16(f);
    for (float& f : x.v) f = RoundBf16(f);
  }
  if (c.additive) {
    x.mask.resize(c.t * c.s);
    for (float& f : x.mask) f = rng.below(5) == 0 ? -kInf : rng.uniform(-2.f, 2.f);
  }
  return x;
}

AttentionParams Params(const Case& c, const Data& x) {
  AttentionParams p;
  p.mask.causal = c.causal;
  p.mask.window = c.window;
  p.mask.softcap = c.softcap;
  if (c.additive) p.mask.additive = matrix(x.mask.data(), c.t, c.s);
  return p;
}

// fp64 reference rows and their error bounds.
using Reference = testing::AttentionReference;

// The bounds of the paged runs (bound_cache) count the tiles of a cache of
// kPagedBlock-token blocks: a tile never crosses a block.
constexpr size_t kPagedBlock = 16;

// Per query token of one call of case c on the active path: the arithmetic
// its task runs (tests/attention_reference.h), by the kernel's own rules
// (attention/plan.h: the tasks' tokens, the tiled or row-by-row path, what the
// path does with bf16 K/V).
std::vector<unsigned char> TokenKernels(const Case& c) {
  std::vector<unsigned char> kernels(c.t, testing::kFp32);
  if (!c.kv_bf16) return kernels;
  const detail::AttnBf16 bf16 = detail::AttnBf16Of(cpu::active_isa());
  detail::AttnShape sh;
  sh.group = c.hq / c.hkv;
  detail::AttnSeq sq;
  const float mask = 0.f;
  if (c.additive) sq.mask = &mask;
  const size_t per_task = detail::AttnTokensPerTask(sh.group);
  for (size_t t0 = 0; t0 < c.t; t0 += per_task) {
    const size_t t1 = std::min(c.t, t0 + per_task);
    unsigned char k = testing::kFp32;
    if (detail::AttnTiledTask(sh, sq, t1 - t0)) {
      if (detail::AttnMatrixPath(cpu::active_isa(), true)) {
        k = testing::kMatrixBf16;  // the hook's order: the matrix units first
      } else if (bf16.tiled) {
        k = testing::kTiledBf16;
      }
    } else if (detail::AttnDecodeGroup(sh, sq, t1 - t0)) {
      if (bf16.dot) k = testing::kSplitBf16;
    }
    std::fill(kernels.begin() + t0, kernels.begin() + t1, k);
  }
  return kernels;
}

// The bf16 dot's unit roundoff: BFDOT rounds to odd (simd/bf16_dot-inl.h).
double DotU() { return cpu::isa_converts_bf16(cpu::active_isa()) && TILEKIT_ARCH_ARM64 ? 2 * kU : kU; }

Reference Reference64(const Case& c, const Data& x, const std::vector<unsigned char>* kernels = nullptr) {
  const std::vector<unsigned char> own = TokenKernels(c);
  testing::AttentionProblem p;
  p.token_kernel = kernels ? kernels->data() : own.data();
  p.dot_u = DotU();
  p.cache_tile_keys = kPagedBlock;
  p.t = c.t, p.s = c.s, p.hq = c.hq, p.hkv = c.hkv, p.d = c.d, p.dv = c.dv;
  p.q = x.q.data(), p.k = x.k.data(), p.v = x.v.data();
  p.q_stride = x.q_stride, p.k_stride = x.k_stride, p.v_stride = x.v_stride;
  p.causal = c.causal;
  p.window = c.window;
  p.softcap = c.softcap;
  if (c.additive) p.mask = x.mask.data(), p.mask_ld = c.s;
  p.out_bf16 = c.out_bf16;
  return testing::AttentionReference64(p);
}

// The reference with the bounds of a run over a cache of kPagedBlock-token blocks.
Reference PagedReference64(const Case& c, const Data& x) {
  Reference ref = Reference64(c, x);
  ref.bound = ref.bound_cache;
  return ref;
}

// The output of a case as fp32 [T][Hq][dv] (packed), whatever it was written as.
struct Output {
  std::vector<float> f32;
  std::vector<bf16> b16;
  std::vector<float> lse;
  size_t stride;
  std::vector<float> Values(const Case& c) const {
    std::vector<float> o(c.t * c.hq * c.dv);
    for (size_t t = 0; t < c.t; ++t) {
      for (size_t i = 0; i < c.hq * c.dv; ++i) {
        o[t * c.hq * c.dv + i] = c.out_bf16 ? bf16_to_f32(b16[t * stride + i]) : f32[t * stride + i];
      }
    }
    return o;
  }
};

Output MakeOutput(const Case& c) {
  Output out;
  out.stride = c.hq * c.dv + 2;
  if (c.out_bf16) {
    out.b16.assign(c.t * out.stride, bf16{testing::kPoisonBf16});
  } else {
    out.f32.assign(c.t * out.stride, testing::PoisonF32());
  }
  out.lse.assign(c.t * c.hq, testing::PoisonF32());
  return out;
}

Status RunPlain(const Case& c, const Data& x, Output* out, Executor* ex = nullptr) {
  AttentionParams p = Params(c, x);
  p.executor = ex;
  const auto q = heads_view<const float>(x.q.data(), c.t, c.hq, c.d, x.q_stride);
  if (c.kv_bf16) {
    std::vector<bf16> kb(x.k.size()), vb(x.v.size());
    for (size_t i = 0; i < kb.size(); ++i) kb[i] = f32_to_bf16(x.k[i]);
    for (size_t i = 0; i < vb.size(); ++i) vb[i] = f32_to_bf16(x.v[i]);
    const auto k = heads_view<const bf16>(kb.data(), c.s, c.hkv, c.d, x.k_stride);
    const auto v = heads_view<const bf16>(vb.data(), c.s, c.hkv, c.dv, x.v_stride);
    if (c.out_bf16) {
      return attention(q, k, v, heads_view(out->b16.data(), c.t, c.hq, c.dv, out->stride), p, out->lse.data());
    }
    return attention(q, k, v, heads_view(out->f32.data(), c.t, c.hq, c.dv, out->stride), p, out->lse.data());
  }
  const auto k = heads_view<const float>(x.k.data(), c.s, c.hkv, c.d, x.k_stride);
  const auto v = heads_view<const float>(x.v.data(), c.s, c.hkv, c.dv, x.v_stride);
  if (c.out_bf16) {
    return attention(q, k, v, heads_view(out->b16.data(), c.t, c.hq, c.dv, out->stride), p, out->lse.data());
  }
  return attention(q, k, v, heads_view(out->f32.data(), c.t, c.hq, c.dv, out->stride), p, out->lse.data());
}

// A paged cache holding the case's K/V in shuffled blocks, the blocks past the
// sequence (and the unused rows of its last block) filled with NaN.
struct Paged {
  KvCache cache;
  std::vector<uint32_t> table;
  KvSequence seq;
};

void FillNaN(KvCache& cache, uint32_t block) {
  const KvCacheConfig& c = cache.config();
  for (size_t layer = 0; layer < c.layers; ++layer) {
    std::memset(cache.key_rows(layer, block), 0xFF, cache.k_block_bytes());
    std::memset(cache.value_rows(layer, block), 0xFF, cache.v_block_bytes());
  }
}

void MakePaged(const Case& c, const Data& x, size_t block_tokens, size_t layer, Paged* pg, testing::Rng& rng) {
  KvCacheConfig cfg;
  cfg.layers = layer + 1;
  cfg.kv_heads = c.hkv;
  cfg.head_dim = c.d;
  cfg.v_head_dim = c.dv;
  cfg.block_tokens = block_tokens;
  const size_t used = (c.s + block_tokens - 1) / block_tokens;
  cfg.num_blocks = used + 3;
  cfg.dtype = c.kv_bf16 ? KvDtype::kBf16 : KvDtype::kF32;
  ASSERT_EQ(pg->cache.init(cfg), Status::kOk) << last_error();
  for (uint32_t b = 0; b < cfg.num_blocks; ++b) FillNaN(pg->cache, b);
  // Take blocks in a scrambled order: the table, not the pool order, decides.
  std::vector<uint32_t> all;
  for (size_t i = 0; i < cfg.num_blocks; ++i) {
    uint32_t id;
    ASSERT_EQ(pg->cache.allocate_block(&id), Status::kOk);
    all.push_back(id);
  }
  std::shuffle(all.begin(), all.end(), rng.engine());
  pg->table.assign(all.begin(), all.begin() + used + 1);  // one spare block of NaN past the end
  pg->seq = KvSequence{pg->table.data(), pg->table.size(), c.s};
  const auto k = heads_view<const float>(x.k.data(), c.s, c.hkv, c.d, x.k_stride);
  const auto v = heads_view<const float>(x.v.data(), c.s, c.hkv, c.dv, x.v_stride);
  ASSERT_EQ(kv_cache_write(pg->cache, layer, pg->seq, 0, k, v), Status::kOk) << last_error();
}

Status RunPaged(const Case& c, const Data& x, const Paged& pg, size_t layer, Output* out, Executor* ex = nullptr) {
  AttentionParams p = Params(c, x);
  p.executor = ex;
  const auto q = heads_view<const float>(x.q.data(), c.t, c.hq, c.d, x.q_stride);
  if (c.out_bf16) {
    return attention(q, pg.cache, layer, pg.seq, heads_view(out->b16.data(), c.t, c.hq, c.dv, out->stride), p,
                     out->lse.data());
  }
  return attention(q, pg.cache, layer, pg.seq, heads_view(out->f32.data(), c.t, c.hq, c.dv, out->stride), p,
                   out->lse.data());
}

// One call of a chunked prefill over the paged cache of `full` (MakePaged):
// query tokens [done, done + c.t) of x, c.s = done + c.t, write their K/V
// again (the same values, so the written positions end at the chunk's end)
// and attend to the prefix (fp32 output).
Status RunChunk(const Case& c, const Data& x, Paged& pg, size_t done, Output* out) {
  KvSequence seq = pg.seq;
  seq.length = c.s;
  const Status written =
      kv_cache_write(pg.cache, 0, seq, done,
                     heads_view<const float>(x.k.data() + done * x.k_stride, c.t, c.hkv, c.d, x.k_stride),
                     heads_view<const float>(x.v.data() + done * x.v_stride, c.t, c.hkv, c.dv, x.v_stride));
  if (written != Status::kOk) return written;
  const auto q = heads_view<const float>(x.q.data() + done * x.q_stride, c.t, c.hq, c.d, x.q_stride);
  return attention(q, pg.cache, 0, seq, heads_view(out->f32.data(), c.t, c.hq, c.dv, out->stride), Params(c, x),
                   out->lse.data());
}

void Check(const Case& c, const Reference& ref, const Output& out, const char* what) {
  const std::vector<float> o = out.Values(c);
  for (size_t i = 0; i < o.size(); ++i) {
    ASSERT_TRUE(testing::WithinBound(std::fabs(o[i] - ref.o[i]), ref.bound[i] + 1e-37, what))
        << Describe(c) << " element " << i << " (t=" << i / (c.hq * c.dv) << ") got " << o[i] << " want " << ref.o[i];
  }
  for (size_t i = 0; i < ref.lse.size(); ++i) {
    if (std::isinf(ref.lse[i])) {
      ASSERT_EQ(out.lse[i], -kInf) << Describe(c) << " row " << i;
    } else {
      ASSERT_NEAR(out.lse[i], ref.lse[i], 1e-4 * (1 + std::fabs(ref.lse[i]))) << Describe(c) << " row " << i;
    }
  }
  // The padding between tokens stays untouched.
  for (size_t t = 0; t < c.t; ++t) {
    if (c.out_bf16) {
      ASSERT_EQ(out.b16[t * out.stride + c.hq * c.dv].bits, testing::kPoisonBf16);
    } else {
      uint32_t bits;
      std::memcpy(&bits, &out.f32[t * out.stride + c.hq * c.dv], 4);
      ASSERT_EQ(bits, 0x7FA5A5A5u);
    }
  }
}

void RunCase(const Case& c, uint64_t stream, bool paged = true) {
  SCOPED_TRACE(Describe(c));
  testing::Rng rng(stream);
  const Data x = MakeData(c, rng);
  const Reference ref = Reference64(c, x);
  Output plain = MakeOutput(c);
  ASSERT_EQ(RunPlain(c, x, &plain), Status::kOk) << last_error();
  Check(c, ref, plain, "plain");
  if (!paged || c.additive) return;
  Paged pg;
  MakePaged(c, x, kPagedBlock, 1, &pg, rng);
  Output out = MakeOutput(c);
  ASSERT_EQ(RunPaged(c, x, pg, 1, &out), Status::kOk) << last_error();
  Reference paged_ref = ref;
  paged_ref.bound = ref.bound_cache;
  Check(c, paged_ref, out, "paged");
  // Paged == contiguous: the same keys, in tiles cut at block boundaries.
  const std::vector<float> a = plain.Values(c), b = out.Values(c);
  for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], ref.bound[i] + ref.bound_cache[i] + 1e-37) << i;
}

class AttentionTest : public PathTest {};

TEST_P(AttentionTest, ShapesAgainstFp64) {
  TILEKIT_SEED_TRACE();
  const std::vector<size_t> sizes = {1, 2, 7, 31, 32, 33, 63, 64, 65, 127, 129, 300};
  testing::Rng pick(11);
  const size_t pairs = testing::Emulated() ? 10 : 40;
  for (size_t i = 0; i < pairs; ++i) {
    Case c;
    c.s = sizes[pick.below(sizes.size())];
    c.t = std::min(c.s, sizes[pick.below(sizes.size())]);
    if (i % 7 == 6) c.t = 1 + pick.below(c.s);  // random
    const size_t ratios[] = {1, 2, 4, 8};
    c.hkv = 1 + pick.below(2);
    c.hq = c.hkv * ratios[pick.below(4)];
    c.d = c.dv = 16 + pick.below(3) * 16 + (i % 3 == 0 ? 1 : 0);
    c.causal = i % 2 == 0;
    RunCase(c, 100 + i);
  }
}

TEST_P(AttentionTest, HeadDimsAndRatios) {
  TILEKIT_SEED_TRACE();
  const size_t dims[] = {64, 80, 96, 128, 256, 17, 33};
  size_t i = 0;
  for (size_t d : dims) {
    Case c;
    c.t = 5;
    c.s = 70;
    c.hq = 8;
    c.hkv = (i % 3 == 0) ? 1 : (i % 3 == 1 ? 2 : 8);  // MQA, GQA 4, MHA
    c.d = d;
    c.dv = i % 2 ? d : 48 + i;  // v_head_dim != head_dim too
    c.causal = true;
    RunCase(c, 200 + i++);
  }
}

// Decode (T = 1): the group's rows scored together (GroupScores: kDecodeRows
// rows at a time, then the rest of the group), for groups of 1 to 16 rows
// including ones no row block divides (3, 5, 7), and 17 (the tiled path), head dims around the vector
// (1, 17, 72, 80, 128), and key counts across a cache block (16), a tile (64)
// and a split-KV chunk (512), each ±1; fp32 and bf16 caches.
TEST_P(AttentionTest, DecodeGroupsHeadDimsAndLengths) {
  TILEKIT_SEED_TRACE();
  // Hq, Hkv: groups 1, 2, 3, 4, 5, 7, 8, 12, 16 (kAttnGroupMax) and 17 (past it: the tiled path).
  std::vector<std::array<size_t, 2>> groups = {{4, 4}, {4, 2}, {12, 4}, {8, 2}, {10, 2}, {14, 2}, {8, 1}, {24, 2}, {16, 1}, {17, 1}};
  const size_t dims[] = {72, 80, 1, 17, 128};
  std::vector<size_t> lengths = {1, 2, 13, 15, 16, 17, 63, 64, 65, 127, 509, 511, 512, 513, 1025};
  if (testing::Emulated()) {
    // The same groups, and tasks of several KV heads kept by {4, 4}, {4, 2}
    // and {12, 4}: the groups of 4 to 12 on one KV head, half the rows.
    groups = {{4, 4}, {4, 2}, {12, 4}, {4, 1}, {5, 1}, {7, 1}, {8, 1}, {12, 1}, {16, 1}, {17, 1}};
    lengths = {1, 16, 17, 65, 513};
  }
  size_t i = 0;
  for (const auto& hg : groups) {
    for (size_t s : lengths) {
      Case c;
      c.t = 1;
      c.s = s;
      c.hq = hg[0];
      c.hkv = hg[1];
      c.d = dims[i % 5];
      c.dv = i % 4 == 3 ? c.d + 16 : c.d;
      c.causal = i % 2 == 0;
      c.kv_bf16 = i % 3 == 1;
      if (i % 11 == 5) c.window = 1 + s / 2;
      if (i % 13 == 7) c.softcap = 3.f;
      RunCase(c, 250 + i++);
    }
  }
}

// Decode with 1, 2 and 3 threads: the same bits for groups no row block
// divides and keys across several split-KV chunks, fp32 and bf16 caches.
TEST_P(AttentionTest, DecodeThreadsAreBitwiseIdentical) {
  TILEKIT_SEED_TRACE();
  ThreadPool two(2), three(3);
  // {32, 1} and, emulated, {17, 1}: past kAttnGroupMax, the tiled path.
  const size_t tiled_group = testing::Emulated() ? 17 : 32;
  const size_t groups[][2] = {{12, 4}, {8, 1}, {4, 4}, {tiled_group, 1}};
  size_t i = 0;
  for (const auto& hg : groups) {
    for (bool bf16 : {false, true}) {
      Case c;
      c.t = 1;
      c.s = testing::Emulated() ? 1031 : 1537;
      c.hq = hg[0];
      c.hkv = hg[1];
      c.d = c.dv = i % 2 ? 80 : 72;
      c.causal = true;
      c.kv_bf16 = bf16;
      SCOPED_TRACE(Describe(c));
      testing::Rng rng(270 + i++);
      const Data x = MakeData(c, rng);
      Paged pg;
      MakePaged(c, x, kPagedBlock, 0, &pg, rng);
      Output one = MakeOutput(c), o2 = MakeOutput(c), o3 = MakeOutput(c);
      ASSERT_EQ(RunPaged(c, x, pg, 0, &one), Status::kOk);
      ASSERT_EQ(RunPaged(c, x, pg, 0, &o2, &two), Status::kOk);
      ASSERT_EQ(RunPaged(c, x, pg, 0, &o3, &three), Status::kOk);
      EXPECT_EQ(std::memcmp(one.f32.data(), o2.f32.data(), one.f32.size() * 4), 0);
      EXPECT_EQ(std::memcmp(one.f32.data(), o3.f32.data(), one.f32.size() * 4), 0);
      EXPECT_EQ(std::memcmp(one.lse.data(), o2.lse.data(), one.lse.size() * 4), 0);
      EXPECT_EQ(std::memcmp(one.lse.data(), o3.lse.data(), one.lse.size() * 4), 0);
      Check(c, PagedReference64(c, x), one, "threads");
    }
  }
}

TEST_P(AttentionTest, MasksWindowSoftcapAdditive) {
  TILEKIT_SEED_TRACE();
  size_t i = 0;
  for (size_t window : {1, 5, 64, 100}) {
    Case c;
    c.t = 40;
    c.s = 129;
    c.hq = 4;
    c.hkv = 2;
    c.d = c.dv = 32;
    c.causal = true;
    c.window = window;
    RunCase(c, 300 + i++);
  }
  Case sc;
  sc.t = 33;
  sc.s = 65;
  sc.hq = 2;
  sc.d = sc.dv = 40;
  sc.causal = true;
  sc.softcap = 3.f;
  RunCase(sc, 310);
  for (bool causal : {false, true}) {
    Case m = sc;
    m.softcap = i % 2 ? 0.f : 5.f;
    m.causal = causal;
    m.additive = true;
    RunCase(m, 320 + i++);
  }
  Case nc;  // no mask at all, T > S allowed without positions
  nc.t = 50;
  nc.s = 7;
  nc.hq = 3;
  nc.hkv = 1;
  nc.d = nc.dv = 24;
  RunCase(nc, 330, /*paged=*/false);
}

TEST_P(AttentionTest, Bf16CacheAndOutput) {
  TILEKIT_SEED_TRACE();
  size_t i = 0;
  for (bool out_bf16 : {false, true}) {
    for (size_t t : {1, 9, 64}) {
      Case c;
      // Emulated bf16 widening is slow: T = 1, 5 and 33 still take the
      // row-by-row kernel, the tiled one and two query blocks (32 tokens at 4
      // query heads per KV head), and S = 65 two key tiles, the second a
      // one-key tail.
      c.t = testing::Emulated() ? t / 2 + 1 : t;
      c.s = testing::Emulated() ? 65 : 300;
      c.hq = 8;
      c.hkv = 2;
      c.d = c.dv = 64 + (i % 2);
      c.causal = true;
      c.kv_bf16 = true;
      c.out_bf16 = out_bf16;
      RunCase(c, 400 + i++);
    }
  }
}

// bf16 K/V prefill. On amx, neon_bf16 and sve_bf16 the tiled tasks run on the
// matrix units (attention/tiled_brgemm-inl.h: Q and P rounded to bf16, the
// reference's kMatrixBf16 bound); elsewhere the fp32 kernel reads bf16 K/V (under
// emulation those paths are left to Bf16CacheAndOutput). Shapes cross what
// the flow pads and splits: rows per Qᵀ panel (8-128 on BFMMLA, 32 on AMX)
// and per 32-row AMX block, keys per tile (64; cache blocks of 16) with tails
// of 1, head dims not a multiple of BFMMLA's 4 or AMX's 32 (K copied with
// zeros), dv not a multiple of a V panel, tasks of several KV heads' groups,
// a last task of one token (row by row), masks, softcap, bf16 out, LSE.
TEST_P(AttentionTest, Bf16PrefillShapesMasksAndTails) {
  TILEKIT_SEED_TRACE();
  if (testing::Emulated() && !detail::AttnMatrixPath(GetParam(), true)) {
    GTEST_SKIP() << "emulated: bf16 K/V without the matrix units is Bf16CacheAndOutput's";
  }
  struct Shape {
    size_t t, s, hq, hkv, d, dv;
    bool causal;
    size_t window;
    float softcap;
    bool additive, out_bf16;
  };
  std::vector<Shape> shapes = {
      {8, 8, 1, 1, 32, 32, true, 0, 0.f, false, false},       // 8 rows: the smallest tiled task, MHA
      {33, 65, 4, 1, 64, 64, true, 0, 0.f, false, false},     // GQA 4: 128 rows + a 1-token task; S = tile + 1
      {17, 129, 8, 2, 17, 40, true, 0, 0.f, false, true},     // odd d, dv != d, bf16 out, 2 KV heads
      {20, 70, 4, 2, 33, 33, true, 5, 0.f, false, false},     // window 5
      {24, 70, 2, 1, 48, 65, true, 0, 3.f, false, false},     // softcap, dv past a panel by 1
      {31, 64, 2, 2, 32, 32, false, 0, 0.f, true, false},     // additive mask (−inf entries), no causal
      {12, 12, 3, 1, 128, 128, true, 0, 5.f, true, false},    // additive + causal + softcap, d 128
      {9, 130, 8, 1, 64, 64, false, 0, 0.f, false, false},    // 72 rows per head, 3 key tiles
  };
  if (!testing::Emulated()) {
    shapes.push_back({9, 300, 16, 2, 64, 64, false, 0, 0.f, false, false});
    shapes.push_back({40, 100, 4, 2, 33, 33, true, 5, 0.f, false, false});
    shapes.push_back({300, 300, 8, 2, 128, 128, true, 0, 0.f, false, false});
    shapes.push_back({129, 513, 32, 8, 80, 80, true, 100, 0.f, false, true});
  }
  size_t i = 0;
  for (const Shape& sh : shapes) {
    Case c;
    c.t = sh.t, c.s = sh.s, c.hq = sh.hq, c.hkv = sh.hkv, c.d = sh.d, c.dv = sh.dv;
    c.causal = sh.causal;
    c.window = sh.window;
    c.softcap = sh.softcap;
    c.additive = sh.additive;
    c.out_bf16 = sh.out_bf16;
    c.kv_bf16 = true;
    RunCase(c, 1300 + i++);
  }
}

// Non-finite V on the matrix units: a V row with a NaN or an Inf is added
// apart, by the rows that keep its key. Causal rows of one task share tiles:
// key 10 (NaN V) is masked for tokens 0-9 and kept by 10-19, key 5 (+Inf in
// one column) kept from token 5 on. Rows that mask them stay within the
// bound; rows that keep them get NaN / Inf, as on the fp32 path.
TEST_P(AttentionTest, Bf16PrefillNonFiniteVReachesOnlyTheRowsThatKeepIt) {
  TILEKIT_SEED_TRACE();
  Case c;
  c.t = c.s = 20;
  c.hq = 8;
  c.hkv = 1;
  c.d = c.dv = 32;
  c.causal = true;
  c.kv_bf16 = true;
  testing::Rng rng(1400);
  Data x = MakeData(c, rng);
  for (size_t e = 0; e < c.dv; ++e) x.v[10 * x.v_stride + e] = NAN;
  x.v[5 * x.v_stride + 3] = kInf;
  const Reference ref = Reference64(c, x);
  Output out = MakeOutput(c);
  ASSERT_EQ(RunPlain(c, x, &out), Status::kOk) << last_error();
  const std::vector<float> o = out.Values(c);
  for (size_t t = 0; t < c.t; ++t) {
    for (size_t i = t * c.hq * c.dv; i < (t + 1) * c.hq * c.dv; ++i) {
      const size_t col = i % c.dv;
      if (t >= 10) {
        ASSERT_TRUE(std::isnan(o[i])) << "t=" << t << " element " << i;
      } else if (t >= 5 && col == 3) {
        ASSERT_EQ(o[i], kInf) << "t=" << t << " element " << i;
      } else {
        ASSERT_TRUE(testing::WithinBound(std::fabs(o[i] - ref.o[i]), ref.bound[i] + 1e-37, "finite"))
            << "t=" << t << " element " << i;
      }
    }
  }
}

// Chunked prefill over a bf16 cache (17 tokens a call, then decode steps)
// against the reference of each call (which of its rows run on the matrix
// units depends on the call's tasks), and against the one-shot call.
TEST_P(AttentionTest, Bf16ChunkedPrefillMatchesOneShot) {
  TILEKIT_SEED_TRACE();
  if (testing::Emulated() && !detail::AttnMatrixPath(GetParam(), true)) {
    GTEST_SKIP() << "emulated: bf16 K/V without the matrix units is Bf16CacheAndOutput's";
  }
  Case full;
  full.t = full.s = testing::Emulated() ? 45 : 140;
  full.hq = 8;
  full.hkv = 2;
  full.d = full.dv = 48;
  full.causal = true;
  full.kv_bf16 = true;
  testing::Rng rng(1500);
  const Data x = MakeData(full, rng);
  Paged pg;
  MakePaged(full, x, kPagedBlock, 0, &pg, rng);
  Output one = MakeOutput(full);
  ASSERT_EQ(RunPaged(full, x, pg, 0, &one), Status::kOk) << last_error();
  const Reference one_ref = PagedReference64(full, x);
  Check(full, one_ref, one, "one-shot");
  const std::vector<float> whole = one.Values(full);
  for (size_t done = 0; done < full.t;) {
    const size_t n = done < 34 ? std::min<size_t>(17, full.t - done) : 1;
    Case c = full;
    c.t = n;
    c.s = done + n;
    Output out = MakeOutput(c);
    ASSERT_EQ(RunChunk(c, x, pg, done, &out), Status::kOk) << last_error();
    Data xc = x;  // this call's queries
    xc.q.erase(xc.q.begin(), xc.q.begin() + done * x.q_stride);
    const Reference ref = PagedReference64(c, xc);
    Check(c, ref, out, "chunk");
    const std::vector<float> v = out.Values(c);
    for (size_t i = 0; i < v.size(); ++i) {
      const size_t w = done * full.hq * full.dv + i;
      ASSERT_NEAR(v[i], whole[w], ref.bound[i] + one_ref.bound[w] + 1e-37) << "done=" << done << " element " << i;
    }
    done += n;
  }
}

// bf16 prefill with 1 and 2 threads: the same bits (each task's arithmetic
// is fixed by its rows and keys, whoever runs it).
TEST_P(AttentionTest, Bf16PrefillThreadsAreBitwiseIdentical) {
  TILEKIT_SEED_TRACE();
  if (testing::Emulated() && !detail::AttnMatrixPath(GetParam(), true)) {
    GTEST_SKIP() << "emulated: bf16 K/V without the matrix units is Bf16CacheAndOutput's";
  }
  ThreadPool two(2);
  Case c;
  c.t = testing::Emulated() ? 40 : 200;
  c.s = testing::Emulated() ? 90 : 400;
  c.hq = 8;
  c.hkv = 2;
  c.d = c.dv = 40;
  c.causal = true;
  c.kv_bf16 = true;
  testing::Rng rng(1600);
  const Data x = MakeData(c, rng);
  Paged pg;
  MakePaged(c, x, kPagedBlock, 0, &pg, rng);
  Output one = MakeOutput(c), o2 = MakeOutput(c);
  ASSERT_EQ(RunPaged(c, x, pg, 0, &one), Status::kOk);
  ASSERT_EQ(RunPaged(c, x, pg, 0, &o2, &two), Status::kOk);
  EXPECT_EQ(std::memcmp(one.f32.data(), o2.f32.data(), one.f32.size() * 4), 0);
  EXPECT_EQ(std::memcmp(one.lse.data(), o2.lse.data(), one.lse.size() * 4), 0);
  Check(c, PagedReference64(c, x), one, "threads");
}

// Rows whose every key is masked, and masked keys whose V is NaN, on the
// tiled path: fp32 K/V, bf16 K/V (the bf16 tiled path where the path has it:
// a tile with a NaN V runs P·V row by row), and bf16 with odd head dims and a
// V past the whole vectors (its columns in fp32 from the cache).
TEST_P(AttentionTest, FullyMaskedRowsAreZeroNotNaN) {
  TILEKIT_SEED_TRACE();
  const size_t shapes[][3] = {{0, 16, 16}, {1, 16, 16}, {1, 33, 35}};
  for (const auto& shape : shapes) {
  Case c;
  c.t = 6;
  c.s = 40;
  c.hq = 2;
  c.d = shape[1];
  c.dv = shape[2];
  c.kv_bf16 = shape[0];
  c.additive = true;
  SCOPED_TRACE(Describe(c));
  testing::Rng rng(500);
  Data x = MakeData(c, rng);
  for (size_t j = 0; j < c.s; ++j) x.mask[2 * c.s + j] = -kInf;  // row 2: every key masked
  for (size_t j = 0; j < c.s; ++j) x.mask[4 * c.s + j] = j == 39 ? 0.f : -kInf;
  // Keys 7, 8 (a pair of the bf16 path) and 13 (beside an unmasked 12): masked for every row.
  for (size_t t = 0; t < c.t; ++t) x.mask[t * c.s + 7] = x.mask[t * c.s + 8] = x.mask[t * c.s + 13] = -kInf;
  x.mask[12] = 0.f;
  // Masked keys' V is NaN: a masked probability must never meet it.
  for (size_t j = 0; j < 39; ++j) {
    bool all_masked = true;
    for (size_t t = 0; t < c.t; ++t) all_masked &= x.mask[t * c.s + j] == -kInf || t == 2;
    if (all_masked) {
      for (size_t e = 0; e < c.dv; ++e) x.v[j * x.v_stride + e] = NAN;
    }
  }
  const Reference ref = Reference64(c, x);
  Output out = MakeOutput(c);
  ASSERT_EQ(RunPlain(c, x, &out), Status::kOk) << last_error();
  Check(c, ref, out, "masked");
  for (size_t e = 0; e < c.hq * c.dv; ++e) EXPECT_EQ(out.f32[2 * out.stride + e], 0.f);
  EXPECT_EQ(out.lse[2 * c.hq], -kInf);
  }
}

TEST_P(AttentionTest, NaNOutsideTheRangeNeverLeaksAndInsideItPropagates) {
  TILEKIT_SEED_TRACE();
  Case c;
  c.t = 3;
  c.s = 50;
  c.hq = 4;
  c.hkv = 2;
  c.d = c.dv = 32;
  c.causal = true;
  c.window = 20;
  testing::Rng rng(600);
  Data x = MakeData(c, rng);
  // Keys before every query's window: NaN in plain K/V.
  for (size_t j = 0; j < 25; ++j) {
    for (size_t e = 0; e < x.k_stride; ++e) x.k[j * x.k_stride + e] = NAN;
    for (size_t e = 0; e < x.v_stride; ++e) x.v[j * x.v_stride + e] = NAN;
  }
  const Reference ref = Reference64(c, x);
  Output out = MakeOutput(c);
  ASSERT_EQ(RunPlain(c, x, &out), Status::kOk) << last_error();
  Check(c, ref, out, "window");
  // Paged: NaN blocks past the length (MakePaged fills them) with a decode step:
  // groups of 2 (row by row), 8 (a decode group's register tile) and 32 (the
  // tiled path: past kAttnGroupMax).
  for (size_t hq : {4, 8, 32}) {
    Case d = c;
    d.window = 0;
    d.t = 1;
    d.hq = hq;
    d.hkv = hq == 4 ? 2 : 1;
    testing::Rng rng2(601);
    Data y = MakeData(d, rng2);
    Paged pg;
    MakePaged(d, y, kPagedBlock, 0, &pg, rng2);
    Output o2 = MakeOutput(d);
    ASSERT_EQ(RunPaged(d, y, pg, 0, &o2), Status::kOk);
    Check(d, PagedReference64(d, y), o2, "paged NaN tail");
    // NaN inside the attended range reaches that query's output.
    y.v[(d.s - 1) * y.v_stride + 0] = NAN;
    Output o3 = MakeOutput(d);
    ASSERT_EQ(RunPlain(d, y, &o3), Status::kOk);
    EXPECT_TRUE(std::isnan(o3.f32[0]));
    y.v[(d.s - 1) * y.v_stride] = 0.f;
    y.k[3 * y.k_stride] = NAN;
    ASSERT_EQ(RunPlain(d, y, &o3), Status::kOk);
    EXPECT_TRUE(std::isnan(o3.f32[0])) << "Hq=" << hq;
    EXPECT_TRUE(std::isnan(o3.lse[0])) << "Hq=" << hq;
  }
}

// A key whose logit is +Inf (an Inf weight upstream) makes the row NaN on every
// path: Inf - Inf reached Exp, whose float-to-int step is undefined behaviour
// on the emulated scalar path (UBSan in the asan leg; found by llama2c_fuzz).
TEST_P(AttentionTest, AnInfiniteLogitGivesNaN) {
  TILEKIT_SEED_TRACE();
  for (size_t hq : {4, 8, 32}) {  // row by row, a decode group, the tiled path (past kAttnGroupMax)
    Case d;
    d.t = 1;
    d.s = 50;
    d.hq = hq;
    d.hkv = hq == 4 ? 2 : 1;
    d.d = d.dv = 32;
    d.causal = true;
    testing::Rng rng(602);
    Data y = MakeData(d, rng);
    y.q[0] = 1.f;                     // query head 0's first component
    y.k[3 * y.k_stride] = kInf;       // key 3 of kv head 0: q·k = +Inf
    Output o = MakeOutput(d);
    ASSERT_EQ(RunPlain(d, y, &o), Status::kOk) << last_error();
    EXPECT_TRUE(std::isnan(o.f32[0])) << "Hq=" << hq;
  }
}

TEST_P(AttentionTest, ChunkedPrefillAndDecodeMatchOneShot) {
  TILEKIT_SEED_TRACE();
  Case full;
  full.t = full.s = testing::Emulated() ? 70 : 140;
  full.hq = 8;
  full.hkv = 2;
  full.d = full.dv = 64;
  full.causal = true;
  testing::Rng rng(700);
  const Data x = MakeData(full, rng);
  // The arithmetic of each chunk's call, token by token.
  std::vector<unsigned char> kernels(full.t);
  for (size_t done = 0; done < full.t;) {
    Case c = full;
    c.t = done < 60 ? std::min<size_t>(17, full.t - done) : 1;
    const std::vector<unsigned char> k = TokenKernels(c);
    std::copy(k.begin(), k.end(), kernels.begin() + done);
    done += c.t;
  }
  Reference ref = Reference64(full, x, &kernels);
  ref.bound = ref.bound_cache;
  Paged pg;
  MakePaged(full, x, kPagedBlock, 0, &pg, rng);
  // Prefill in chunks (17 tokens, then decode steps of one): each call writes
  // its K/V (the same values MakePaged wrote, the written positions ending at
  // the chunk's end) and sees the prefix written so far.
  std::vector<float> rows(full.t * full.hq * full.dv);
  for (size_t done = 0; done < full.t;) {
    const size_t n = done < 60 ? std::min<size_t>(17, full.t - done) : 1;
    Case c = full;
    c.t = n;
    c.s = done + n;
    Output out = MakeOutput(c);
    ASSERT_EQ(RunChunk(c, x, pg, done, &out), Status::kOk) << last_error();
    const std::vector<float> v = out.Values(c);
    std::copy(v.begin(), v.end(), rows.begin() + done * full.hq * full.dv);
    done += n;
  }
  for (size_t i = 0; i < rows.size(); ++i) {
    ASSERT_TRUE(testing::WithinBound(std::fabs(rows[i] - ref.o[i]), ref.bound[i], "chunked")) << i;
  }
}

TEST_P(AttentionTest, ThreadsAreBitwiseIdentical) {
  TILEKIT_SEED_TRACE();
  ThreadPool two(2), three(3);
  for (size_t t : {1, 4, 40, 41}) {  // 41: the tiled path with bf16 K/V
    Case c;
    c.t = t;
    c.s = testing::Emulated() ? 1100 : 1500;  // several key chunks of 512 for the small T
    if (testing::Emulated() && t >= 40) c.s = 300;
    c.hq = 4;
    c.hkv = 1;
    c.d = c.dv = 32;
    c.causal = true;
    c.kv_bf16 = t == 4 || t == 41;
    testing::Rng rng(800 + t);
    const Data x = MakeData(c, rng);
    Paged pg;
    MakePaged(c, x, kPagedBlock, 0, &pg, rng);
    Output one = MakeOutput(c), o2 = MakeOutput(c), o3 = MakeOutput(c);
    ASSERT_EQ(RunPaged(c, x, pg, 0, &one), Status::kOk);
    ASSERT_EQ(RunPaged(c, x, pg, 0, &o2, &two), Status::kOk);
    ASSERT_EQ(RunPaged(c, x, pg, 0, &o3, &three), Status::kOk);
    EXPECT_EQ(std::memcmp(one.f32.data(), o2.f32.data(), one.f32.size() * 4), 0) << "T=" << t;
    EXPECT_EQ(std::memcmp(one.f32.data(), o3.f32.data(), one.f32.size() * 4), 0) << "T=" << t;
    EXPECT_EQ(std::memcmp(one.lse.data(), o2.lse.data(), one.lse.size() * 4), 0);
    Check(c, PagedReference64(c, x), one, "threads");
  }
}

TEST_P(AttentionTest, BatchDecodeOfDifferentLengths) {
  TILEKIT_SEED_TRACE();
  const size_t lengths[] = {1, 33, 300, 129, 7};
  const size_t n = 5;
  KvCacheConfig cfg;
  cfg.kv_heads = 2;
  cfg.head_dim = cfg.v_head_dim = 32;
  cfg.block_tokens = 8;
  cfg.num_blocks = 200;
  cfg.dtype = KvDtype::kBf16;
  KvCache cache;
  ASSERT_EQ(cache.init(cfg), Status::kOk);
  for (uint32_t b = 0; b < cfg.num_blocks; ++b) FillNaN(cache, b);
  std::vector<Case> cases(n);
  std::vector<Data> data(n);
  std::vector<std::vector<uint32_t>> tables(n);
  std::vector<Output> outs(n);
  std::vector<AttentionBatchItem> items(n);
  testing::Rng rng(900);
  for (size_t i = 0; i < n; ++i) {
    Case& c = cases[i];
    c.t = i == 2 ? 3 : 1;  // one sequence verifies 3 speculative tokens
    c.s = lengths[i];
    c.hq = 8;
    c.hkv = 2;
    c.d = c.dv = 32;
    c.causal = true;
    c.kv_bf16 = true;
    data[i] = MakeData(c, rng);
    for (size_t b = 0; b * 8 < c.s; ++b) {
      uint32_t id;
      ASSERT_EQ(cache.allocate_block(&id), Status::kOk);
      tables[i].push_back(id);
    }
    const KvSequence seq{tables[i].data(), tables[i].size(), c.s};
    ASSERT_EQ(kv_cache_write(cache, 0, seq, 0, heads_view<const float>(data[i].k.data(), c.s, 2, 32, data[i].k_stride),
                             heads_view<const float>(data[i].v.data(), c.s, 2, 32, data[i].v_stride)),
              Status::kOk);
    outs[i] = MakeOutput(c);
    items[i] = AttentionBatchItem{heads_view<const float>(data[i].q.data(), c.t, 8, 32, data[i].q_stride), seq,
                                  heads_view(outs[i].f32.data(), c.t, 8, 32, outs[i].stride), outs[i].lse.data()};
  }
  AttentionParams p;
  p.mask.causal = true;
  ThreadPool two(2);
  p.executor = &two;
  ASSERT_EQ(attention_batch(cache, 0, items.data(), n, p), Status::kOk) << last_error();
  for (size_t i = 0; i < n; ++i) Check(cases[i], Reference64(cases[i], data[i]), outs[i], "batch");
  // Items run in any order: one item's q or lse over another's out, or two
  // lse over each other, is refused (attention_fuzz), before anything runs.
  const std::vector<float> kept = outs[0].f32;
  for (int bad = 0; bad < 3; ++bad) {
    std::vector<AttentionBatchItem> wrong = items;
    if (bad == 0) wrong[1].q.data = outs[0].f32.data();
    if (bad == 1) wrong[1].lse = outs[0].lse.data();
    if (bad == 2) wrong[1].lse = outs[0].f32.data();
    EXPECT_EQ(attention_batch(cache, 0, wrong.data(), n, p), Status::kAliasing) << bad;
    EXPECT_NE(std::string(last_error()).find("overlaps"), std::string::npos) << last_error();
    EXPECT_EQ(std::memcmp(outs[0].f32.data(), kept.data(), kept.size() * 4), 0) << bad;
  }
}

TEST_P(AttentionTest, MergeOfTwoHalvesIsTheWhole) {
  TILEKIT_SEED_TRACE();
  Case c;
  c.t = 3;
  c.s = 90;
  c.hq = 4;
  c.hkv = 2;
  c.d = c.dv = 24;
  testing::Rng rng(1000);
  const Data x = MakeData(c, rng);
  const Reference ref = Reference64(c, x);
  const size_t split = 41;
  Case a = c, b = c;
  a.s = split;
  b.s = c.s - split;
  Data xa = x, xb = x;
  xb.k.erase(xb.k.begin(), xb.k.begin() + split * x.k_stride);
  xb.v.erase(xb.v.begin(), xb.v.begin() + split * x.v_stride);
  Output oa = MakeOutput(a), ob = MakeOutput(b);
  ASSERT_EQ(RunPlain(a, xa, &oa), Status::kOk);
  ASSERT_EQ(RunPlain(b, xb, &ob), Status::kOk);
  ASSERT_EQ(attention_merge(heads_view<const float>(oa.f32.data(), 3, 4, 24, oa.stride), oa.lse.data(),
                            heads_view<const float>(ob.f32.data(), 3, 4, 24, ob.stride), ob.lse.data(),
                            heads_view(oa.f32.data(), 3, 4, 24, oa.stride), oa.lse.data()),
            Status::kOk)
      << last_error();
  for (size_t i = 0; i < ref.o.size(); ++i) {
    // Two partial results, each within its bound, merged with a few more roundings.
    EXPECT_NEAR(oa.Values(c)[i], ref.o[i], 2 * ref.bound[i] + 8 * kU * std::fabs(ref.o[i])) << i;
  }
  float lse_inf[1] = {-kInf}, o1[2] = {1, 2}, o2[2] = {3, 4}, o3[2] = {7, 7}, l3[1] = {7};
  ASSERT_EQ(attention_merge(heads_view<const float>(o1, 1, 1, 2), lse_inf, heads_view<const float>(o2, 1, 1, 2),
                            lse_inf, heads_view(o3, 1, 1, 2), l3),
            Status::kOk);
  EXPECT_EQ(o3[0], 0.f);
  EXPECT_EQ(l3[0], -kInf);
}

// attention_fuzz: attention_merge accepted lse_out over a (a row's lse then
// read back as part of a later row of a) and lse_a inside out; and with
// head_dim 0, T x H lse values whose bytes overflow (the views span nothing,
// so nothing else bounds them) were read far past the arrays.
TEST_P(AttentionTest, MergeRefusesOutputsOverItsInputsAndOverflow) {
  std::vector<float> a(8, 0.5f), b(8, -0.25f), out(8, 7.f), la(4, 0.f), lb(4, 1.f), lo(4, 7.f);
  const auto view = [](float* p) { return heads_view(p, 2, 2, 2); };
  EXPECT_EQ(attention_merge(view(a.data()), la.data(), view(b.data()), lb.data(), view(out.data()), a.data()),
            Status::kAliasing);
  EXPECT_EQ(attention_merge(view(a.data()), out.data() + 2, view(b.data()), lb.data(), view(out.data()), lo.data()),
            Status::kAliasing);
  const size_t huge = SIZE_MAX / 2 + 1;
  EXPECT_EQ(attention_merge(HeadsView<const float>{a.data(), huge, 1, 0, 0, 0}, la.data(),
                            HeadsView<const float>{b.data(), huge, 1, 0, 0, 0}, lb.data(),
                            HeadsView<float>{out.data(), huge, 1, 0, 0, 0}, lo.data()),
            Status::kOverflow);
  for (float f : out) EXPECT_EQ(f, 7.f);
  for (float f : lo) EXPECT_EQ(f, 7.f);
  for (float f : a) EXPECT_EQ(f, 0.5f);
}

TEST_P(AttentionTest, ConcurrentCallsFromTwoHostThreads) {
  TILEKIT_SEED_TRACE();
  Case c;
  c.t = 1;
  c.s = 600;
  c.hq = 4;
  c.hkv = 2;
  c.d = c.dv = 32;
  c.causal = true;
  testing::Rng rng(1100);
  const Data x = MakeData(c, rng);
  Paged pg;
  MakePaged(c, x, kPagedBlock, 0, &pg, rng);
  Output want = MakeOutput(c);
  ASSERT_EQ(RunPaged(c, x, pg, 0, &want), Status::kOk);
  ThreadPool pool(2);
  std::atomic<int> mismatches{0};
  const Isa path = GetParam();
  auto worker = [&] {
    ASSERT_EQ(set_max_isa(path), Status::kOk);  // the cap is per process; idempotent here
    for (int i = 0; i < 20; ++i) {
      Output o = MakeOutput(c);
      if (RunPaged(c, x, pg, 0, &o, &pool) != Status::kOk ||
          std::memcmp(o.f32.data(), want.f32.data(), o.f32.size() * 4) != 0) {
        ++mismatches;
      }
    }
  };
  std::thread a(worker), b(worker);
  a.join();
  b.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST_P(AttentionTest, BadInputIsReportedAndOutputUntouched) {
  Case c;
  c.t = 2;
  c.s = 4;
  c.hq = 4;
  c.hkv = 2;
  c.d = c.dv = 8;
  testing::Rng rng(1200);
  Data x = MakeData(c, rng);
  std::vector<float> out(c.t * c.hq * c.dv, 7.f), lse(c.t * c.hq, 7.f);
  auto q = heads_view<const float>(x.q.data(), c.t, c.hq, c.d, x.q_stride);
  auto k = heads_view<const float>(x.k.data(), c.s, c.hkv, c.d, x.k_stride);
  auto v = heads_view<const float>(x.v.data(), c.s, c.hkv, c.dv, x.v_stride);
  auto o = heads_view(out.data(), c.t, c.hq, c.dv);
  const auto expect = [&](Status got, Status want, const char* text) {
    EXPECT_EQ(got, want) << text << ": " << last_error();
    EXPECT_NE(std::string(last_error()).find(text), std::string::npos) << last_error();
  };
  auto q3 = q;
  q3.heads = 3;
  q3.token_stride = x.q_stride;
  auto o3 = o;
  o3.heads = 3;
  expect(attention(q3, k, v, o3), Status::kShapeMismatch, "not a multiple");
  auto kd = k;
  kd.head_dim = 7;
  kd.head_stride = 7;
  expect(attention(q, kd, v, o), Status::kShapeMismatch, "head_dim");
  auto q0 = q;
  q0.tokens = 0;
  auto o0 = o;
  o0.tokens = 0;
  expect(attention(q0, k, v, o0), Status::kInvalidArgument, "must both be > 0");
  auto qn = q;
  qn.data = nullptr;
  expect(attention(qn, k, v, o), Status::kNullPointer, "q is null");
  auto ov = heads_view(const_cast<float*>(x.q.data()), c.t, c.hq, c.dv, x.q_stride);
  expect(attention(q, k, v, ov), Status::kAliasing, "q overlaps out");
  expect(attention(q, k, v, o, {}, out.data() + 3), Status::kAliasing, "lse overlaps");
  AttentionParams bad;
  bad.mask.softcap = -1.f;
  expect(attention(q, k, v, o, bad), Status::kInvalidArgument, "softcap");
  AttentionParams causal;
  causal.mask.causal = true;
  auto qlong = heads_view<const float>(x.q.data(), 1, c.hq, c.d, 0);
  (void)qlong;
  auto ks = k;
  ks.tokens = 1;
  auto vs = v;
  vs.tokens = 1;
  expect(attention(q, ks, vs, o, causal), Status::kShapeMismatch, "T <= S");
  AttentionParams am;
  std::vector<float> mask(3 * 4);
  am.mask.additive = matrix(mask.data(), 3, 4);
  expect(attention(q, k, v, o, am), Status::kShapeMismatch, "additive mask");
  for (float f : out) ASSERT_EQ(f, 7.f);
  for (float f : lse) ASSERT_EQ(f, 7.f);

  // The cache: positions beyond the blocks, bad block ids, wrong layer, head mismatch.
  KvCacheConfig cfg;
  cfg.kv_heads = 2;
  cfg.head_dim = 8;
  cfg.block_tokens = 2;
  cfg.num_blocks = 4;
  KvCache cache;
  size_t bytes = 0;
  ASSERT_EQ(KvCache::bytes_needed(cfg, &bytes), Status::kOk);
  EXPECT_EQ(bytes, 4u * 2 * 2 * (8 + 8) * 4);
  ASSERT_EQ(cache.init(cfg), Status::kOk);
  EXPECT_EQ(cache.bytes(), bytes);
  uint32_t table[2];
  for (uint32_t& id : table) ASSERT_EQ(cache.allocate_block(&id), Status::kOk);
  KvSequence seq{table, 2, 4};
  expect(attention(q, cache, 0, seq, o), Status::kInvalidArgument, "was not written");
  expect(attention(q, cache, 0, KvSequence{table, 1, 4}, o), Status::kInvalidArgument, "beyond");
  uint32_t bad_table[2] = {table[0], 9};
  expect(attention(q, cache, 0, KvSequence{bad_table, 2, 4}, o), Status::kInvalidArgument, "the pool has");
  expect(attention(q, cache, 1, seq, o), Status::kInvalidArgument, "layer");
  expect(kv_cache_write(cache, 0, seq, 3, k, v), Status::kInvalidArgument, "beyond");
  auto k1 = heads_view<const float>(x.k.data(), c.s, 1, 8, x.k_stride);
  expect(kv_cache_write(cache, 0, seq, 0, k1, v), Status::kShapeMismatch, "the cache holds");
  KvCache uninit;
  expect(attention(q, uninit, 0, seq, o), Status::kInvalidArgument, "not initialised");
  cfg.kv_heads = 0;
  expect(KvCache::bytes_needed(cfg, &bytes), Status::kInvalidArgument, "must be > 0");
  for (float f : out) ASSERT_EQ(f, 7.f);
}

// A bf16 output holds, bit for bit, the fp32 output of the same call rounded
// by the reference f32_to_bf16 (the kernels' rows do not depend on the
// output's type; on the paths with BF16 the store of a normalised row rounds in
// one instruction), through both kernels (tiled prefill; decode row by row,
// with its key chunks merged), plain and paged K/V, fp32 and bf16, and again
// under MXCSR DAZ/FTZ or FPCR FZ/DN. V's columns come in blocks of 16 aimed at
// the rounding's edges: integers in [257, 1023] (a row that sees one key, the
// causal first row or S = 1, stores them exactly: ties when the last set bit
// is the 9th significant one), subnormals (u · 2^-128), values within 2^-8 of
// FLT_MAX (bf16's max, Inf, or Inf already in fp32 when their average
// overflows), and normal values with a NaN at one key. The LSEs match too.
TEST_P(AttentionTest, Bf16OutputIsTheRoundedFp32Output) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(31);
  std::vector<Case> cases;
  Case prefill;  // 2 × 20 rows per KV head: the tiled kernel
  prefill.t = prefill.s = testing::Emulated() ? 20 : 40;
  prefill.hq = 4, prefill.hkv = 2, prefill.d = 32, prefill.dv = 64, prefill.causal = true;
  cases.push_back(prefill);
  Case decode;  // one token, key chunks of 512 merged
  decode.t = 1, decode.s = testing::Emulated() ? 600 : 1100;
  decode.hq = 8, decode.hkv = 2, decode.d = 32, decode.dv = 64;
  cases.push_back(decode);
  Case one_key = decode;  // one key: the output is V's row
  one_key.s = 1;
  cases.push_back(one_key);
  for (const bool flush : {false, true}) {
    for (Case c : cases) {
      for (const bool kv_bf16 : {false, true}) {
        c.kv_bf16 = kv_bf16;
        SCOPED_TRACE(Describe(c) + (flush ? ", flush modes" : ""));
        Data x = MakeData(c, rng);
        for (size_t j = 0; j < c.s; ++j) {
          for (size_t h = 0; h < c.hkv; ++h) {
            for (size_t i = 0; i < c.dv; ++i) {
              float& v = x.v[j * x.v_stride + h * c.dv + i];
              switch (i / 16 % 4) {
                case 0: v = static_cast<float>(257 + rng.below(767)) * (rng.below(2) ? 1.f : -1.f); break;
                case 1: v = std::ldexp(rng.uniform(), -128); break;
                case 2: v = std::ldexp(rng.uniform(1.99f, 1.9999f), 127); break;
                default: v = j == c.s / 2 && i % 16 == 0 ? std::numeric_limits<float>::quiet_NaN() : rng.uniform();
              }
              if (kv_bf16) v = RoundBf16(v);
            }
          }
        }
        Case c32 = c, c16 = c;
        c16.out_bf16 = true;
        Output o32 = MakeOutput(c32), o16 = MakeOutput(c16), p32 = MakeOutput(c32), p16 = MakeOutput(c16);
        Paged pg;
        MakePaged(c, x, kPagedBlock, 0, &pg, rng);
        {
          std::optional<testing::ScopedFlushModes> modes;
          if (flush) modes.emplace();
          ASSERT_EQ(RunPlain(c32, x, &o32), Status::kOk) << last_error();
          ASSERT_EQ(RunPlain(c16, x, &o16), Status::kOk) << last_error();
          ASSERT_EQ(RunPaged(c32, x, pg, 0, &p32), Status::kOk) << last_error();
          ASSERT_EQ(RunPaged(c16, x, pg, 0, &p16), Status::kOk) << last_error();
        }
        testing::Bf16Edges edges;
        for (const auto& [f32, b16, what] : {std::make_tuple(&o32, &o16, "plain"), std::make_tuple(&p32, &p16, "paged")}) {
          for (size_t i = 0; i < f32->f32.size(); ++i) {
            const bool row = i % f32->stride < c.hq * c.dv;  // or the padding, left as poisoned
            const uint16_t want = row ? f32_to_bf16(f32->f32[i]).bits : testing::kPoisonBf16;
            ASSERT_EQ(b16->b16[i].bits, want) << what << " element " << i << ", fp32 0x" << std::hex
                                              << testing::Bits(f32->f32[i]);
            if (row) edges.add(f32->f32[i]);
          }
          for (size_t i = 0; i < f32->lse.size(); ++i) {
            ASSERT_EQ(testing::Bits(f32->lse[i]), testing::Bits(b16->lse[i])) << what << " lse " << i;
          }
        }
        EXPECT_GT(edges.nans, 0u) << edges.describe();
        if (!kv_bf16 && c.s <= prefill.s) {
          EXPECT_GT(edges.ties, 0u) << edges.describe();  // the rows of one key
        }
        if (!flush) {
          EXPECT_GT(edges.subnormals, 0u) << edges.describe();
        }
      }
    }
  }
}

TILEKIT_INSTANTIATE_PATHS(AttentionTest);

// The matrix flow runs where it should: on each tested path with bf16 tile
// products (amx, neon_bf16, sve_bf16), a bf16 prefill is not the bits of the
// path below it (the same Highway target, the fp32 kernel: fp32 Q and P), and
// is within the matrix bound. Skipped, saying why, where no tested path has
// them (this is where an x86 CPU without AMX reports it).
TEST(AttentionMatrixUnits, TiledTasksRunOnTheMatrixUnitsOfThePath) {
  TILEKIT_SEED_TRACE();
  const std::vector<Isa> paths = testing::TestedPaths();
  std::vector<std::pair<Isa, Isa>> pairs;
  for (Isa isa : paths) {
    if (!detail::AttnMatrixPath(isa, true)) continue;
    const Isa below = isa == Isa::kAmx ? Isa::kAvx512Bf16 : isa == Isa::kNeonBf16 ? Isa::kNeon : Isa::kSve;
    if (std::find(paths.begin(), paths.end(), below) != paths.end()) pairs.emplace_back(isa, below);
  }
  if (pairs.empty()) {
    GTEST_SKIP() << "no tested path with bf16 tile products (amx, neon_bf16, sve_bf16) on this CPU: "
                 << cpu::path_report() << ". The AMX flow (attention/tiled_brgemm-inl.h) is built and runs, with "
                 << "AttentionTest's bf16 cases, on a CPU with AMX.";
  }
  Case c;
  c.t = 20;
  c.s = 70;
  c.hq = 4;
  c.hkv = 1;
  c.d = c.dv = 32;
  c.causal = true;
  c.kv_bf16 = true;
  testing::Rng rng(1700);
  const Data x = MakeData(c, rng);
  for (const auto& pair : pairs) {
    Output hi = MakeOutput(c), lo = MakeOutput(c);
    Reference ref;
    {
      testing::ScopedPath path(pair.first);
      ASSERT_EQ(RunPlain(c, x, &hi), Status::kOk) << last_error();
      ref = Reference64(c, x);
    }
    {
      testing::ScopedPath path(pair.second);
      ASSERT_EQ(RunPlain(c, x, &lo), Status::kOk) << last_error();
    }
    Check(c, ref, hi, isa_name(pair.first));
    EXPECT_NE(std::memcmp(hi.f32.data(), lo.f32.data(), hi.f32.size() * 4), 0)
        << isa_name(pair.first) << " gave the bits of " << isa_name(pair.second);
  }
}

}  // namespace
}  // namespace tilekit

// attention (plain fp32 and bf16 K/V, fp32 and bf16 out), attention on a
// KvCache, attention_batch and attention_merge from arbitrary bytes: heads and
// KV heads (MHA, GQA, MQA, ratios that do not divide), head_dim and v_head_dim
// (0, odd, tails), T and S (0, 1, tails, S past one key chunk of 512 so decode
// splits and merges), causal, window, softcap, scale, an additive mask with
// −inf, lse or none, token strides, cache blocks of 1 to 64 tokens taken in a
// scrambled order with NaN everywhere else in the pool, an executor; and one
// corruption of the call (stride too small, heads not adjacent, null, sizes
// whose bytes overflow, out or lse overlapping an input or each other, bad
// scale or softcap, mask shape, layer, block table, batch items aliasing).
//
// Differential: an accepted call against tests/attention_reference.h (fp64,
// with the bound of the fp32 arithmetic); padding between tokens and the
// element after each output untouched. A refused call leaves every output byte
// as it was.
#include <algorithm>
#include <memory>

#include "../attention_reference.h"
#include "fuzz.h"

namespace tilekit {
namespace {

using fuzz::Snapshot;
constexpr float kInf = std::numeric_limits<float>::infinity();

Executor* PickExecutor(FuzzedDataProvider& in) {
  static ThreadPool pool(2);
  return in.ConsumeIntegralInRange<int>(0, 3) == 0 ? &pool : nullptr;
}

// The shape and options of one call.
struct Shape {
  size_t t, s, hq, hkv, d, dv;
  size_t q_pad, k_pad, v_pad, o_pad;
};

Shape DecodeShape(FuzzedDataProvider& in, size_t max_t) {
  Shape sh{};
  sh.hkv = in.ConsumeIntegralInRange<size_t>(1, 3);
  sh.hq = sh.hkv * fuzz::Pick<size_t>(in, {1, 2, 3, 4, 8});
  sh.d = fuzz::Dim(in, 40);
  sh.dv = in.ConsumeBool() ? sh.d : fuzz::Dim(in, 40);
  sh.s = fuzz::Dim(in, 80);
  if (in.ConsumeIntegralInRange<int>(0, 15) == 0) {  // past one key chunk: split and merged
    sh.s = in.ConsumeIntegralInRange<size_t>(513, 700);
    sh.d = std::min<size_t>(sh.d, 6), sh.dv = std::min<size_t>(sh.dv, 6);
  }
  sh.t = fuzz::Dim(in, max_t);
  if (in.ConsumeBool()) sh.t = std::min(sh.t, sh.s);  // mostly positions that exist
  sh.q_pad = in.ConsumeIntegralInRange<size_t>(0, 3);
  sh.k_pad = in.ConsumeIntegralInRange<size_t>(0, 3);
  sh.v_pad = in.ConsumeIntegralInRange<size_t>(0, 3);
  sh.o_pad = in.ConsumeIntegralInRange<size_t>(0, 3);
  return sh;
}

AttentionParams DecodeParams(FuzzedDataProvider& in) {
  AttentionParams p;
  p.mask.causal = in.ConsumeBool();
  p.mask.window = fuzz::Pick<size_t>(in, {0, 0, 1, 2, 5, 17, 64});
  p.mask.softcap = fuzz::Pick(in, {0.f, 0.f, 0.5f, 3.f});
  p.scale = fuzz::Pick(in, {0.f, 0.f, 0.1f, 1.f, 3.f});
  p.executor = PickExecutor(in);
  return p;
}

// Random rows of `tokens` × `width` with a token stride, never zero; the
// padding holds values too (a kernel reading it would use them).
std::vector<float> Rows(fuzz::Values& values, size_t tokens, size_t stride, bool bf16_exact) {
  std::vector<float> v(std::max<size_t>(1, tokens * stride));
  values.fill(v, bf16_exact);
  return v;
}

std::vector<bf16> ToBf16(const std::vector<float>& v) {
  std::vector<bf16> b(v.size());
  for (size_t i = 0; i < v.size(); ++i) b[i] = f32_to_bf16(v[i]);
  return b;
}

// The additive mask [t][s] (ld s + pad), a fifth of it −inf.
std::vector<float> Mask(fuzz::Values& values, size_t t, size_t ld) {
  std::vector<float> m(std::max<size_t>(1, t * ld));
  for (float& x : m) x = values.next() < -0.6f ? -kInf : 2 * values.next();
  return m;
}

// An output [t][hq][dv] (token stride), poisoned, one element past its end;
// lse [t · hq] + one, poisoned.
template <typename TO>
struct Out {
  std::vector<TO> o;
  std::vector<float> lse;
  size_t stride;
  Out(size_t t, size_t hq, size_t dv, size_t pad) : stride(hq * dv + pad) {
    o.resize(t * stride + 1);
    fuzz::Poison(o);
    lse.resize(t * hq + 1);
    fuzz::Poison(lse);
  }
  HeadsView<TO> view(size_t t, size_t hq, size_t dv) { return HeadsView<TO>{o.data(), t, hq, dv, stride, dv}; }
};

// Every element of an accepted call against the reference, the padding and the
// element past the end as they were.
template <typename TO>
void CheckOut(const testing::AttentionReference& ref, const Out<TO>& out, const std::vector<TO>& before,
              const std::vector<float>& lse_before, size_t t, size_t hq, size_t dv, bool with_lse, const char* what) {
  for (size_t i = 0; i < t; ++i) {
    for (size_t c = 0; c < out.stride; ++c) {
      const size_t at = i * out.stride + c;
      if (c >= hq * dv) {
        TILEKIT_FUZZ_CHECK(std::memcmp(&out.o[at], &before[at], sizeof(TO)) == 0, "%s: padding of token %zu written",
                           what, i);
        continue;
      }
      const size_t r = i * hq * dv + c;
      const double got = testing::ToF32(out.o[at]), err = std::fabs(got - ref.o[r]);
      TILEKIT_FUZZ_CHECK(err <= ref.bound[r] + 1e-37, "%s: out[%zu][%zu] = %.9g, want %.9g, error %.3g > bound %.3g",
                         what, i, c, got, ref.o[r], err, ref.bound[r]);
    }
  }
  TILEKIT_FUZZ_CHECK(std::memcmp(&out.o.back(), &before.back(), sizeof(TO)) == 0, "%s: past the output written", what);
  TILEKIT_FUZZ_CHECK(std::memcmp(&out.lse.back(), &lse_before.back(), 4) == 0, "%s: past lse written", what);
  if (!with_lse) {
    TILEKIT_FUZZ_CHECK(std::memcmp(out.lse.data(), lse_before.data(), out.lse.size() * 4) == 0, "%s: lse written",
                       what);
    return;
  }
  for (size_t r = 0; r < t * hq; ++r) {
    if (std::isinf(ref.lse[r])) {
      TILEKIT_FUZZ_CHECK(out.lse[r] == -kInf, "%s: lse[%zu] = %g of a fully masked row", what, r, out.lse[r]);
    } else {
      const double err = std::fabs(out.lse[r] - ref.lse[r]);
      TILEKIT_FUZZ_CHECK(err <= ref.lse_bound[r], "%s: lse[%zu] = %.9g, want %.9g, error %.3g > bound %.3g", what, r,
                         out.lse[r], ref.lse[r], err, ref.lse_bound[r]);
    }
  }
}

// What every attention entry point refuses of the shape and options alone.
bool ShapeValid(const Shape& sh, const AttentionParams& p) {
  return sh.t && sh.s && sh.d && sh.dv && !((p.mask.causal || p.mask.window) && sh.t > sh.s);
}

testing::AttentionProblem Problem(const Shape& sh, const AttentionParams& p, const float* q, const float* k,
                                  const float* v, size_t k_stride, size_t v_stride) {
  testing::AttentionProblem pr;
  pr.t = sh.t, pr.s = sh.s, pr.hq = sh.hq, pr.hkv = sh.hkv, pr.d = sh.d, pr.dv = sh.dv;
  pr.q = q, pr.k = k, pr.v = v;
  pr.q_stride = sh.hq * sh.d + sh.q_pad, pr.k_stride = k_stride, pr.v_stride = v_stride;
  pr.scale = p.scale;
  pr.causal = p.mask.causal;
  pr.window = p.mask.window;
  pr.softcap = p.mask.softcap;
  pr.mask = p.mask.additive.data;
  pr.mask_ld = p.mask.additive.ld;
  return pr;
}

// Corruptions of Q, out, lse and the options every single-sequence call shares;
// true when the call must be refused.
template <typename TO>
bool CorruptCommon(FuzzedDataProvider& in, int which, const Shape& sh, HeadsView<const float>& q, HeadsView<TO>& o,
                   float** lse, AttentionParams& p, const void* k_data) {
  switch (which) {
    case 1: if (sh.hq * sh.d) return q.token_stride = sh.hq * sh.d - 1, true; break;
    case 2: if (sh.hq * sh.dv) return o.token_stride = sh.hq * sh.dv - 1, true; break;
    case 3: if (sh.hkv >= 2) return q.heads = o.heads = sh.hq - 1, true; break;
    case 4: if (sh.t && sh.d) return q.data = nullptr, true; break;
    case 5: if (sh.t && sh.dv) return o.data = nullptr, true; break;
    case 6: return q.tokens = o.tokens = fuzz::HugeDim(in), true;
    case 7: if (sh.t && sh.d && sh.dv) return o.data = reinterpret_cast<TO*>(const_cast<float*>(q.data)), true; break;
    case 8: if (*lse && sh.t && sh.dv) return *lse = reinterpret_cast<float*>(o.data + sh.dv - 1), true; break;
    case 9: if (*lse && sh.t && sh.d) return *lse = const_cast<float*>(q.data + sh.d - 1), true; break;
    case 10: if (sh.hq >= 2 && sh.d) return q.head_stride = sh.d + 1, true; break;
    case 11: return p.scale = fuzz::Pick(in, {-1.f, NAN, kInf}), true;
    case 12: return p.mask.softcap = fuzz::Pick(in, {-0.5f, NAN, kInf}), true;
    case 13: if (sh.d) return q.head_dim = sh.d + 1, true; break;
    case 14: if (*lse && k_data && sh.s && sh.d) return *lse = static_cast<float*>(const_cast<void*>(k_data)), true; break;
    default: break;
  }
  return false;
}

template <typename TKV, typename TO>
void Plain(FuzzedDataProvider& in, fuzz::Values& values) {
  const Shape sh = DecodeShape(in, 20);
  AttentionParams p = DecodeParams(in);
  const bool with_lse = in.ConsumeBool(), with_mask = in.ConsumeIntegralInRange<int>(0, 3) == 0;
  const size_t mask_ld = sh.s + in.ConsumeIntegralInRange<size_t>(0, 2);
  const int which = in.ConsumeIntegralInRange<int>(0, 2) == 0 ? in.ConsumeIntegralInRange<int>(1, 20) : 0;
  const bool kv_bf16 = kIsBf16<TKV>;
  const size_t ks = sh.hkv * sh.d + sh.k_pad, vs = sh.hkv * sh.dv + sh.v_pad;
  const std::vector<float> q = Rows(values, sh.t, sh.hq * sh.d + sh.q_pad, false);
  const std::vector<float> kf = Rows(values, sh.s, ks, kv_bf16), vf = Rows(values, sh.s, vs, kv_bf16);
  std::vector<TKV> k(kf.size()), v(vf.size());
  for (size_t i = 0; i < k.size(); ++i) k[i] = testing::FromF32<TKV>(kf[i]);
  for (size_t i = 0; i < v.size(); ++i) v[i] = testing::FromF32<TKV>(vf[i]);
  std::vector<float> mask;
  if (with_mask) {
    mask = Mask(values, sh.t, mask_ld);
    p.mask.additive = MatrixView<const float>{mask.data(), sh.t, sh.s, mask_ld};
  }
  Out<TO> out(sh.t, sh.hq, sh.dv, sh.o_pad);
  HeadsView<const float> qv{q.data(), sh.t, sh.hq, sh.d, sh.hq * sh.d + sh.q_pad, sh.d};
  HeadsView<const TKV> kv{k.data(), sh.s, sh.hkv, sh.d, ks, sh.d}, vv{v.data(), sh.s, sh.hkv, sh.dv, vs, sh.dv};
  HeadsView<TO> ov = out.view(sh.t, sh.hq, sh.dv);
  float* lse = with_lse ? out.lse.data() : nullptr;
  bool must_fail = CorruptCommon(in, which, sh, qv, ov, &lse, p, k.data());
  must_fail |= !ShapeValid(sh, p);
  switch (which) {
    case 15: if (sh.hkv * sh.d) kv.token_stride = sh.hkv * sh.d - 1, must_fail = true; break;
    case 16: if (sh.s && sh.d) kv.data = nullptr, must_fail = true; break;
    case 17: if (sh.s) vv.tokens = sh.s - 1, must_fail = true; break;
    case 18: if (with_mask) p.mask.additive.rows = sh.t + 1, must_fail = true; break;
    case 19: if (with_mask && sh.s) p.mask.additive.ld = sh.s - 1, must_fail = true; break;
    case 20:  // the mask inside out
      if (with_mask && sh.t && sh.s && sh.dv) p.mask.additive.data = reinterpret_cast<const float*>(out.o.data()), must_fail = true;
      break;
    default: break;
  }
  const std::vector<TO> before = out.o;
  const std::vector<float> lse_before = out.lse;
  const Status s = attention(qv, kv, vv, ov, p, lse);
  if (must_fail) {
    TILEKIT_FUZZ_CHECK(s != Status::kOk, "attention: corruption %d (T=%zu S=%zu d=%zu dv=%zu) accepted", which, sh.t,
                       sh.s, sh.d, sh.dv);
    TILEKIT_FUZZ_CHECK(std::memcmp(out.o.data(), before.data(), before.size() * sizeof(TO)) == 0 &&
                           std::memcmp(out.lse.data(), lse_before.data(), lse_before.size() * 4) == 0,
                       "attention: refused call (%s) wrote out or lse", status_name(s));
    return;
  }
  TILEKIT_FUZZ_CHECK(s == Status::kOk, "attention: valid call refused: %s", status_name(s));
  testing::AttentionProblem pr = Problem(sh, p, q.data(), kf.data(), vf.data(), ks, vs);
  pr.out_bf16 = kIsBf16<TO>;
  pr.matrix = detail::AttnMatrixPath(cpu::active_isa(), kv_bf16);
  CheckOut(testing::AttentionReference64(pr), out, before, lse_before, sh.t, sh.hq, sh.dv, with_lse, "attention");
}

// A cache holding `tokens` tokens of K/V for each table in `tables` (blocks taken
// in a scrambled order, one spare block past each sequence's end), NaN in every
// other byte of the pool; K/V written as fp32 or bf16 in one or two calls.
struct Cached {
  KvCache cache;
  KvCacheConfig cfg;
  size_t layer = 0;
};

bool MakeCache(FuzzedDataProvider& in, const Shape& sh, size_t blocks_needed_tokens, size_t sequences, Cached* c) {
  c->cfg.layers = in.ConsumeIntegralInRange<size_t>(1, 2);
  c->layer = in.ConsumeIntegralInRange<size_t>(0, c->cfg.layers - 1);
  c->cfg.kv_heads = sh.hkv;
  c->cfg.head_dim = sh.d;
  c->cfg.v_head_dim = sh.dv;
  c->cfg.block_tokens = fuzz::Pick<size_t>(in, {1, 2, 3, 5, 16, 64});
  c->cfg.num_blocks = sequences * ((blocks_needed_tokens + c->cfg.block_tokens - 1) / c->cfg.block_tokens + 1) + 1;
  c->cfg.dtype = in.ConsumeBool() ? KvDtype::kBf16 : KvDtype::kF32;
  if (c->cache.init(c->cfg) != Status::kOk) return false;
  std::memset(c->cache.key_rows(0, 0), 0xFF, c->cache.bytes());
  return true;
}

// Takes the blocks of one sequence of `s` tokens (plus a spare) in an order
// the seed scrambles, and writes its K/V.
std::vector<uint32_t> FillSequence(FuzzedDataProvider& in, Cached& c, const Shape& sh, size_t s,
                                   const std::vector<float>& k, const std::vector<float>& v, size_t ks, size_t vs) {
  const size_t used = (s + c.cfg.block_tokens - 1) / c.cfg.block_tokens;
  std::vector<uint32_t> table(used + 1);
  for (uint32_t& id : table) TILEKIT_FUZZ_CHECK(c.cache.allocate_block(&id) == Status::kOk, "allocate_block");
  std::mt19937_64 engine(in.ConsumeIntegral<uint32_t>());
  std::shuffle(table.begin(), table.end(), engine);
  const KvSequence seq{table.data(), table.size(), s};
  const size_t split = in.ConsumeIntegralInRange<size_t>(0, s);  // written in two calls: [0, split), [split, s)
  const bool from_bf16 = in.ConsumeBool();
  // (Each range by its own ends: "n = pos == 0 ? split : s - split" wrote
  // nothing at all when split was 0, the open finding this replaced.)
  const size_t ranges[2][2] = {{0, split}, {split, s}};
  for (const auto& range : ranges) {
    const size_t pos = range[0], n = range[1] - range[0];
    Status st;
    if (from_bf16) {
      const std::vector<bf16> kb = ToBf16(k), vb = ToBf16(v);
      st = kv_cache_write(c.cache, c.layer, seq, pos, HeadsView<const bf16>{kb.data() + pos * ks, n, sh.hkv, sh.d, ks, sh.d},
                          HeadsView<const bf16>{vb.data() + pos * vs, n, sh.hkv, sh.dv, vs, sh.dv});
    } else {
      st = kv_cache_write(c.cache, c.layer, seq, pos, HeadsView<const float>{k.data() + pos * ks, n, sh.hkv, sh.d, ks, sh.d},
                          HeadsView<const float>{v.data() + pos * vs, n, sh.hkv, sh.dv, vs, sh.dv});
    }
    TILEKIT_FUZZ_CHECK(st == Status::kOk, "kv_cache_write of %zu tokens at %zu", n, pos);
  }
  return table;
}

template <typename TO>
void CachedCall(FuzzedDataProvider& in, fuzz::Values& values) {
  Shape sh = DecodeShape(in, 20);
  sh.d = std::max<size_t>(sh.d, 1), sh.dv = std::max<size_t>(sh.dv, 1);  // a cache has both
  AttentionParams p = DecodeParams(in);
  const bool with_lse = in.ConsumeBool(), with_mask = in.ConsumeIntegralInRange<int>(0, 3) == 0;
  const int which = in.ConsumeIntegralInRange<int>(0, 2) == 0 ? in.ConsumeIntegralInRange<int>(1, 21) : 0;
  const size_t ks = sh.hkv * sh.d + sh.k_pad, vs = sh.hkv * sh.dv + sh.v_pad;
  // bf16-exact K/V: what the reference reads is what any store keeps.
  const std::vector<float> q = Rows(values, sh.t, sh.hq * sh.d + sh.q_pad, false);
  const std::vector<float> k = Rows(values, sh.s, ks, true), v = Rows(values, sh.s, vs, true);
  Cached c;
  if (!MakeCache(in, sh, sh.s, 1, &c)) return;
  std::vector<uint32_t> table = FillSequence(in, c, sh, sh.s, k, v, ks, vs);
  KvSequence seq{table.data(), table.size(), sh.s};
  std::vector<float> mask;
  if (with_mask) {
    mask = Mask(values, sh.t, sh.s);
    p.mask.additive = MatrixView<const float>{mask.data(), sh.t, sh.s, sh.s};
  }
  Out<TO> out(sh.t, sh.hq, sh.dv, sh.o_pad);
  HeadsView<const float> qv{q.data(), sh.t, sh.hq, sh.d, sh.hq * sh.d + sh.q_pad, sh.d};
  HeadsView<TO> ov = out.view(sh.t, sh.hq, sh.dv);
  float* lse = with_lse ? out.lse.data() : nullptr;
  size_t layer = c.layer;
  KvCache uninitialised;
  const KvCache* cache = &c.cache;
  bool must_fail = CorruptCommon(in, which, sh, qv, ov, &lse, p, nullptr);
  must_fail |= !ShapeValid(sh, p) || sh.t > sh.s;
  std::vector<uint32_t> bad_table = table;
  const size_t used = (sh.s + c.cfg.block_tokens - 1) / c.cfg.block_tokens;
  switch (which) {
    case 15: layer = c.cfg.layers, must_fail = true; break;
    case 16: if (used) seq.num_blocks = used - 1, must_fail = true; break;
    case 17: {  // among the blocks the mask reads: a window skips (and no longer checks) those before its start
      const size_t first_query = sh.s - std::min(sh.t, sh.s);
      const size_t from = p.mask.window && first_query + 1 > p.mask.window ? first_query + 1 - p.mask.window : 0;
      if (used && from / c.cfg.block_tokens < used) {
        bad_table[in.ConsumeIntegralInRange<size_t>(from / c.cfg.block_tokens, used - 1)] =
            static_cast<uint32_t>(c.cfg.num_blocks) + in.ConsumeIntegral<uint8_t>();
        seq.blocks = bad_table.data(), must_fail = true;
      }
      break;
    }
    case 18: seq.blocks = nullptr, must_fail = true; break;
    case 19: if (sh.t) seq.length = sh.t - 1, must_fail = true; break;
    case 20: if (sh.t && sh.dv) ov.data = reinterpret_cast<TO*>(c.cache.value_rows(c.layer, table[0])), must_fail = true; break;
    case 21: cache = &uninitialised, must_fail = true; break;
    default: break;
  }
  const Snapshot pool(c.cache.key_rows(0, 0), c.cache.bytes());
  const std::vector<TO> before = out.o;
  const std::vector<float> lse_before = out.lse;
  const Status s = attention(qv, *cache, layer, seq, ov, p, lse);
  TILEKIT_FUZZ_CHECK(pool.unchanged(), "cached attention wrote the cache (%s)", status_name(s));
  if (must_fail) {
    TILEKIT_FUZZ_CHECK(s != Status::kOk, "cached attention: corruption %d (T=%zu S=%zu) accepted", which, sh.t, sh.s);
    TILEKIT_FUZZ_CHECK(std::memcmp(out.o.data(), before.data(), before.size() * sizeof(TO)) == 0 &&
                           std::memcmp(out.lse.data(), lse_before.data(), lse_before.size() * 4) == 0,
                       "cached attention: refused call (%s) wrote out or lse", status_name(s));
    return;
  }
  TILEKIT_FUZZ_CHECK(s == Status::kOk, "cached attention: valid call refused: %s", status_name(s));
  testing::AttentionProblem pr = Problem(sh, p, q.data(), k.data(), v.data(), ks, vs);
  pr.out_bf16 = kIsBf16<TO>;
  pr.tile_keys = std::min<size_t>(64, c.cfg.block_tokens);
  pr.matrix = detail::AttnMatrixPath(cpu::active_isa(), c.cfg.dtype == KvDtype::kBf16);
  CheckOut(testing::AttentionReference64(pr), out, before, lse_before, sh.t, sh.hq, sh.dv, with_lse, "cached");
}

// One sequence of a batch: its data, blocks and output.
struct Item {
  size_t t, s;
  std::vector<float> q, k, v;
  std::vector<uint32_t> table;
  std::unique_ptr<Out<float>> out;
};

void Batch(FuzzedDataProvider& in, fuzz::Values& values) {
  Shape sh = DecodeShape(in, 6);
  sh.d = std::max<size_t>(sh.d, 1), sh.dv = std::max<size_t>(sh.dv, 1);
  AttentionParams p = DecodeParams(in);
  const bool with_lse = in.ConsumeBool();
  const size_t count = in.ConsumeIntegralInRange<size_t>(0, 3);
  const int which = in.ConsumeIntegralInRange<int>(0, 2) == 0 ? in.ConsumeIntegralInRange<int>(1, 7) : 0;
  const size_t ks = sh.hkv * sh.d + sh.k_pad, vs = sh.hkv * sh.dv + sh.v_pad, qs = sh.hq * sh.d + sh.q_pad;
  std::vector<Item> items(count);
  size_t s_max = 0;
  for (Item& it : items) {
    it.s = fuzz::Dim(in, 70);
    it.t = fuzz::Dim(in, 6);
    if (in.ConsumeBool()) it.t = std::min(it.t, it.s);
    it.q = Rows(values, it.t, qs, false);
    it.k = Rows(values, it.s, ks, true);
    it.v = Rows(values, it.s, vs, true);
    it.out = std::make_unique<Out<float>>(it.t, sh.hq, sh.dv, sh.o_pad);
    s_max = std::max(s_max, it.s);
  }
  Cached c;
  if (!MakeCache(in, sh, s_max, std::max<size_t>(count, 1), &c)) return;
  std::vector<AttentionBatchItem> batch;
  bool must_fail = false;
  for (Item& it : items) {
    Shape si = sh;
    si.t = it.t, si.s = it.s;
    must_fail |= !ShapeValid(si, p) || it.t > it.s;
    it.table = FillSequence(in, c, sh, it.s, it.k, it.v, ks, vs);
    batch.push_back(AttentionBatchItem{HeadsView<const float>{it.q.data(), it.t, sh.hq, sh.d, qs, sh.d},
                                       KvSequence{it.table.data(), it.table.size(), it.s},
                                       it.out->view(it.t, sh.hq, sh.dv), with_lse ? it.out->lse.data() : nullptr});
  }
  const AttentionBatchItem* list = batch.data();
  std::vector<float> mask(1, 0.f);
  const bool two = count >= 2 && items[0].t && items[1].t;
  switch (which) {
    case 1: if (count) list = nullptr, must_fail = true; break;
    case 2: if (two) batch[1].out = batch[0].out, must_fail = true; break;
    case 3: if (count >= 2) batch[1].q.heads += sh.hkv, must_fail = true; break;
    case 4: if (count) p.mask.additive = MatrixView<const float>{mask.data(), 1, 1, 1}, must_fail = true; break;
    case 5: if (two) batch[1].q.data = batch[0].out.data, must_fail = true; break;  // read after item 0 writes it
    case 6: if (two && with_lse) batch[1].lse = batch[0].lse, must_fail = true; break;
    case 7: if (two && with_lse) batch[1].lse = batch[0].out.data, must_fail = true; break;
    default: break;
  }
  const Snapshot pool(c.cache.key_rows(0, 0), c.cache.bytes());
  std::vector<std::vector<float>> before, lse_before;
  for (Item& it : items) before.push_back(it.out->o), lse_before.push_back(it.out->lse);
  const Status s = attention_batch(c.cache, c.layer, list, count, p);
  TILEKIT_FUZZ_CHECK(pool.unchanged(), "attention_batch wrote the cache (%s)", status_name(s));
  if (must_fail) {
    TILEKIT_FUZZ_CHECK(s != Status::kOk, "attention_batch: corruption %d of %zu items accepted", which, count);
    for (size_t i = 0; i < count; ++i) {
      TILEKIT_FUZZ_CHECK(std::memcmp(items[i].out->o.data(), before[i].data(), before[i].size() * 4) == 0,
                         "attention_batch: refused call (%s) wrote item %zu", status_name(s), i);
      TILEKIT_FUZZ_CHECK(std::memcmp(items[i].out->lse.data(), lse_before[i].data(), lse_before[i].size() * 4) == 0,
                         "attention_batch: refused call (%s) wrote lse of item %zu", status_name(s), i);
    }
    return;
  }
  TILEKIT_FUZZ_CHECK(s == Status::kOk, "attention_batch: valid call of %zu items refused: %s", count, status_name(s));
  for (size_t i = 0; i < count; ++i) {
    Shape si = sh;
    si.t = items[i].t, si.s = items[i].s;
    testing::AttentionProblem pr = Problem(si, p, items[i].q.data(), items[i].k.data(), items[i].v.data(), ks, vs);
    pr.tile_keys = std::min<size_t>(64, c.cfg.block_tokens);
    pr.matrix = detail::AttnMatrixPath(cpu::active_isa(), c.cfg.dtype == KvDtype::kBf16);
    CheckOut(testing::AttentionReference64(pr), *items[i].out, before[i], lse_before[i], si.t, sh.hq, sh.dv, with_lse,
             "attention_batch");
  }
}

void Merge(FuzzedDataProvider& in, fuzz::Values& values) {
  const size_t t = fuzz::Dim(in, 6), h = in.ConsumeIntegralInRange<size_t>(1, 4), dv = fuzz::Dim(in, 40);
  const size_t stride = h * dv + in.ConsumeIntegralInRange<size_t>(0, 2);
  const int in_place = in.ConsumeIntegralInRange<int>(0, 2);  // 0: out apart, 1: out = a, 2: out = b
  const int lse_in_place = in.ConsumeIntegralInRange<int>(0, 2);
  const int which = in.ConsumeIntegralInRange<int>(0, 2) == 0 ? in.ConsumeIntegralInRange<int>(1, 10) : 0;
  std::vector<float> a = Rows(values, t, stride, false), b = Rows(values, t, stride, false);
  std::vector<float> la(t * h + 1), lb(t * h + 1);
  for (std::vector<float>* l : {&la, &lb}) {
    for (float& x : *l) x = values.next() < -0.7f ? -kInf : 8 * values.next();
  }
  Out<float> out(t, h, dv, stride - h * dv);
  float* o = in_place == 1 ? a.data() : in_place == 2 ? b.data() : out.o.data();
  float* lo = lse_in_place == 1 ? la.data() : lse_in_place == 2 ? lb.data() : out.lse.data();
  HeadsView<const float> av{a.data(), t, h, dv, stride, dv}, bv{b.data(), t, h, dv, stride, dv};
  HeadsView<float> ov{o, t, h, dv, stride, dv};
  const float *lap = la.data(), *lbp = lb.data();
  bool must_fail = false;
  const size_t rows = t * h;
  switch (which) {
    case 1: lap = nullptr, must_fail = true; break;
    case 2: lo = nullptr, must_fail = true; break;
    case 3: bv.head_dim = dv + 1, bv.head_stride = dv + 1, bv.token_stride = h * (dv + 1), must_fail = true; break;
    case 4: if (rows * dv >= 2 && !in_place) ov.data = a.data() + 1, must_fail = true; break;  // a shifted
    case 5: if (rows >= 2 && !lse_in_place) lo = la.data() + 1, must_fail = true; break;
    case 6: if (rows && dv) lo = ov.data + dv - 1, must_fail = true; break;  // lse_out inside out
    case 7:  // lse_a inside out (written before later rows read it)
      if (rows && dv && !in_place) std::copy(la.begin(), la.begin() + rows, ov.data), lap = ov.data, must_fail = true;
      break;
    case 8: if (rows && dv && !lse_in_place) lo = a.data(), must_fail = true; break;  // lse_out over a
    case 9: av.tokens = bv.tokens = ov.tokens = fuzz::HugeDim(in), must_fail = true; break;
    case 10: if (h >= 2 && dv) ov.head_stride = dv + 1, must_fail = true; break;
    default: break;
  }
  // The inputs as they were (in place overwrites them).
  const std::vector<float> a0 = a, b0 = b, la0 = la, lb0 = lb, o0 = out.o, lo0 = out.lse;
  const Status s = attention_merge(av, lap, bv, lbp, ov, lo);
  if (must_fail) {
    TILEKIT_FUZZ_CHECK(s != Status::kOk, "attention_merge: corruption %d (T=%zu H=%zu dv=%zu) accepted", which, t, h, dv);
    TILEKIT_FUZZ_CHECK(std::memcmp(a.data(), a0.data(), a.size() * 4) == 0, "refused merge wrote a");
    TILEKIT_FUZZ_CHECK(std::memcmp(b.data(), b0.data(), b.size() * 4) == 0, "refused merge wrote b");
    TILEKIT_FUZZ_CHECK(std::memcmp(la.data(), la0.data(), la.size() * 4) == 0 &&
                           std::memcmp(lb.data(), lb0.data(), lb.size() * 4) == 0,
                       "refused merge wrote lse_a or lse_b");
    TILEKIT_FUZZ_CHECK(std::memcmp(out.o.data(), o0.data(), o0.size() * 4) == 0 &&
                           std::memcmp(out.lse.data(), lo0.data(), lo0.size() * 4) == 0,
                       "refused merge (%s) wrote out or lse_out", status_name(s));
    return;
  }
  TILEKIT_FUZZ_CHECK(s == Status::kOk, "attention_merge: valid call refused: %s", status_name(s));
  for (size_t r = 0; r < rows; ++r) {
    const size_t at = r / h * stride + r % h * dv;
    const testing::MergeRow want = testing::MergeReference64(&a0[at], la0[r], &b0[at], lb0[r], dv);
    for (size_t c = 0; c < dv; ++c) {
      const double err = std::fabs(o[at + c] - want.o[c]);
      TILEKIT_FUZZ_CHECK(err <= want.bound[c] + 1e-37, "merge row %zu [%zu] = %.9g, want %.9g, error %.3g > %.3g", r, c,
                         o[at + c], want.o[c], err, want.bound[c]);
    }
    if (std::isinf(want.lse)) {
      TILEKIT_FUZZ_CHECK(lo[r] == -kInf, "merge lse[%zu] = %g, both inputs -inf", r, lo[r]);
    } else {
      TILEKIT_FUZZ_CHECK(std::fabs(lo[r] - want.lse) <= want.lse_bound, "merge lse[%zu] = %.9g, want %.9g", r, lo[r],
                         want.lse);
    }
  }
  // Padding between tokens and past the end.
  const std::vector<float>& o_before = in_place == 1 ? a0 : in_place == 2 ? b0 : o0;
  for (size_t i = 0; i < o_before.size(); ++i) {
    if (stride && i / stride < t && i % stride < h * dv) continue;  // stride 0 (dv 0): no element is a row's
    TILEKIT_FUZZ_CHECK(std::memcmp(&o[i], &o_before[i], 4) == 0, "merge wrote padding element %zu", i);
  }
  const std::vector<float>& lo_before = lse_in_place == 1 ? la0 : lse_in_place == 2 ? lb0 : lo0;
  TILEKIT_FUZZ_CHECK(std::memcmp(&lo[rows], &lo_before[rows], 4) == 0, "merge wrote past lse_out");
}

void Run(FuzzedDataProvider& in) {
  fuzz::Force(fuzz::PickPath(in));
  const int op = in.ConsumeIntegralInRange<int>(0, 8);
  fuzz::Values values(in.ConsumeIntegral<uint64_t>());
  switch (op) {
    case 0: Plain<float, float>(in, values); break;
    case 1: Plain<float, bf16>(in, values); break;
    case 2: Plain<bf16, float>(in, values); break;
    case 3: Plain<bf16, bf16>(in, values); break;
    case 4: CachedCall<float>(in, values); break;
    case 5: CachedCall<bf16>(in, values); break;
    case 6: Batch(in, values); break;
    default: Merge(in, values); break;
  }
}

}  // namespace
}  // namespace tilekit

TILEKIT_FUZZ_ENTRY(tilekit::Run)

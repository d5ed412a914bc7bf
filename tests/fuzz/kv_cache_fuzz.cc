// KvCache from a sequence of operations decoded from the bytes, each checked
// against a plain model of what the cache must hold:
//  - init and bytes_needed with arbitrary configs (zeros, more than 2^32 - 1
//    blocks, fields whose product or sum overflows size_t): the status the
//    arithmetic implies, and a refused init leaves the cache as it was;
//  - allocate / share / release, with ids from the sequences' tables (double
//    releases, blocks shared by two sequences) or arbitrary (out of range),
//    until the pool is exhausted: statuses, free_blocks() and the ids handed
//    out match the model's reference counts;
//  - kv_cache_write of fp32 or bf16 K/V at arbitrary positions (past the block
//    table, overflowing pos + T), strided sources, and a corruption (stride too
//    small, null, wrong heads or dims, K and V token counts, K inside the pool);
//  - after every operation the whole pool equals the model byte for byte (the
//    layout kv_cache.h documents: [block][layer][K rows | V rows]), so a write
//    to the wrong place, or by a refused call, is caught where it happens;
//  - the checks of issue 27: each block's generation (odd while allocated) and
//    rows written per layer are modelled; writes that name a free block, a
//    block of another generation (tables keep the generations they were
//    handed and pass them or not), a kKvNoBlock entry, or that leave a gap are
//    refused, and a write ends the layer's positions at pos + T;
//  - attention at any length (a window or not): accepted exactly when every
//    position the mask reads was written, in a held block, and nothing was
//    written at the length (one short of the write), then against the fp64
//    reference of tests/attention_reference.h fed from the model; refused
//    with the output untouched otherwise.
#include <algorithm>

#include "../attention_reference.h"
#include "fuzz.h"

namespace tilekit {
namespace {

// Pools above this are not allocated (a valid config no input should make the
// fuzzer spend its time on); bytes_needed is still checked for them.
constexpr size_t kMaxPoolBytes = size_t{1} << 20;

// The status and size the config implies, in exact arithmetic.
Status ExpectedConfig(const KvCacheConfig& c, size_t* bytes) {
  if (!c.layers || !c.kv_heads || !c.head_dim || !c.block_tokens || !c.num_blocks) return Status::kInvalidArgument;
  if (c.num_blocks > UINT32_MAX) return Status::kInvalidArgument;
  if (c.block_tokens > UINT32_MAX) return Status::kInvalidArgument;  // a block's written rows are a uint32_t
  using U = unsigned __int128;
  const U dv = c.v_head_dim ? c.v_head_dim : c.head_dim;
  const U limit = SIZE_MAX;
  U all = (U{c.head_dim} + dv);
  for (const U f : {U{c.kv_heads}, U{c.block_tokens}, U{kv_dtype_bytes(c.dtype)}, U{c.layers}, U{c.num_blocks}}) {
    all *= f;
    if (all > limit) return Status::kOverflow;
  }
  *bytes = static_cast<size_t>(all);
  return Status::kOk;
}

size_t Field(FuzzedDataProvider& in, std::initializer_list<size_t> small) {
  return in.ConsumeIntegralInRange<int>(0, 15) == 0 ? fuzz::HugeDim(in) : fuzz::Pick(in, small);
}

KvCacheConfig DecodeConfig(FuzzedDataProvider& in) {
  KvCacheConfig c;
  c.layers = Field(in, {1, 1, 2, 3, 0});
  c.kv_heads = Field(in, {1, 2, 3, 0});
  c.head_dim = Field(in, {1, 3, 4, 8, 17, 0});
  c.v_head_dim = Field(in, {0, 0, 1, 5, 8});
  c.block_tokens = Field(in, {1, 2, 3, 4, 16, 0});
  c.num_blocks = in.ConsumeIntegralInRange<int>(0, 15) == 0 ? size_t{UINT32_MAX} + in.ConsumeIntegralInRange<size_t>(0, 1)
                                                           : Field(in, {1, 2, 3, 5, 8, 12, 0});
  c.dtype = in.ConsumeBool() ? KvDtype::kBf16 : KvDtype::kF32;
  return c;
}

// What the cache must hold: the config it was last initialised with, the
// reference counts and generations, every pool byte, and how many rows of
// each block and layer count as written.
struct Model {
  bool ready = false;
  KvCacheConfig cfg;
  std::vector<uint32_t> refs, gen;
  std::vector<unsigned char> pool;
  std::vector<size_t> rows;  // [block][layer]
  size_t elem = 4;

  // Whether a table entry names a block its sequence still holds.
  bool held(uint32_t id, const uint32_t* gens, size_t b) const {
    return id < refs.size() && refs[id] > 0 && (!gens || gens[b] == gen[id]);
  }
  // Position j of a table, layer l: in a held block and written.
  bool written(const std::vector<uint32_t>& table, const uint32_t* gens, size_t layer, size_t j) const {
    const size_t b = j / cfg.block_tokens;
    return b < table.size() && held(table[b], gens, b) && rows[table[b] * cfg.layers + layer] > j % cfg.block_tokens;
  }

  size_t free_blocks() const { return static_cast<size_t>(std::count(refs.begin(), refs.end(), 0u)); }
  size_t k_row_bytes() const { return cfg.kv_heads * cfg.head_dim * elem; }
  size_t v_row_bytes() const { return cfg.kv_heads * cfg.v_head_dim * elem; }
  size_t layer_bytes() const { return cfg.block_tokens * (k_row_bytes() + v_row_bytes()); }
  size_t k_at(uint32_t block, size_t layer, size_t slot) const {
    return (block * cfg.layers + layer) * layer_bytes() + slot * k_row_bytes();
  }
  size_t v_at(uint32_t block, size_t layer, size_t slot) const {
    return (block * cfg.layers + layer) * layer_bytes() + cfg.block_tokens * k_row_bytes() + slot * v_row_bytes();
  }
  // Element e of a stored row as fp32.
  float load(size_t at, size_t e) const {
    if (cfg.dtype == KvDtype::kBf16) {
      bf16 b;
      std::memcpy(&b.bits, &pool[at + 2 * e], 2);
      return bf16_to_f32(b);
    }
    float f;
    std::memcpy(&f, &pool[at + 4 * e], 4);
    return f;
  }
  void store(size_t at, size_t e, float x) {
    if (cfg.dtype == KvDtype::kBf16) {
      const bf16 b = f32_to_bf16(x);
      std::memcpy(&pool[at + 2 * e], &b.bits, 2);
    } else {
      std::memcpy(&pool[at + 4 * e], &x, 4);
    }
  }
};

// A sequence's table and the generation of each entry as it was handed out.
struct Table {
  std::vector<uint32_t> ids, gens;
  bool empty() const { return ids.empty(); }
  size_t size() const { return ids.size(); }
};

struct State {
  KvCache cache;
  Model model;
  Table tables[3];
  fuzz::Values values{0};
};

void CheckState(const State& st, const char* after) {
  const Model& m = st.model;
  TILEKIT_FUZZ_CHECK(st.cache.empty() == !m.ready, "after %s: empty() = %d", after, st.cache.empty());
  if (!m.ready) return;
  TILEKIT_FUZZ_CHECK(st.cache.bytes() == m.pool.size(), "after %s: %zu bytes, model %zu", after, st.cache.bytes(),
                     m.pool.size());
  TILEKIT_FUZZ_CHECK(st.cache.free_blocks() == m.free_blocks(), "after %s: %zu free blocks, model %zu", after,
                     st.cache.free_blocks(), m.free_blocks());
  const unsigned char* pool = st.cache.key_rows(0, 0);
  if (std::memcmp(pool, m.pool.data(), m.pool.size()) != 0) {
    size_t i = 0;
    while (pool[i] == m.pool[i]) ++i;
    TILEKIT_FUZZ_CHECK(false, "after %s: pool byte %zu is %02x, model %02x", after, i, pool[i], m.pool[i]);
  }
  for (uint32_t id = 0; id < m.refs.size(); ++id) {
    TILEKIT_FUZZ_CHECK(st.cache.generation(id) == m.gen[id] && st.cache.allocated(id) == (m.refs[id] > 0),
                       "after %s: block %u has generation %u, model %u", after, id, st.cache.generation(id), m.gen[id]);
    for (size_t l = 0; l < m.cfg.layers; ++l) {
      // Rows of a free block are not the cache's to keep; allocation resets them.
      if (m.refs[id] == 0) continue;
      TILEKIT_FUZZ_CHECK(st.cache.written_rows(l, id) == m.rows[id * m.cfg.layers + l],
                         "after %s: block %u layer %zu has %zu rows written, model %zu", after, id, l,
                         st.cache.written_rows(l, id), m.rows[id * m.cfg.layers + l]);
    }
  }
}

void Init(FuzzedDataProvider& in, State& st) {
  const KvCacheConfig cfg = DecodeConfig(in);
  size_t want_bytes = 0, bytes = 7;
  const Status want = ExpectedConfig(cfg, &want_bytes);
  const Status got = KvCache::bytes_needed(cfg, &bytes);
  TILEKIT_FUZZ_CHECK(got == want, "bytes_needed: %s, expected %s", status_name(got), status_name(want));
  TILEKIT_FUZZ_CHECK(want != Status::kOk || bytes == want_bytes, "bytes_needed: %zu, expected %zu", bytes, want_bytes);
  TILEKIT_FUZZ_CHECK(KvCache::bytes_needed(cfg, nullptr) == Status::kNullPointer, "bytes_needed(null)");
  if (want == Status::kOk && want_bytes > kMaxPoolBytes) return;
  const Status s = st.cache.init(cfg);
  TILEKIT_FUZZ_CHECK(s == want, "init: %s, expected %s", status_name(s), status_name(want));
  if (s != Status::kOk) return;  // the old cache stays: CheckState compares it with the old model
  Model& m = st.model;
  m.ready = true;
  m.cfg = cfg;
  if (!m.cfg.v_head_dim) m.cfg.v_head_dim = cfg.head_dim;
  m.elem = kv_dtype_bytes(cfg.dtype);
  m.refs.assign(cfg.num_blocks, 0);
  m.gen.assign(cfg.num_blocks, 0);
  m.pool.assign(want_bytes, 0xFF);  // NaN in either dtype
  m.rows.assign(cfg.num_blocks * cfg.layers, 0);
  for (Table& t : st.tables) t = Table{};  // ids of the old pool mean nothing in the new one
  std::memset(st.cache.key_rows(0, 0), 0xFF, st.cache.bytes());
  const KvCacheConfig& c = st.cache.config();
  TILEKIT_FUZZ_CHECK(c.layers == m.cfg.layers && c.kv_heads == m.cfg.kv_heads && c.head_dim == m.cfg.head_dim &&
                         c.v_head_dim == m.cfg.v_head_dim && c.block_tokens == m.cfg.block_tokens &&
                         c.num_blocks == m.cfg.num_blocks && c.dtype == m.cfg.dtype,
                     "config() differs from the config given");
}

// A block id: one a table names, or any value (out of range too).
uint32_t PickId(FuzzedDataProvider& in, const Table& table) {
  if (!table.empty() && in.ConsumeBool()) return table.ids[in.ConsumeIntegralInRange<size_t>(0, table.size() - 1)];
  return in.ConsumeBool() ? in.ConsumeIntegralInRange<uint32_t>(0, 13) : in.ConsumeIntegral<uint32_t>();
}

void Allocate(FuzzedDataProvider& in, State& st, Table& table) {
  Model& m = st.model;
  if (in.ConsumeIntegralInRange<int>(0, 15) == 0) {
    TILEKIT_FUZZ_CHECK(st.cache.allocate_block(nullptr) == Status::kNullPointer, "allocate_block(null)");
    return;
  }
  uint32_t id = 0xDEADBEEF, gen = 0xDEADBEEF;
  const bool want_gen = in.ConsumeBool();
  const Status s = st.cache.allocate_block(&id, want_gen ? &gen : nullptr);
  const Status want = !m.ready ? Status::kInvalidArgument : m.free_blocks() == 0 ? Status::kOutOfMemory : Status::kOk;
  TILEKIT_FUZZ_CHECK(s == want, "allocate_block: %s, expected %s", status_name(s), status_name(want));
  if (s != Status::kOk) {
    TILEKIT_FUZZ_CHECK(id == 0xDEADBEEF && gen == 0xDEADBEEF, "refused allocate_block wrote the id");
    return;
  }
  TILEKIT_FUZZ_CHECK(id < m.refs.size() && m.refs[id] == 0, "allocate_block gave block %u, in use or outside", id);
  m.refs[id] = 1;
  ++m.gen[id];
  std::fill_n(m.rows.begin() + id * m.cfg.layers, m.cfg.layers, 0);
  TILEKIT_FUZZ_CHECK(!want_gen || gen == m.gen[id], "allocate_block: generation %u, model %u", gen, m.gen[id]);
  table.ids.push_back(id);
  table.gens.push_back(m.gen[id]);
}

void ShareOrRelease(FuzzedDataProvider& in, State& st, Table& table, Table& other, bool share) {
  Model& m = st.model;
  const uint32_t id = PickId(in, table);
  const bool held = id < m.refs.size() && m.refs[id] > 0;
  const Status s = share ? st.cache.share_block(id) : st.cache.release_block(id);
  TILEKIT_FUZZ_CHECK((s == Status::kOk) == held, "%s_block(%u): %s, the block has %u holders",
                     share ? "share" : "release", id, status_name(s), id < m.refs.size() ? m.refs[id] : 0);
  if (s != Status::kOk) return;
  if (share) {
    ++m.refs[id];
    other.ids.push_back(id);  // a prefix the other sequence now names too
    other.gens.push_back(st.cache.generation(id));
    return;
  }
  if (--m.refs[id] == 0) ++m.gen[id];
  const size_t named = static_cast<size_t>(std::find(table.ids.begin(), table.ids.end(), id) - table.ids.begin());
  if (named == table.size()) return;
  switch (in.ConsumeIntegralInRange<int>(0, 2)) {
    case 0: break;  // still named: a stale entry, refused where it is used (or released twice)
    case 1: table.ids[named] = kKvNoBlock; break;  // dropped behind a window
    default:
      table.ids.erase(table.ids.begin() + named);
      table.gens.erase(table.gens.begin() + named);
  }
}

// The first position of layer `layer` not written through the table.
size_t WrittenEnd(const Model& m, const Table& table, const uint32_t* gens, size_t layer) {
  size_t j = 0;
  while (m.written(table.ids, gens, layer, j)) ++j;
  return j;
}

// kv_cache_write of T tokens at pos through `table`, from fp32 or bf16.
template <typename T>
void Write(FuzzedDataProvider& in, State& st, const Table& table) {
  Model& m = st.model;
  const KvCacheConfig& c = m.cfg;
  const size_t heads = m.ready ? c.kv_heads : in.ConsumeIntegralInRange<size_t>(1, 2);
  const size_t d = m.ready ? c.head_dim : 4, dv = m.ready ? c.v_head_dim : 4;
  const size_t bt = m.ready ? c.block_tokens : 1;
  size_t layer = m.ready ? in.ConsumeIntegralInRange<size_t>(0, c.layers) : 0;  // layers itself: refused
  const uint32_t* gens = in.ConsumeBool() ? table.gens.data() : nullptr;
  const size_t tokens = fuzz::Dim(in, 2 * bt + 3);
  // Mostly where the layer's written positions end (a sequence growing), else anywhere.
  const bool at_end = m.ready && layer < c.layers && in.ConsumeBool();
  size_t pos = at_end ? WrittenEnd(m, table, gens, layer) - (in.ConsumeIntegralInRange<int>(0, 3) == 0)
                      : in.ConsumeIntegralInRange<size_t>(0, table.size() * bt + 2);
  if (pos == SIZE_MAX) pos = 0;
  const size_t ks = heads * d + in.ConsumeIntegralInRange<size_t>(0, 2), vs = heads * dv + in.ConsumeIntegralInRange<size_t>(0, 2);
  std::vector<float> kf(std::max<size_t>(1, tokens * ks)), vf(std::max<size_t>(1, tokens * vs));
  st.values.fill(kf);
  st.values.fill(vf);
  std::vector<T> k(kf.size()), v(vf.size());
  for (size_t i = 0; i < k.size(); ++i) k[i] = testing::FromF32<T>(kf[i]);
  for (size_t i = 0; i < v.size(); ++i) v[i] = testing::FromF32<T>(vf[i]);
  HeadsView<const T> kv{k.data(), tokens, heads, d, ks, d}, vv{v.data(), tokens, heads, dv, vs, dv};
  KvSequence seq{table.ids.data(), table.size(), 0, gens};
  const int which = in.ConsumeIntegralInRange<int>(0, 2) == 0 ? in.ConsumeIntegralInRange<int>(1, 9) : 0;
  bool corrupt = false;
  switch (which) {
    case 1: if (heads * d) kv.token_stride = heads * d - 1, corrupt = true; break;
    case 2: if (tokens && d) kv.data = nullptr, corrupt = true; break;
    case 3: if (tokens && dv) vv.data = nullptr, corrupt = true; break;
    case 4: kv.heads = heads + 1, kv.token_stride = (heads + 1) * d, corrupt = true; break;
    case 5: vv.head_dim = dv + 1, vv.head_stride = dv + 1, vv.token_stride = heads * (dv + 1), corrupt = true; break;
    case 6: if (tokens) vv.tokens = tokens - 1, corrupt = true; break;
    case 7: if (m.ready && tokens && d) kv.data = reinterpret_cast<const T*>(st.cache.value_rows(0, 0)), corrupt = true; break;
    case 8: pos = fuzz::HugeDim(in), corrupt = true; break;
    case 9: if (!table.empty()) seq.blocks = nullptr, corrupt = true; break;
    default: break;
  }
  // What the model accepts: a cache, a layer, a table covering [0, pos + T);
  // the entries of [pos, pos + T) held, and position pos - 1 written unless
  // its block is no longer held (released behind a window) or pos is 0.
  bool valid = m.ready && !corrupt && layer < c.layers && pos + tokens <= table.size() * bt;
  if (valid && tokens) {
    for (size_t b = pos / bt; b < (pos + tokens + bt - 1) / bt; ++b) valid &= m.held(table.ids[b], gens, b);
    const size_t before = (pos - 1) / bt;  // the block of pos - 1 (unused when pos is 0)
    valid = valid && (pos == 0 || !m.held(table.ids[before], gens, before) || m.written(table.ids, gens, layer, pos - 1));
  }
  const Status s = kv_cache_write(st.cache, layer, seq, pos, kv, vv);
  TILEKIT_FUZZ_CHECK((s == Status::kOk) == valid, "kv_cache_write of %zu tokens at %zu (table of %zu, corruption %d): %s (%s)",
                     tokens, pos, table.size(), which, status_name(s), s == Status::kOk ? "" : last_error());
  if (s != Status::kOk || tokens == 0) return;
  for (size_t t = 0; t < tokens; ++t) {
    const size_t p = pos + t;
    const uint32_t block = table.ids[p / bt];
    const size_t slot = p % bt;
    for (size_t e = 0; e < heads * d; ++e) m.store(m.k_at(block, layer, slot), e, testing::ToF32(k[t * ks + e]));
    for (size_t e = 0; e < heads * dv; ++e) m.store(m.v_at(block, layer, slot), e, testing::ToF32(v[t * vs + e]));
    m.rows[block * c.layers + layer] = slot + 1;  // the layer's positions end at pos + T
  }
  // Rows past the write in later held blocks are no longer valid, up to the
  // first block already empty.
  for (size_t b = (pos + tokens + bt - 1) / bt; b < table.size() && m.held(table.ids[b], gens, b); ++b) {
    size_t& rows = m.rows[table.ids[b] * c.layers + layer];
    if (rows == 0) break;
    rows = 0;
  }
}

// Attention at a length: near where the layer's written positions end (one
// short, exact, one past) or anywhere, with a window or not. Accepted exactly
// when the positions the mask reads are written in held blocks and position
// `length` is not; then against the fp64 reference of the K/V the model holds.
void Attend(FuzzedDataProvider& in, State& st, const Table& table) {
  const Model& m = st.model;
  if (!m.ready) return;
  const KvCacheConfig& c = m.cfg;
  const size_t layer = in.ConsumeIntegralInRange<size_t>(0, c.layers - 1), bt = c.block_tokens;
  const uint32_t* gens = in.ConsumeBool() ? table.gens.data() : nullptr;
  const size_t end = WrittenEnd(m, table, gens, layer);
  size_t len = in.ConsumeIntegralInRange<int>(0, 3) ? end + 1 - std::min<size_t>(end + 1, in.ConsumeIntegralInRange<size_t>(0, 2))
                                                    : in.ConsumeIntegralInRange<size_t>(0, table.size() * bt + 1);
  len = std::min<size_t>(std::max<size_t>(len, 1), 200);
  const size_t group = fuzz::Pick<size_t>(in, {1, 2, 4}), hq = c.kv_heads * group, d = c.head_dim, dv = c.v_head_dim;
  const size_t t = in.ConsumeIntegralInRange<size_t>(1, std::min<size_t>(len, 4));
  const bool causal = in.ConsumeBool();
  const size_t window = in.ConsumeBool() ? in.ConsumeIntegralInRange<size_t>(1, len + 1) : 0;
  const size_t first_query = len - t, from = window && first_query + 1 > window ? first_query + 1 - window : 0;
  Status want = len > table.size() * bt ? Status::kInvalidArgument : Status::kOk;
  for (size_t j = from; j < len && want == Status::kOk; ++j) {
    if (!m.written(table.ids, gens, layer, j)) want = Status::kInvalidArgument;
  }
  if (want == Status::kOk && m.written(table.ids, gens, layer, len)) want = Status::kInvalidArgument;  // one short
  std::vector<float> q(t * hq * d), k(len * c.kv_heads * d), v(len * c.kv_heads * dv), out(t * hq * dv + 1);
  st.values.fill(q);
  fuzz::Poison(out);
  AttentionParams p;
  p.mask.causal = causal;
  p.mask.window = window;
  const Status s = attention(HeadsView<const float>{q.data(), t, hq, d, hq * d, d}, st.cache, layer,
                             KvSequence{table.ids.data(), table.size(), len, gens},
                             HeadsView<float>{out.data(), t, hq, dv, hq * dv, dv}, p);
  TILEKIT_FUZZ_CHECK(s == want, "attention at length %zu (written to %zu, window %zu, %zu queries): %s, expected %s (%s)",
                     len, end, window, t, status_name(s), status_name(want), s == Status::kOk ? "" : last_error());
  if (std::getenv("KV_CACHE_FUZZ_VERBOSE")) {  // replaying: what each attention met
    std::fprintf(stderr, "attention at %zu (written to %zu, window %zu): %s\n", len, end, window,
                 s == Status::kOk ? "ok" : last_error());
  }
  if (s != Status::kOk) {
    for (float f : out) {
      uint32_t bits;
      std::memcpy(&bits, &f, 4);
      TILEKIT_FUZZ_CHECK(bits == 0xA5A5A5A5u, "refused attention wrote its output");
    }
    return;
  }
  // K/V the mask reads, from the model (positions before `from` are never read: zeros).
  for (size_t j = from; j < len; ++j) {
    for (size_t e = 0; e < c.kv_heads * d; ++e) k[j * c.kv_heads * d + e] = m.load(m.k_at(table.ids[j / bt], layer, j % bt), e);
    for (size_t e = 0; e < c.kv_heads * dv; ++e) v[j * c.kv_heads * dv + e] = m.load(m.v_at(table.ids[j / bt], layer, j % bt), e);
  }
  testing::AttentionProblem pr;
  pr.t = t, pr.s = len, pr.hq = hq, pr.hkv = c.kv_heads, pr.d = d, pr.dv = dv;
  pr.q = q.data(), pr.k = k.data(), pr.v = v.data();
  pr.q_stride = hq * d, pr.k_stride = c.kv_heads * d, pr.v_stride = c.kv_heads * dv;
  pr.causal = causal;
  pr.window = window;
  pr.tile_keys = std::min<size_t>(64, bt);
  const testing::AttentionReference ref = testing::AttentionReference64(pr);
  for (size_t i = 0; i < ref.o.size(); ++i) {
    const double err = std::fabs(out[i] - ref.o[i]);
    TILEKIT_FUZZ_CHECK(err <= ref.bound[i] + 1e-37, "attention out[%zu] = %.9g, want %.9g (error %.3g > %.3g)", i,
                       out[i], ref.o[i], err, ref.bound[i]);
  }
  uint32_t last;
  std::memcpy(&last, &out.back(), 4);
  TILEKIT_FUZZ_CHECK(last == 0xA5A5A5A5u, "attention wrote past its output");
}

void Run(FuzzedDataProvider& in) {
  fuzz::Force(fuzz::PickPath(in));
  State st;
  st.values = fuzz::Values(in.ConsumeIntegral<uint64_t>());
  for (int step = 0; step < 40 && in.remaining_bytes() > 0; ++step) {
    const int op = in.ConsumeIntegralInRange<int>(0, 9);
    Table& table = st.tables[in.ConsumeIntegralInRange<size_t>(0, 2)];
    Table& other = st.tables[in.ConsumeIntegralInRange<size_t>(0, 2)];
    static const char* const kNames[] = {"init", "allocate", "allocate", "share", "release", "write", "write",
                                         "write (bf16)", "attention", "attention"};
    switch (op) {
      case 0: Init(in, st); break;
      case 1: case 2: Allocate(in, st, table); break;
      case 3: ShareOrRelease(in, st, table, other, true); break;
      case 4: ShareOrRelease(in, st, table, other, false); break;
      case 5: case 6: Write<float>(in, st, table); break;
      case 7: Write<bf16>(in, st, table); break;
      default: Attend(in, st, table); break;
    }
    CheckState(st, kNames[op]);
  }
}

}  // namespace
}  // namespace tilekit

TILEKIT_FUZZ_ENTRY(tilekit::Run)

// Definitions of attention/attention.h: validation, the split into tasks
// (sequence × KV head × query block × key chunk), threading, normalisation and
// the merge of key chunks. The flash kernel itself is per target
// (attention-inl.h), and so is the store of a normalised row (store-inl.h).
#ifndef TILEKIT_ATTENTION_ATTENTION_IMPL_H_
#define TILEKIT_ATTENTION_ATTENTION_IMPL_H_

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <vector>

#include "tilekit/attention/attention.h"
#include "tilekit/attention/kv_cache-impl.h"
#include "tilekit/attention/plan.h"
#include "tilekit/base/aligned_buffer.h"
#include "tilekit/cpu/dispatch.h"
#include "tilekit/attention/exports.h"
#include "tilekit/threading/split.h"
#include "tilekit/threading/workspace.h"

namespace tilekit {

namespace detail {

// Up to this many query tokens (decode, speculative and small chunks) the keys
// are split into chunks of kAttnSplitKeys (rounded up to whole cache blocks), so
// that one sequence with few heads still feeds every core. The chunking
// depends on S and the block size only: the same partial sums, merged in the
// same order, for any thread count.
constexpr size_t kAttnSplitMaxTokens = 16;
constexpr size_t kAttnSplitKeys = 512;
constexpr size_t kAttnMaxChunks = 128;

// One sequence of a call, with where its rows go.
struct AttnOutput {
  void* out = nullptr;  // float or bf16 [t][hq][dv]
  size_t stride = 0;    // elements between tokens
  float* lse = nullptr;
};

struct AttnTask {
  size_t seq, h0, h1, t0, t1, j0, j1;  // KV heads [h0, h1), head-major rows
  size_t slot;   // partial-result slot, or kNoSlot: normalise straight into the output
  size_t cost;   // keys × rows, for ordering
};
constexpr size_t kNoSlot = SIZE_MAX;

// A query block whose keys were split: its partial results occupy `count`
// consecutive slots from `first`, in key order.
struct AttnMergeTask {
  size_t seq, h0, h1, t0, t1, first, count;
};

struct AttnJob {
  Isa isa = Isa::kScalar;
  AttnBf16 bf16;  // what the path does with bf16 K/V
  AttnShape shape;
  const AttnSeq* seqs = nullptr;
  const AttnOutput* outs = nullptr;
  bool out_bf16 = false;
  const AttnTask* tasks = nullptr;
  const AttnMergeTask* merges = nullptr;
  float* partials = nullptr;
  size_t slot_floats = 0, rows_max = 0;
  std::atomic<bool> out_of_memory{false};
};

// The calling thread's task lists and partial results: they only grow.
struct AttnCallBuffers {
  std::vector<AttnTask> tasks;
  std::vector<AttnMergeTask> merges;
  std::vector<AttnSeq> seqs;
  std::vector<AttnOutput> outs;
  AlignedBuffer partials;
};
inline AttnCallBuffers& attn_call_buffers() {
  static thread_local AttnCallBuffers buffers;
  return buffers;
}

// The row store of a call's path (store-inl.h), looked up once per task: on
// the paths with BF16 it rounds a bf16 output in one instruction.
struct AttnRowStore {
  void (*store)(const float* acc, float l, size_t dv, void* out, bool out_bf16, bool native_bf16);
  bool native_bf16;
  explicit AttnRowStore(Isa isa)
      : store(&TILEKIT_DISPATCH_ON(isa, AttnStoreRow)), native_bf16(cpu::isa_converts_bf16(isa)) {}
};

// Stores one normalised row: acc / l (zeros when nothing was attended), and
// lse = m + log l (−inf then).
template <typename TO>
void attn_store_row(const AttnRowStore& rs, const float* acc, float m, float l, size_t dv, TO* out, float* lse) {
  rs.store(acc, l, dv, out, kIsBf16<TO>, rs.native_bf16);
  if (lse) lse[0] = l == 0.f ? -std::numeric_limits<float>::infinity() : m + std::log(l);
}

// Merges n partial rows (acc_i unnormalised with max m_i and sum l_i; a
// normalised row is acc = o, m = lse, l = 1) in order into out.
template <typename TO>
void attn_merge_rows(const AttnRowStore& rs, const float* const* acc, const float* m, const float* l, size_t n,
                     size_t dv, TO* out, float* lse, float* scratch) {
  float mx = -std::numeric_limits<float>::infinity();
  for (size_t i = 0; i < n; ++i) mx = std::max(mx, m[i]);
  float w[kAttnMaxChunks];
  float sum = 0.f;
  if (mx == -std::numeric_limits<float>::infinity()) {
    attn_store_row(rs, scratch, mx, 0.f, dv, out, lse);
    return;
  }
  for (size_t i = 0; i < n; ++i) {
    w[i] = m[i] == -std::numeric_limits<float>::infinity() ? 0.f : std::exp(m[i] - mx);
    sum += w[i] * l[i];
  }
  for (size_t c = 0; c < dv; ++c) {
    float x = 0.f;
    for (size_t i = 0; i < n; ++i) x += w[i] * acc[i][c];
    scratch[c] = x;
  }
  attn_store_row(rs, scratch, mx, sum, dv, out, lse);
}

template <typename TO>
void attn_store_rows(const AttnJob& job, size_t seq, size_t h0, size_t h1, size_t t0, size_t t1, const float* acc,
                     const float* m, const float* l) {
  const AttnShape& sh = job.shape;
  const AttnOutput& o = job.outs[seq];
  const size_t rh = (t1 - t0) * sh.group;
  const AttnRowStore rs(job.isa);
  for (size_t kv_head = h0; kv_head < h1; ++kv_head) {
    for (size_t t = t0; t < t1; ++t) {
      for (size_t g = 0; g < sh.group; ++g) {
        const size_t r = (kv_head - h0) * rh + (t - t0) * sh.group + g, h = kv_head * sh.group + g;
        TO* row = static_cast<TO*>(o.out) + t * o.stride + h * sh.dv;
        attn_store_row(rs, acc + r * sh.dv, m[r], l[r], sh.dv, row, o.lse ? o.lse + t * sh.hq + h : nullptr);
      }
    }
  }
}

inline void attn_run_task(void* context, size_t index) {
  AttnJob& job = *static_cast<AttnJob*>(context);
  const AttnTask& task = job.tasks[index];
  const AttnShape& sh = job.shape;
  const size_t rows = (task.t1 - task.t0) * sh.group * (task.h1 - task.h0);
  const size_t kernel_floats = AttnWorkspaceFloats(rows, sh.d, sh.dv);
  const bool direct = task.slot == kNoSlot;
  float* ws = thread_workspace(kernel_floats + (direct ? rows * (sh.dv + 2) : 0));
  if (!ws) {
    job.out_of_memory.store(true);
    return;
  }
  float* acc = direct ? ws + kernel_floats : job.partials + task.slot * job.slot_floats;
  float* m = acc + rows * sh.dv;
  float* l = m + rows;
  TILEKIT_DISPATCH_ON(job.isa, AttendRows)(sh, job.seqs[task.seq], task.h0, task.h1, task.t0, task.t1, task.j0,
                                           task.j1, acc, m, l, ws, job.bf16);
  if (!direct) return;
  if (job.out_bf16) {
    attn_store_rows<bf16>(job, task.seq, task.h0, task.h1, task.t0, task.t1, acc, m, l);
  } else {
    attn_store_rows<float>(job, task.seq, task.h0, task.h1, task.t0, task.t1, acc, m, l);
  }
}

template <typename TO>
void attn_merge_block(const AttnJob& job, const AttnMergeTask& mt, float* scratch) {
  const AttnShape& sh = job.shape;
  const AttnOutput& o = job.outs[mt.seq];
  const size_t rh = (mt.t1 - mt.t0) * sh.group, rows = rh * (mt.h1 - mt.h0);
  const float* acc[kAttnMaxChunks];
  float m[kAttnMaxChunks], l[kAttnMaxChunks];
  const AttnRowStore rs(job.isa);
  for (size_t r = 0; r < rows; ++r) {
    const size_t t = mt.t0 + r % rh / sh.group, h = (mt.h0 + r / rh) * sh.group + r % sh.group;
    for (size_t i = 0; i < mt.count; ++i) {
      const float* slot = job.partials + (mt.first + i) * job.slot_floats;
      acc[i] = slot + r * sh.dv;
      m[i] = slot[rows * sh.dv + r];
      l[i] = slot[rows * sh.dv + rows + r];
    }
    attn_merge_rows(rs, acc, m, l, mt.count, sh.dv, static_cast<TO*>(o.out) + t * o.stride + h * sh.dv,
                    o.lse ? o.lse + t * sh.hq + h : nullptr, scratch);
  }
}

inline void attn_run_merge(void* context, size_t index) {
  AttnJob& job = *static_cast<AttnJob*>(context);
  float* scratch = thread_workspace(job.shape.dv);
  if (!scratch) {
    job.out_of_memory.store(true);
    return;
  }
  if (job.out_bf16) {
    attn_merge_block<bf16>(job, job.merges[index], scratch);
  } else {
    attn_merge_block<float>(job, job.merges[index], scratch);
  }
}

// Runs the tasks over the executor only when the call is worth waking it
// (threading/split.h): a decode step of a small model otherwise paid a pool
// wake-up per layer for a few hundred nanoseconds of attention.
inline void attn_run(Executor* ex, size_t tasks, Executor::TaskFn fn, AttnJob* job, const Work& work) {
  if (worth_tasks(ex, work, tasks) > 1) {
    ex->run(tasks, fn, job);
  } else {
    for (size_t i = 0; i < tasks; ++i) fn(job, i);
  }
}

// Splits every sequence into tasks and runs them, then the merges.
inline Status attn_execute(const char* op, const AttnShape& sh, const AttnSeq* seqs, const AttnOutput* outs,
                           size_t count, bool out_bf16, Executor* ex) {
  AttnCallBuffers& buf = attn_call_buffers();
  buf.tasks.clear();
  buf.merges.clear();
  const size_t tokens_per_task = AttnTokensPerTask(sh.group);
  size_t slots = 0, rows_max = 0;
  for (size_t si = 0; si < count; ++si) {
    const AttnSeq& sq = seqs[si];
    const bool split = sq.t <= kAttnSplitMaxTokens;
    size_t chunk = sq.s;
    if (split) {
      const size_t bt = sq.kv.blocks ? sq.kv.block_tokens : 1;
      chunk = std::max<size_t>(1, (kAttnSplitKeys + bt - 1) / bt) * bt;
      // At most kAttnMaxChunks chunks (longer sequences get longer chunks).
      while ((sq.s + chunk - 1) / chunk > kAttnMaxChunks) chunk *= 2;
    }
    for (size_t t0 = 0; t0 < sq.t; t0 += tokens_per_task) {
      const size_t t1 = std::min(sq.t, t0 + tokens_per_task);
      // Few rows per head, or one decode token's group (the row-by-row
      // kernel): one task takes every KV head of its key chunk (see AttendRowsT).
      const bool by_row = !AttnTiledTask(sh, sq, t1 - t0);
      const size_t heads_per_task = by_row ? sh.hkv : 1;
      rows_max = std::max(rows_max, (t1 - t0) * sh.group * heads_per_task);
      // The keys this block sees (the union of its rows' ranges).
      size_t lo = sq.s, hi = 0;
      for (size_t t = t0; t < t1; ++t) {
        size_t a, b;
        AttnKeyRange(sh, sq, t, &a, &b);
        if (a < b) {
          lo = std::min(lo, a);
          hi = std::max(hi, b);
        }
      }
      const size_t c0 = lo < hi ? lo / chunk : 0, c1 = lo < hi ? (hi + chunk - 1) / chunk : 1;
      const size_t n = c1 - c0;
      for (size_t h = 0; h < sh.hkv; h += heads_per_task) {
        const size_t h1 = std::min(sh.hkv, h + heads_per_task);
        if (n > 1) buf.merges.push_back(AttnMergeTask{si, h, h1, t0, t1, slots, n});
        for (size_t c = c0; c < c1; ++c) {
          const size_t j0 = std::max(lo, c * chunk), j1 = std::min(hi, (c + 1) * chunk);
          const size_t cost = (j1 > j0 ? j1 - j0 : 0) * (t1 - t0) * (h1 - h) + 1;
          buf.tasks.push_back(AttnTask{si, h, h1, t0, t1, j0, std::max(j0, j1), n > 1 ? slots++ : kNoSlot, cost});
        }
      }
    }
  }
  // Longest first, so the causal mask's long rows do not finish last on one thread.
  std::sort(buf.tasks.begin(), buf.tasks.end(), [](const AttnTask& x, const AttnTask& y) {
    return x.cost != y.cost ? x.cost > y.cost : x.slot < y.slot;
  });
  AttnJob job;
  job.isa = cpu::active_isa();  // once per call: every task runs the same path
  job.bf16 = AttnBf16Of(job.isa);
  job.shape = sh;
  job.shape.isa = job.isa;
  job.seqs = seqs;
  job.outs = outs;
  job.out_bf16 = out_bf16;
  job.tasks = buf.tasks.data();
  job.merges = buf.merges.data();
  job.rows_max = rows_max;
  job.slot_floats = rows_max * (sh.dv + 2);
  if (slots) {
    size_t bytes;
    if (!mul_fits(slots, job.slot_floats * sizeof(float), &bytes) || !buf.partials.reserve(bytes)) {
      return fail(Status::kOutOfMemory, "%s: cannot allocate %zu partial results", op, slots);
    }
    job.partials = buf.partials.as<float>();
  }
  // Each (row, key) of a task: a d-long dot product and a dv-long update per
  // query head of the group; each key's K and V rows read once per task.
  double key_rows = 0, keys = 0;
  for (const AttnTask& t : buf.tasks) {
    key_rows += static_cast<double>(t.cost);
    keys += static_cast<double>(t.j1 - t.j0);
  }
  const Work work{2.0 * key_rows * sh.group * (sh.d + sh.dv), keys * (sh.d + sh.dv) * sizeof(float)};
  attn_run(ex, buf.tasks.size(), &attn_run_task, &job, work);
  if (!buf.merges.empty()) attn_run(ex, buf.merges.size(), &attn_run_merge, &job, work);
  if (job.out_of_memory.load()) return fail(Status::kOutOfMemory, "%s: cannot allocate the workspace", op);
  return Status::kOk;
}

inline Status attn_check_params(const char* op, const AttentionParams& p, size_t t, size_t s) {
  if (!(p.scale >= 0.f) || !std::isfinite(p.scale)) {
    return fail(Status::kInvalidArgument, "%s: scale %g must be finite and >= 0 (0: 1/sqrt(d))", op, p.scale);
  }
  if (!(p.mask.softcap >= 0.f) || !std::isfinite(p.mask.softcap)) {
    return fail(Status::kInvalidArgument, "%s: softcap %g must be finite and >= 0 (0: none)", op, p.mask.softcap);
  }
  if ((p.mask.causal || p.mask.window) && t > s) {
    return fail(Status::kShapeMismatch, "%s: %zu queries but %zu keys: a causal or window mask needs T <= S", op, t,
                s);
  }
  if (p.mask.additive.data) {
    const Status st = check_view(op, "the additive mask", p.mask.additive);
    if (st != Status::kOk) return st;
    if (p.mask.additive.rows != t || p.mask.additive.cols != s) {
      return fail(Status::kShapeMismatch, "%s: the additive mask is %zu x %zu, expected %zu x %zu (T x S)", op,
                  p.mask.additive.rows, p.mask.additive.cols, t, s);
    }
  }
  return Status::kOk;
}

// Q and the output of one sequence: shapes against (hkv, d, dv), and overlaps
// of the output with what is read.
template <typename TO>
Status attn_check_qo(const char* op, const HeadsView<const float>& q, const HeadsView<TO>& out, const float* lse,
                     size_t hkv, size_t d, size_t dv, size_t s, const AttentionParams& p, size_t* out_bytes) {
  size_t q_bytes = 0;
  Status st;
  if ((st = check_heads(op, "q", q, &q_bytes)) != Status::kOk) return st;
  if ((st = check_heads(op, "out", out, out_bytes)) != Status::kOk) return st;
  if (q.tokens == 0 || s == 0) {
    return fail(Status::kInvalidArgument, "%s: T = %zu queries and S = %zu keys must both be > 0", op, q.tokens, s);
  }
  if (hkv == 0 || q.heads == 0 || q.heads % hkv != 0) {
    return fail(Status::kShapeMismatch, "%s: %zu query heads are not a multiple of %zu KV heads", op, q.heads, hkv);
  }
  if (q.head_dim != d || d == 0) {
    return fail(Status::kShapeMismatch, "%s: q has head_dim %zu, k has %zu", op, q.head_dim, d);
  }
  if (out.tokens != q.tokens || out.heads != q.heads || out.head_dim != dv || dv == 0) {
    return fail(Status::kShapeMismatch, "%s: out is %zu x %zu x %zu, expected %zu x %zu x %zu (T x Hq x dv)", op,
                out.tokens, out.heads, out.head_dim, q.tokens, q.heads, dv);
  }
  if ((st = attn_check_params(op, p, q.tokens, s)) != Status::kOk) return st;
  const size_t lse_bytes = q.tokens * q.heads * sizeof(float);
  size_t mask_bytes = 0;
  if (p.mask.additive.data) span_bytes(p.mask.additive, &mask_bytes);
  if (ranges_overlap(q.data, q_bytes, out.data, *out_bytes)) return fail(Status::kAliasing, "%s: q overlaps out", op);
  if (ranges_overlap(p.mask.additive.data, mask_bytes, out.data, *out_bytes)) {
    return fail(Status::kAliasing, "%s: the mask overlaps out", op);
  }
  if (lse && (ranges_overlap(lse, lse_bytes, out.data, *out_bytes) || ranges_overlap(lse, lse_bytes, q.data, q_bytes) ||
              ranges_overlap(lse, lse_bytes, p.mask.additive.data, mask_bytes))) {
    return fail(Status::kAliasing, "%s: lse overlaps q, out or the mask", op);
  }
  return Status::kOk;
}

inline AttnShape attn_shape(size_t hq, size_t hkv, size_t d, size_t dv, const AttentionParams& p) {
  AttnShape sh;
  sh.hq = hq;
  sh.hkv = hkv;
  sh.group = hq / hkv;
  sh.d = d;
  sh.dv = dv;
  sh.scale = p.scale > 0.f ? p.scale : 1.f / std::sqrt(static_cast<float>(d));
  sh.softcap = p.mask.softcap;
  sh.causal = p.mask.causal;
  sh.window = p.mask.window;
  return sh;
}

inline AttnSeq attn_seq(const HeadsView<const float>& q, size_t s, const AttentionParams& p) {
  AttnSeq sq;
  sq.q = q.data;
  sq.q_stride = q.token_stride;
  sq.t = q.tokens;
  sq.s = s;
  sq.mask = p.mask.additive.data;
  sq.mask_ld = p.mask.additive.ld;
  return sq;
}

template <typename TKV, typename TO>
Status attention_plain(const HeadsView<const float>& q, const HeadsView<const TKV>& k, const HeadsView<const TKV>& v,
                       const HeadsView<TO>& out, const AttentionParams& p, float* lse) {
  const char* op = "attention";
  size_t k_bytes = 0, v_bytes = 0, out_bytes = 0;
  Status st;
  if ((st = check_heads(op, "k", k, &k_bytes)) != Status::kOk) return st;
  if ((st = check_heads(op, "v", v, &v_bytes)) != Status::kOk) return st;
  if (k.tokens != v.tokens || k.heads != v.heads) {
    return fail(Status::kShapeMismatch, "%s: k is %zu tokens x %zu heads, v %zu x %zu", op, k.tokens, k.heads,
                v.tokens, v.heads);
  }
  if ((st = attn_check_qo(op, q, out, lse, k.heads, k.head_dim, v.head_dim, k.tokens, p, &out_bytes)) != Status::kOk) return st;
  const size_t lse_bytes = lse ? q.tokens * q.heads * sizeof(float) : 0;
  if (ranges_overlap(k.data, k_bytes, out.data, out_bytes) || ranges_overlap(v.data, v_bytes, out.data, out_bytes) ||
      ranges_overlap(k.data, k_bytes, lse, lse_bytes) || ranges_overlap(v.data, v_bytes, lse, lse_bytes)) {
    return fail(Status::kAliasing, "%s: k or v overlaps out or lse", op);
  }
  const AttnShape sh = attn_shape(q.heads, k.heads, k.head_dim, v.head_dim, p);
  AttnCallBuffers& buf = attn_call_buffers();
  buf.seqs.assign(1, attn_seq(q, k.tokens, p));
  AttnKv& kv = buf.seqs[0].kv;
  kv.k = reinterpret_cast<const unsigned char*>(k.data);
  kv.v = reinterpret_cast<const unsigned char*>(v.data);
  kv.k_stride = k.token_stride * sizeof(TKV);
  kv.v_stride = v.token_stride * sizeof(TKV);
  kv.bf16 = kIsBf16<TKV>;
  buf.outs.assign(1, AttnOutput{out.data, out.token_stride, lse});
  return attn_execute(op, sh, buf.seqs.data(), buf.outs.data(), 1, kIsBf16<TO>, p.executor);
}

inline AttnKv attn_cache_kv(const KvCache& cache, size_t layer, const KvSequence& seq) {
  const KvCacheConfig& c = cache.config();
  const size_t elem = kv_dtype_bytes(c.dtype);
  AttnKv kv;
  kv.k = cache.key_rows(layer, 0);
  kv.v = cache.value_rows(layer, 0);
  kv.k_stride = c.kv_heads * c.head_dim * elem;
  kv.v_stride = c.kv_heads * c.v_head_dim * elem;
  kv.blocks = seq.blocks;
  kv.block_tokens = c.block_tokens;
  kv.block_stride = cache.block_stride();
  kv.bf16 = c.dtype == KvDtype::kBf16;
  return kv;
}

// One sequence of the cache: its checks, and its plan appended to the call's.
template <typename TO>
Status attn_add_cached(const char* op, const KvCache& cache, size_t layer, const KvSequence& seq,
                       const HeadsView<const float>& q, const HeadsView<TO>& out, float* lse, const AttentionParams& p) {
  Status st = check_kv_sequence(op, cache, layer, seq, seq.length);
  if (st != Status::kOk) return st;
  const KvCacheConfig& c = cache.config();
  size_t out_bytes = 0;
  if ((st = attn_check_qo(op, q, out, lse, c.kv_heads, c.head_dim, c.v_head_dim, seq.length, p, &out_bytes)) !=
      Status::kOk) {
    return st;
  }
  if (q.tokens > seq.length) {
    return fail(Status::kShapeMismatch, "%s: %zu queries but the sequence holds %zu tokens (write K/V first)", op,
                q.tokens, seq.length);
  }
  // The blocks the mask lets the queries read (AttnKeyRange of the first
  // query: a window drops what is before it), checked per block.
  const size_t first_query = seq.length - q.tokens, window = p.mask.window;
  const size_t from = window && first_query + 1 > window ? first_query + 1 - window : 0;
  if ((st = check_kv_written(op, cache, layer, seq, from, seq.length)) != Status::kOk) return st;
  const unsigned char* pool = cache.key_rows(0, 0);
  const size_t lse_bytes = lse ? q.tokens * q.heads * sizeof(float) : 0;
  if (ranges_overlap(pool, cache.bytes(), out.data, out_bytes) || ranges_overlap(pool, cache.bytes(), lse, lse_bytes)) {
    return fail(Status::kAliasing, "%s: out or lse lies inside the cache", op);
  }
  AttnCallBuffers& buf = attn_call_buffers();
  buf.seqs.push_back(attn_seq(q, seq.length, p));
  buf.seqs.back().kv = attn_cache_kv(cache, layer, seq);
  buf.outs.push_back(AttnOutput{out.data, out.token_stride, lse});
  return Status::kOk;
}

template <typename TO>
Status attention_cached(const HeadsView<const float>& q, const KvCache& cache, size_t layer, const KvSequence& seq,
                        const HeadsView<TO>& out, const AttentionParams& p, float* lse) {
  AttnCallBuffers& buf = attn_call_buffers();
  buf.seqs.clear();
  buf.outs.clear();
  const Status st = attn_add_cached("attention", cache, layer, seq, q, out, lse, p);
  if (st != Status::kOk) return st;
  const KvCacheConfig& c = cache.config();
  return attn_execute("attention", attn_shape(q.heads, c.kv_heads, c.head_dim, c.v_head_dim, p), buf.seqs.data(),
                      buf.outs.data(), 1, kIsBf16<TO>, p.executor);
}

}  // namespace detail

TILEKIT_API Status attention(HeadsView<const float> q, HeadsView<const float> k, HeadsView<const float> v,
                             HeadsView<float> out, const AttentionParams& params, float* lse) {
  return detail::attention_plain(q, k, v, out, params, lse);
}
TILEKIT_API Status attention(HeadsView<const float> q, HeadsView<const float> k, HeadsView<const float> v,
                             HeadsView<bf16> out, const AttentionParams& params, float* lse) {
  return detail::attention_plain(q, k, v, out, params, lse);
}
TILEKIT_API Status attention(HeadsView<const float> q, HeadsView<const bf16> k, HeadsView<const bf16> v,
                             HeadsView<float> out, const AttentionParams& params, float* lse) {
  return detail::attention_plain(q, k, v, out, params, lse);
}
TILEKIT_API Status attention(HeadsView<const float> q, HeadsView<const bf16> k, HeadsView<const bf16> v,
                             HeadsView<bf16> out, const AttentionParams& params, float* lse) {
  return detail::attention_plain(q, k, v, out, params, lse);
}

TILEKIT_API Status attention(HeadsView<const float> q, const KvCache& cache, size_t layer, const KvSequence& seq,
                             HeadsView<float> out, const AttentionParams& params, float* lse) {
  return detail::attention_cached(q, cache, layer, seq, out, params, lse);
}
TILEKIT_API Status attention(HeadsView<const float> q, const KvCache& cache, size_t layer, const KvSequence& seq,
                             HeadsView<bf16> out, const AttentionParams& params, float* lse) {
  return detail::attention_cached(q, cache, layer, seq, out, params, lse);
}

TILEKIT_API Status attention_batch(const KvCache& cache, size_t layer, const AttentionBatchItem* items, size_t count,
                                   const AttentionParams& params) {
  const char* op = "attention_batch";
  if (count == 0) return Status::kOk;
  if (!items) return fail(Status::kNullPointer, "%s: items is null", op);
  if (params.mask.additive.data) {
    return fail(Status::kInvalidArgument, "%s: an additive mask is per sequence; call attention() per sequence", op);
  }
  for (size_t i = 1; i < count; ++i) {
    if (items[i].q.heads != items[0].q.heads) {
      return fail(Status::kShapeMismatch, "%s: item %zu has %zu query heads, item 0 has %zu", op, i,
                  items[i].q.heads, items[0].q.heads);
    }
  }
  detail::AttnCallBuffers& buf = detail::attn_call_buffers();
  buf.seqs.clear();
  buf.outs.clear();
  for (size_t i = 0; i < count; ++i) {
    const AttentionBatchItem& it = items[i];
    const Status st = detail::attn_add_cached(op, cache, layer, it.seq, it.q, it.out, it.lse, params);
    if (st != Status::kOk) return st;
  }
  // Each item checked alone above (sizes fit size_t). Items run in any order
  // and in parallel, so what one writes (out, lse) may not lie over anything
  // another reads or writes (q, out, lse).
  const auto bytes = [](const auto& view) { return view.tokens == 0 ? 0 : ((view.tokens - 1) * view.token_stride + view.heads * view.head_dim) * sizeof(*view.data); };
  const auto lse_bytes = [](const AttentionBatchItem& it) { return it.lse ? it.out.tokens * it.out.heads * sizeof(float) : 0; };
  for (size_t i = 0; i < count; ++i) {
    const AttentionBatchItem& a = items[i];
    for (size_t j = 0; j < count; ++j) {
      if (j == i) continue;
      const AttentionBatchItem& b = items[j];
      const bool out_hits = detail::ranges_overlap(a.out.data, bytes(a.out), b.out.data, bytes(b.out)) ||
                            detail::ranges_overlap(a.out.data, bytes(a.out), b.q.data, bytes(b.q)) ||
                            detail::ranges_overlap(a.out.data, bytes(a.out), b.lse, lse_bytes(b));
      const bool lse_hits = detail::ranges_overlap(a.lse, lse_bytes(a), b.q.data, bytes(b.q)) ||
                            detail::ranges_overlap(a.lse, lse_bytes(a), b.lse, lse_bytes(b));
      if (out_hits || lse_hits) {
        return fail(Status::kAliasing, "%s: the %s of item %zu overlaps the q, out or lse of item %zu", op,
                    out_hits ? "out" : "lse", i, j);
      }
    }
  }
  const KvCacheConfig& c = cache.config();
  return detail::attn_execute(op, detail::attn_shape(items[0].q.heads, c.kv_heads, c.head_dim, c.v_head_dim, params),
                              buf.seqs.data(), buf.outs.data(), count, false, params.executor);
}

TILEKIT_API Status attention_merge(HeadsView<const float> a, const float* lse_a, HeadsView<const float> b,
                                   const float* lse_b, HeadsView<float> out, float* lse_out) {
  const char* op = "attention_merge";
  size_t a_bytes = 0, b_bytes = 0, o_bytes = 0;
  Status st;
  if ((st = detail::check_heads(op, "a", a, &a_bytes)) != Status::kOk) return st;
  if ((st = detail::check_heads(op, "b", b, &b_bytes)) != Status::kOk) return st;
  if ((st = detail::check_heads(op, "out", out, &o_bytes)) != Status::kOk) return st;
  if (!lse_a || !lse_b || !lse_out) return fail(Status::kNullPointer, "%s: an lse is null", op);
  if (a.tokens != b.tokens || a.heads != b.heads || a.head_dim != b.head_dim || out.tokens != a.tokens ||
      out.heads != a.heads || out.head_dim != a.head_dim) {
    return fail(Status::kShapeMismatch, "%s: a is %zu x %zu x %zu, b %zu x %zu x %zu, out %zu x %zu x %zu", op,
                a.tokens, a.heads, a.head_dim, b.tokens, b.heads, b.head_dim, out.tokens, out.heads, out.head_dim);
  }
  // The lse arrays' size on its own: with head_dim 0 the views span nothing
  // and bound neither T nor H (attention_fuzz read lse_a far past its end).
  size_t lse_bytes = 0;
  if (!detail::mul_fits(a.tokens, a.heads, &lse_bytes) || !detail::mul_fits(lse_bytes, sizeof(float), &lse_bytes)) {
    return fail(Status::kOverflow, "%s: %zu x %zu lse values overflow size_t", op, a.tokens, a.heads);
  }
  const auto same = [](const void* x, const void* y, size_t sx, size_t sy) { return x == y && sx == sy; };
  const bool out_is_a = same(out.data, a.data, out.token_stride, a.token_stride), out_is_b = same(out.data, b.data, out.token_stride, b.token_stride);
  if ((!out_is_a && detail::ranges_overlap(a.data, a_bytes, out.data, o_bytes)) ||
      (!out_is_b && detail::ranges_overlap(b.data, b_bytes, out.data, o_bytes)) ||
      (lse_out != lse_a && detail::ranges_overlap(lse_a, lse_bytes, lse_out, lse_bytes)) ||
      (lse_out != lse_b && detail::ranges_overlap(lse_b, lse_bytes, lse_out, lse_bytes)) ||
      detail::ranges_overlap(lse_out, lse_bytes, out.data, o_bytes) ||
      // Rows are merged in order, so an input under an output would be read
      // after an earlier row overwrote it (attention_fuzz: lse_out over a).
      detail::ranges_overlap(lse_a, lse_bytes, out.data, o_bytes) ||
      detail::ranges_overlap(lse_b, lse_bytes, out.data, o_bytes) ||
      detail::ranges_overlap(a.data, a_bytes, lse_out, lse_bytes) ||
      detail::ranges_overlap(b.data, b_bytes, lse_out, lse_bytes)) {
    return fail(Status::kAliasing, "%s: out or lse_out overlaps an input other than in place", op);
  }
  float* scratch = detail::thread_workspace(a.head_dim);
  if (!scratch && a.head_dim) return fail(Status::kOutOfMemory, "%s: cannot allocate %zu floats", op, a.head_dim);
  const float ones[2] = {1.f, 1.f};
  const detail::AttnRowStore rs(cpu::active_isa());
  for (size_t t = 0; t < a.tokens; ++t) {
    for (size_t h = 0; h < a.heads; ++h) {
      const size_t i = t * a.heads + h;
      const float* rows[2] = {a.row(t, h), b.row(t, h)};
      const float m[2] = {lse_a[i], lse_b[i]};
      detail::attn_merge_rows(rs, rows, m, ones, 2, a.head_dim, out.row(t, h), lse_out + i, scratch);
    }
  }
  return Status::kOk;
}

}  // namespace tilekit

#endif  // TILEKIT_ATTENTION_ATTENTION_IMPL_H_

// Attention: O = softmax(mask(scale · Q Kᵀ)) V per query head, flash style
// (tiles of queries × keys, online softmax, fp32 accumulation), over K/V from
// a paged KvCache or from plain strided views.
//
// Shapes: Q [T][Hq][d], K [S][Hkv][d], V [S][Hkv][dv], O [T][Hq][dv], each a
// HeadsView with any token stride (slices of a fused QKV output). Hq is a
// multiple of Hkv: query head h reads KV head h / (Hq / Hkv) (MHA, GQA, MQA),
// with no copy of K/V. Optional log-sum-exp per row, lse[t * Hq + h] (natural
// log of the softmax denominator of the scaled, masked logits).
//
// Positions: query t sits at position S − T + t (bottom-right aligned), so a
// chunked prefill and a decode step give the rows a one-shot prefill gives.
// Masks are structure, not a tensor:
//   causal    key j is seen by query position p iff j <= p;
//   window w  (w > 0) key j is seen iff p − j < w (Mistral / Gemma sliding
//             window; with causal, the w most recent positions up to p);
//   softcap c (c > 0) logits become c · tanh(logit / c) (Gemma 2), after scale;
//   additive  an optional fp32 [T][S] mask added to the logits (after the
//             softcap), −inf removes a key. The fallback for other patterns.
// Keys a structural mask removes are never read (whole tiles are skipped), and
// keys an additive −inf removes never touch V, so stale or NaN cache contents
// outside the attended range cannot reach the output; NaN inside it does. A
// row whose every key is masked gets zeros and lse = −inf.
//
// Determinism: for few query tokens (decode) the keys are split into chunks
// fixed by S and the block size (never by the thread count) and the partial
// results merged in chunk order, so results are bitwise identical for any
// executor.
#ifndef TILEKIT_ATTENTION_ATTENTION_H_
#define TILEKIT_ATTENTION_ATTENTION_H_

#include <cstddef>

#include "tilekit/attention/heads.h"
#include "tilekit/attention/kv_cache.h"
#include "tilekit/base/api.h"
#include "tilekit/base/bf16.h"
#include "tilekit/base/matrix.h"
#include "tilekit/base/status.h"
#include "tilekit/threading/executor.h"

namespace tilekit {

struct AttentionMask {
  bool causal = false;
  size_t window = 0;                  // 0: no window
  float softcap = 0.f;                // 0: none
  MatrixView<const float> additive;   // T × S, empty (null data): none
};

struct AttentionParams {
  AttentionMask mask;
  float scale = 0.f;                  // 0: 1 / sqrt(head_dim)
  Executor* executor = nullptr;       // null: the calling thread
};

// K/V as plain strided views (models without a cache, cross-attention).
TILEKIT_API Status attention(HeadsView<const float> q, HeadsView<const float> k, HeadsView<const float> v,
                             HeadsView<float> out, const AttentionParams& params = {}, float* lse = nullptr);
TILEKIT_API Status attention(HeadsView<const float> q, HeadsView<const float> k, HeadsView<const float> v,
                             HeadsView<bf16> out, const AttentionParams& params = {}, float* lse = nullptr);
TILEKIT_API Status attention(HeadsView<const float> q, HeadsView<const bf16> k, HeadsView<const bf16> v,
                             HeadsView<float> out, const AttentionParams& params = {}, float* lse = nullptr);
TILEKIT_API Status attention(HeadsView<const float> q, HeadsView<const bf16> k, HeadsView<const bf16> v,
                             HeadsView<bf16> out, const AttentionParams& params = {}, float* lse = nullptr);

// K/V of `layer` from a cached sequence: S = seq.length, the T queries being
// its last T positions (their K/V written before the call). Refused
// (kInvalidArgument, checked per block, kv_cache.h): a position the mask reads
// that this layer has not written, K/V written at position S (the length left
// one short of the write), and a free block or one of another generation than
// seq.generations says. Entries before the window's first key are not read,
// so they may be kKvNoBlock.
TILEKIT_API Status attention(HeadsView<const float> q, const KvCache& cache, size_t layer, const KvSequence& seq,
                             HeadsView<float> out, const AttentionParams& params = {}, float* lse = nullptr);
TILEKIT_API Status attention(HeadsView<const float> q, const KvCache& cache, size_t layer, const KvSequence& seq,
                             HeadsView<bf16> out, const AttentionParams& params = {}, float* lse = nullptr);

// One sequence of a batched call: its queries (its last q.tokens positions),
// its blocks and length, its output and optional lse.
struct AttentionBatchItem {
  HeadsView<const float> q;
  KvSequence seq;
  HeadsView<float> out;
  float* lse = nullptr;
};

// Several sequences of different lengths in one call (a server's decode
// batch), sharing the structural mask and scale (no additive mask: it is per
// sequence). Work is spread over (sequence, KV head, query block, KV chunk).
TILEKIT_API Status attention_batch(const KvCache& cache, size_t layer, const AttentionBatchItem* items, size_t count,
                                   const AttentionParams& params = {});

// Combines two partial results of the same queries over disjoint key sets by
// their log-sum-exps: out = (e^lse_a · a + e^lse_b · b) / (e^lse_a + e^lse_b),
// lse_out = log(e^lse_a + e^lse_b). a, b, out: [T][H][dv]; lse_*: [T][H]. out
// may be a or b (in place), and lse_out lse_a or lse_b; no other overlap. Rows
// where both lse are −inf become zeros with lse −inf.
TILEKIT_API Status attention_merge(HeadsView<const float> a, const float* lse_a, HeadsView<const float> b,
                                   const float* lse_b, HeadsView<float> out, float* lse_out);

}  // namespace tilekit

#endif  // TILEKIT_ATTENTION_ATTENTION_H_

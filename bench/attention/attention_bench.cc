// Attention rows: flash prefill (causal, plain K/V views) and split-KV decode
// (one query token per sequence over a paged KvCache, caches rotated through
// copies beyond twice the LLC so K/V come from memory), fp32 and bf16, 1 and 2
// threads; oneDNN's unfused attention in the same binary (per head: matmul
// QKᵀ with the mask added as a post-op, softmax_forward, matmul PV), and the
// read-bandwidth ceiling the decode goal is stated against.
//
// Rows: attention_prefill/<library>/<dtype>/M:<T>/N:<S>/threads:<t>/hq:<Hq>/hkv:<Hkv>/d:128
//       attention_decode/<library>/<dtype>/M:<batch>/N:<S>/threads:<t>/hq:<Hq>/hkv:<Hkv>/d:128
// dtype: f32 = fp32 K/V and output; bf16 = bf16 K/V (cache) and bf16 output
// for prefill, fp32 output for decode. GB/s counts the K/V bytes a call must read.
#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "tilekit/tilekit.h"

#include "bench_main.h"
#include "read_bandwidth.h"

#if TILEKIT_BENCH_HAVE_ONEDNN
#include <omp.h>

#include "onednn_unfused.h"
#endif

namespace {

using tilekit::bf16;
using tilekit::HeadsView;
using tilekit::Status;

constexpr size_t kD = 128, kHq = 32;

struct AttnCase {
  bool decode;
  bool bf16;
  size_t t, s, hkv, batch, threads;
};

std::string RowName(const char* library, const AttnCase& c) {
  char buf[200];
  std::snprintf(buf, sizeof(buf), "%s/%s/%s/M:%zu/N:%zu/threads:%zu/hq:%zu/hkv:%zu/d:%zu",
                c.decode ? "attention_decode" : "attention_prefill", library, c.bf16 ? "bf16" : "f32",
                c.decode ? c.batch : c.t, c.s, c.threads, kHq, c.hkv, kD);
  return buf;
}

double Flops(const AttnCase& c) {
  // QKᵀ and PV over the keys each query sees (causal: query i sees S − T + i + 1).
  double keys = 0;
  for (size_t i = 0; i < c.t; ++i) keys += static_cast<double>(c.s - c.t + i + 1);
  return 4.0 * keys * kD * kHq * c.batch;
}
double KvBytes(const AttnCase& c) { return 2.0 * c.s * c.hkv * kD * (c.bf16 ? 2 : 4) * c.batch; }

// How many copies of the per-call K/V make the rotation exceed twice the LLC.
size_t ColdCopies(double bytes_per_call) {
  const double llc = static_cast<double>(std::max<size_t>(tilekit::cpu::features().llc, size_t{32} << 20));
  return static_cast<size_t>(std::max(1.0, std::ceil(2.0 * llc / bytes_per_call)));
}

void Fill(std::vector<float>& v, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (float& f : v) f = u(rng);
}
std::vector<bf16> ToBf16(const std::vector<float>& v) {
  std::vector<bf16> out(v.size());
  if (tilekit::convert_f32_to_bf16(v.data(), out.data(), v.size()) != Status::kOk) std::abort();
  return out;
}

void SetCounters(benchmark::State& state, const AttnCase& c) {
  state.counters["GFLOP/s"] = benchmark::Counter(Flops(c) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  const double bytes = c.decode ? KvBytes(c) : KvBytes(c) + (c.t * kHq * kD * (4.0 + (c.bf16 ? 2 : 4)));
  state.counters["GB/s"] = benchmark::Counter(bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// ---- tilekit -----------------------------------------------------------------

void TilekitPrefill(benchmark::State& state, AttnCase c) {
  std::vector<float> q(c.t * kHq * kD), k(c.s * c.hkv * kD), v(c.s * c.hkv * kD), o(c.t * kHq * kD);
  Fill(q, 1);
  Fill(k, 2);
  Fill(v, 3);
  const std::vector<bf16> kb = ToBf16(k), vb = ToBf16(v);
  std::vector<bf16> ob(o.size());
  tilekit::ThreadPool pool(c.threads);
  tilekit::AttentionParams p;
  p.mask.causal = true;
  p.executor = &pool;
  const auto qv = tilekit::heads_view<const float>(q.data(), c.t, kHq, kD);
  for (auto _ : state) {
    Status s;
    if (c.bf16) {
      s = tilekit::attention(qv, tilekit::heads_view<const bf16>(kb.data(), c.s, c.hkv, kD),
                             tilekit::heads_view<const bf16>(vb.data(), c.s, c.hkv, kD),
                             tilekit::heads_view(ob.data(), c.t, kHq, kD), p);
    } else {
      s = tilekit::attention(qv, tilekit::heads_view<const float>(k.data(), c.s, c.hkv, kD),
                             tilekit::heads_view<const float>(v.data(), c.s, c.hkv, kD),
                             tilekit::heads_view(o.data(), c.t, kHq, kD), p);
    }
    if (s != Status::kOk) {
      state.SkipWithError(tilekit::last_error());
      return;
    }
  }
  SetCounters(state, c);
}

// Decode over a paged cache: `copies` sets of `batch` sequences of S tokens,
// a different set per call.
void TilekitDecode(benchmark::State& state, AttnCase c) {
  const size_t copies = ColdCopies(KvBytes(c));
  const size_t seqs = copies * c.batch, bt = 16, blocks_per_seq = (c.s + bt - 1) / bt;
  tilekit::KvCacheConfig cfg;
  cfg.kv_heads = c.hkv;
  cfg.head_dim = kD;
  cfg.block_tokens = bt;
  cfg.num_blocks = seqs * blocks_per_seq;
  cfg.dtype = c.bf16 ? tilekit::KvDtype::kBf16 : tilekit::KvDtype::kF32;
  tilekit::KvCache cache;
  if (cache.init(cfg) != Status::kOk) {
    state.SkipWithError(tilekit::last_error());
    return;
  }
  std::vector<std::vector<uint32_t>> tables(seqs, std::vector<uint32_t>(blocks_per_seq));
  const size_t chunk = 256;
  std::vector<float> src(chunk * c.hkv * kD);
  Fill(src, 4);
  for (auto& table : tables) {
    for (uint32_t& id : table) {
      if (cache.allocate_block(&id) != Status::kOk) std::abort();
    }
    const tilekit::KvSequence seq{table.data(), table.size(), c.s};
    for (size_t pos = 0; pos < c.s; pos += chunk) {
      const size_t n = std::min(chunk, c.s - pos);
      const auto kv = tilekit::heads_view<const float>(src.data(), n, c.hkv, kD);
      if (tilekit::kv_cache_write(cache, 0, seq, pos, kv, kv) != Status::kOk) std::abort();
    }
  }
  std::vector<float> q(c.batch * kHq * kD), o(c.batch * kHq * kD), lse(c.batch * kHq);
  Fill(q, 5);
  std::vector<tilekit::AttentionBatchItem> items(seqs);
  for (size_t i = 0; i < seqs; ++i) {
    const size_t b = i % c.batch;
    items[i] = tilekit::AttentionBatchItem{tilekit::heads_view<const float>(q.data() + b * kHq * kD, 1, kHq, kD),
                                           tilekit::KvSequence{tables[i].data(), tables[i].size(), c.s},
                                           tilekit::heads_view(o.data() + b * kHq * kD, 1, kHq, kD),
                                           lse.data() + b * kHq};
  }
  tilekit::ThreadPool pool(c.threads);
  tilekit::AttentionParams p;
  p.mask.causal = true;
  p.executor = &pool;
  size_t copy = 0;
  for (auto _ : state) {
    if (tilekit::attention_batch(cache, 0, items.data() + copy * c.batch, c.batch, p) != Status::kOk) {
      state.SkipWithError(tilekit::last_error());
      return;
    }
    copy = (copy + 1) % copies;
  }
  SetCounters(state, c);
  state.counters["copies"] = static_cast<double>(copies);
}

// The read bandwidth of this machine over a buffer 4x the LLC, 1 or 2 threads
// (each reading its half), the ceiling for the decode rows.
void ReadCeiling(benchmark::State& state, size_t threads) {
  const size_t llc = std::max<size_t>(tilekit::cpu::features().llc, size_t{32} << 20);
  size_t n = 4 * llc / sizeof(float);
  n = n / (2 * tilekit_bench::kReadGranule) * (2 * tilekit_bench::kReadGranule);
  tilekit::AlignedBuffer buf;
  if (!buf.allocate(n * sizeof(float))) std::abort();
  std::fill(buf.as<float>(), buf.as<float>() + n, 1.f);
  const tilekit_bench::Reader reader = tilekit_bench::Readers().back();  // prefetching, the faster here
  tilekit::ThreadPool pool(threads);
  struct Ctx {
    const float* p;
    size_t n, threads;
    tilekit_bench::ReadFn fn;
    float sink[4];
  } ctx{buf.as<float>(), n, threads, reader.fn, {}};
  for (auto _ : state) {
    pool.run(threads, [](void* x, size_t t) {
      Ctx& c = *static_cast<Ctx*>(x);
      const size_t part = c.n / c.threads;
      c.sink[t] = c.fn(c.p + t * part, part);
    }, &ctx);
    benchmark::DoNotOptimize(ctx.sink);
  }
  state.counters["GB/s"] =
      benchmark::Counter(n * sizeof(float) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(reader.name);
}

#if TILEKIT_BENCH_HAVE_ONEDNN
// ---- oneDNN, unfused (onednn_unfused.h) ------------------------------------
using tilekit_bench::OnednnUnfused;
tilekit_bench::UnfusedShape Unfused(const AttnCase& c) { return {c.t, c.s, kHq, c.hkv, kD, c.bf16}; }

void OnednnPrefill(benchmark::State& state, AttnCase c) {
  omp_set_num_threads(static_cast<int>(c.threads));
  std::vector<float> q(c.t * kHq * kD), k(c.s * c.hkv * kD), v(c.s * c.hkv * kD), o(c.t * kHq * kD);
  Fill(q, 1);
  Fill(k, 2);
  Fill(v, 3);
  const std::vector<bf16> qb = ToBf16(q), kb = ToBf16(k), vb = ToBf16(v);
  OnednnUnfused att(Unfused(c), /*causal=*/true);
  for (auto _ : state) {
    if (c.bf16) {
      att.Run(qb.data(), kb.data(), vb.data(), o.data());
    } else {
      att.Run(q.data(), k.data(), v.data(), o.data());
    }
  }
  SetCounters(state, c);
}

// Decode: contiguous [S][Hkv][d] K/V per sequence (oneDNN has no paged
// layout), copies rotated as for tilekit, sequences one after another.
void OnednnDecode(benchmark::State& state, AttnCase c) {
  omp_set_num_threads(static_cast<int>(c.threads));
  const size_t copies = ColdCopies(KvBytes(c)), seqs = copies * c.batch;
  const size_t e = c.bf16 ? 2 : 4, per_seq = c.s * c.hkv * kD * e;
  tilekit::AlignedBuffer kbuf, vbuf;
  if (!kbuf.allocate(per_seq * seqs, tilekit::PageHint::kHuge) || !vbuf.allocate(per_seq * seqs, tilekit::PageHint::kHuge)) {
    state.SkipWithError("out of memory");
    return;
  }
  std::fill(kbuf.as<char>(), kbuf.as<char>() + per_seq * seqs, 0x3c);  // finite values, f32 or bf16
  std::fill(vbuf.as<char>(), vbuf.as<char>() + per_seq * seqs, 0x3c);
  std::vector<float> q(kHq * kD), o(c.batch * kHq * kD);
  Fill(q, 5);
  const std::vector<bf16> qb = ToBf16(q);
  AttnCase one = c;
  one.batch = 1;
  OnednnUnfused att(Unfused(one), /*causal=*/false);  // one query at the last position sees every key
  size_t copy = 0;
  for (auto _ : state) {
    for (size_t b = 0; b < c.batch; ++b) {
      const size_t i = copy * c.batch + b;
      att.Run(c.bf16 ? static_cast<const void*>(qb.data()) : q.data(), kbuf.as<char>() + i * per_seq,
              vbuf.as<char>() + i * per_seq, o.data() + b * kHq * kD);
    }
    copy = (copy + 1) % copies;
  }
  SetCounters(state, c);
  state.counters["copies"] = static_cast<double>(copies);
}
#endif  // TILEKIT_BENCH_HAVE_ONEDNN

void Register(const std::string& name, void (*fn)(benchmark::State&, AttnCase), const AttnCase& c) {
  tilekit_bench::ApplyPolicy(benchmark::RegisterBenchmark(name.c_str(), fn, c));
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::AddCustomContext("tilekit_path", tilekit::cpu::path_report());
  for (size_t threads : {1, 2}) {
    for (bool bf16 : {false, true}) {
      for (size_t hkv : {32, 8}) {
        for (size_t l : {512, 1024, 2048}) {
          const AttnCase c{false, bf16, l, l, hkv, 1, threads};
          Register(RowName("tilekit", c), &TilekitPrefill, c);
#if TILEKIT_BENCH_HAVE_ONEDNN
          Register(RowName("onednn_unfused", c), &OnednnPrefill, c);
#endif
        }
      }
    }
  }
  for (size_t threads : {1, 2}) {
    tilekit_bench::ApplyPolicy(benchmark::RegisterBenchmark(
        ("attention_decode/read_ceiling/f32/M:1/N:0/threads:" + std::to_string(threads)).c_str(), &ReadCeiling,
        threads));
    for (bool bf16 : {false, true}) {
      for (size_t hkv : {32, 8}) {
        for (size_t s : {1024, 4096, 16384}) {
          for (size_t batch : {1, 8}) {
            // 8 sequences of 16K with 32 KV heads are 4 GiB of fp32 K/V: left out (shared machine).
            if (batch == 8 && s == 16384 && hkv == 32) continue;
            const AttnCase c{true, bf16, 1, s, hkv, batch, threads};
            Register(RowName("tilekit", c), &TilekitDecode, c);
#if TILEKIT_BENCH_HAVE_ONEDNN
            Register(RowName("onednn_unfused", c), &OnednnDecode, c);
#endif
          }
        }
      }
    }
  }
  return tilekit_bench::BenchMain(argc, argv);
}

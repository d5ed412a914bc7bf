// Attention rows: flash prefill (causal, plain K/V views) and split-KV decode
// (one query token per sequence over a paged KvCache, caches rotated through
// copies beyond twice the LLC so K/V come from memory), fp32 and bf16, 1 and 2
// threads; oneDNN's unfused attention in the same binary (per head: matmul
// QKᵀ with the mask added as a post-op, softmax_forward, matmul PV), and the
// ceilings the goals are stated against, measured in the same run.
//
// Rows: attention_prefill/<library>/<dtype>/M:<T>/N:<S>/threads:<t>/hq:<Hq>/hkv:<Hkv>/d:128
//       attention_decode/<library>/<dtype>/M:<batch>/N:<S>/threads:<t>/hq:<Hq>/hkv:<Hkv>/d:128
//       attention_ceiling/<fma|vdpbf16ps|amx_tdpbf16ps>/<dtype>/threads:<t>   (GFLOP/s)
//       attention_decode/read_ceiling/f32/M:1/N:0/threads:<t>                 (GB/s)
// dtype: f32 = fp32 K/V and output; bf16 = bf16 K/V (cache) and bf16 output
// for prefill, fp32 output for decode. GFLOP/s count the causal half (oneDNN
// computes every score); GB/s counts the K/V bytes a call must read.
//
// Every prefill and decode row also times the ceiling that bounds it, on its
// own thread count, just before and just after its timed loop, and reports
// `ceiling_GFLOP/s` or `ceiling_GB/s` (the mean of the two) and `share` (the
// row's rate over it; the label names the ceiling): on this shared machine the ceilings
// move by 2x within minutes, so only a share against the same moment compares
// rows run at different times. The ceiling of a row:
//   prefill f32   the FMA ceiling (fma_avx512, else fma_avx2)
//   prefill bf16  AMX tdpbf16ps where the CPU and OS grant it, else the FMA
//                 ceiling, as for the bf16 GEMM rows (compute_peak.h PeakFor):
//                 a kernel may widen bf16 and use FMAs, and vdpbf16ps measured
//                 half the FMA ceiling on the Xeons here (its row is beside)
//   decode        the read ceiling (read_bandwidth.h's prefetching reader)
// The AMX ceiling row skips with "unavailable: ..." where AMX is not granted.
// The T = S >= 2048 rows at 1 thread and 4096 at 2 run seconds per call: one
// call per repetition, 3 repetitions (bench_main.h's policy otherwise).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tilekit/tilekit.h"

#include "bench_main.h"
#include "interleaved_stats.h"
#include "read_bandwidth.h"
#include "timed_ceiling.h"

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

// ---- ceilings ------------------------------------------------------------------

// oneDNN's OpenMP workers spin ~20 ms after a parallel region (libgomp's
// default): a ceiling timed inside that window shares its cores with them.
// The oneDNN rows mark when their workers are idle again; ceilings wait.
double g_omp_idle_at = 0;
void WaitForIdleOmp() {
  const double wait = g_omp_idle_at - tilekit_bench::Now();
  if (wait > 0) std::this_thread::sleep_for(std::chrono::duration<double>(wait));
}

// The compute ceiling of a prefill row (see the top of the file); nullptr on
// CPUs without one here (Arm: none yet).
const tilekit_bench::ComputePeak* PrefillCeiling(bool bf16) {
  static const std::vector<tilekit_bench::ComputePeak> peaks = tilekit_bench::ComputePeaks();
  return tilekit_bench::PeakFor(peaks, bf16 ? "bf16" : "f32");
}

// The read ceiling: the prefetching reader over half of a buffer of 4x the
// LLC (the other half on the next pass, so each pass reads memory the last
// one evicted), each of `threads` (1 or 2) threads reading its share.
class ReadCeiling {
 public:
  explicit ReadCeiling(size_t threads) : threads_(threads), pool_(threads) {
    static tilekit::AlignedBuffer buf;
    static size_t n = 0;
    if (!n) {
      const size_t llc = std::max<size_t>(tilekit::cpu::features().llc, size_t{32} << 20);
      const size_t granule = 2 * 2 * tilekit_bench::kReadGranule;  // two halves, two threads
      const size_t count = 4 * llc / sizeof(float) / granule * granule;
      if (!buf.allocate(count * sizeof(float), tilekit::PageHint::kHuge)) std::abort();
      std::fill(buf.as<float>(), buf.as<float>() + count, 1.f);
      n = count;
    }
    ctx_ = Ctx{buf.as<float>(), n / 2, threads, tilekit_bench::Readers().back().fn, {}};
  }
  double bytes() const { return static_cast<double>(ctx_.n * sizeof(float)); }
  static const char* name() {
    static const std::string n = tilekit_bench::Readers().back().name;  // prefetching: the faster here
    return n.c_str();
  }
  // GB/s of one pass over the next half, timed now.
  double GBps() {
    WaitForIdleOmp();
    const double t0 = tilekit_bench::Now();
    pool_.run(threads_, &Task, &ctx_);
    const double s = tilekit_bench::Now() - t0;
    benchmark::DoNotOptimize(ctx_.sink);
    ctx_.half ^= 1;
    return bytes() / s * 1e-9;
  }

 private:
  struct Ctx {
    const float* p;
    size_t n, threads;
    tilekit_bench::ReadFn fn;
    float sink[2];
    size_t half = 0;
  };
  static void Task(void* x, size_t t) {
    Ctx& c = *static_cast<Ctx*>(x);
    const size_t part = c.n / c.threads;
    c.sink[t % 2] = c.fn(c.p + c.half * c.n + t * part, part);
  }
  size_t threads_;
  tilekit::ThreadPool pool_;
  Ctx ctx_;
};

// Brackets a row's timed loop with its ceiling: construct just before the
// loop, Finish just after it with the work of one iteration (FLOP or bytes,
// in the ceiling's unit). Sets the ceiling's counter and `share`; the label
// names the ceiling. The loop is timed here on the wall clock, as the rows'
// real time.
class CeilingBracket {
 public:
  CeilingBracket(const char* name, const char* counter, std::function<double()> ceiling)
      : name_(name), counter_(counter), ceiling_(std::move(ceiling)) {
    if (ceiling_) before_ = ceiling_();
    t0_ = tilekit_bench::Now();
  }
  void Finish(benchmark::State& state, double work_per_iteration) {
    const double seconds = tilekit_bench::Now() - t0_;
    if (!ceiling_) {
      state.SetLabel("ceiling=none");
      return;
    }
    const double ceiling = 0.5 * (before_ + ceiling_());
    state.counters[counter_] = ceiling;
    state.counters["share"] = work_per_iteration * 1e-9 * state.iterations() / seconds / ceiling;
    state.SetLabel(std::string("ceiling=") + name_);
  }

 private:
  const char *name_, *counter_;
  std::function<double()> ceiling_;
  double before_ = 0, t0_ = 0;
};

// The prefill row's ceiling on its thread count (an empty function where none).
CeilingBracket PrefillBracket(const AttnCase& c) {
  const tilekit_bench::ComputePeak* peak = PrefillCeiling(c.bf16);
  if (!peak) return CeilingBracket("none", "", nullptr);
  auto timed = std::make_shared<tilekit_bench::TimedCeiling>(*peak, static_cast<int>(c.threads));
  return CeilingBracket(peak->name.c_str(), "ceiling_GFLOP/s", [timed] {
    WaitForIdleOmp();
    return timed->Gflops();
  });
}

CeilingBracket DecodeBracket(const AttnCase& c) {
  auto read = std::make_shared<ReadCeiling>(c.threads);
  return CeilingBracket(ReadCeiling::name(), "ceiling_GB/s", [read] { return read->GBps(); });
}

// A compute ceiling row; skipped, saying why, where the CPU or OS lacks the unit.
void ComputeCeilingRow(benchmark::State& state, const char* unit, size_t threads) {
  static const std::vector<tilekit_bench::ComputePeak> peaks = tilekit_bench::ComputePeaks();
  const tilekit_bench::ComputePeak* peak = std::string(unit) == "fma" ? tilekit_bench::PeakFor(peaks, "f32")
                                                                       : tilekit_bench::FindPeak(peaks, unit);
  if (!peak) {
    const tilekit::cpu::Features& f = tilekit::cpu::features();
    const std::string why = std::string(unit) == "amx_tdpbf16ps" && f.amx_tile ? f.amx_note : "not on this CPU";
    state.SkipWithError(("unavailable: " + why).c_str());
    return;
  }
  tilekit_bench::TimedCeiling timed(*peak, static_cast<int>(threads));
  WaitForIdleOmp();
  timed.Gflops();  // wakes the unit (AVX-512 and AMX power up on first use)
  for (auto _ : state) timed.Gflops();
  state.counters["GFLOP/s"] = benchmark::Counter(
      static_cast<double>(threads) * peak->iters * peak->flops_per_iter * 1e-9,
      benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel("what=" + peak->what);
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
  CeilingBracket bracket = PrefillBracket(c);
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
  bracket.Finish(state, Flops(c));
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
  CeilingBracket bracket = DecodeBracket(c);
  for (auto _ : state) {
    if (tilekit::attention_batch(cache, 0, items.data() + copy * c.batch, c.batch, p) != Status::kOk) {
      state.SkipWithError(tilekit::last_error());
      return;
    }
    copy = (copy + 1) % copies;
  }
  bracket.Finish(state, KvBytes(c));
  SetCounters(state, c);
  state.counters["copies"] = static_cast<double>(copies);
}

// The read ceiling row, 1 or 2 threads (each reading its share).
void ReadCeilingRow(benchmark::State& state, size_t threads) {
  ReadCeiling read(threads);
  for (auto _ : state) read.GBps();
  state.counters["GB/s"] = benchmark::Counter(read.bytes() * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(ReadCeiling::name());
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
  CeilingBracket bracket = PrefillBracket(c);
  for (auto _ : state) {
    if (c.bf16) {
      att.Run(qb.data(), kb.data(), vb.data(), o.data());
    } else {
      att.Run(q.data(), k.data(), v.data(), o.data());
    }
  }
  g_omp_idle_at = tilekit_bench::Now() + 0.06;
  bracket.Finish(state, Flops(c));
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
  CeilingBracket bracket = DecodeBracket(c);
  for (auto _ : state) {
    for (size_t b = 0; b < c.batch; ++b) {
      const size_t i = copy * c.batch + b;
      att.Run(c.bf16 ? static_cast<const void*>(qb.data()) : q.data(), kbuf.as<char>() + i * per_seq,
              vbuf.as<char>() + i * per_seq, o.data() + b * kHq * kD);
    }
    copy = (copy + 1) % copies;
  }
  g_omp_idle_at = tilekit_bench::Now() + 0.06;
  bracket.Finish(state, KvBytes(c));
  SetCounters(state, c);
  state.counters["copies"] = static_cast<double>(copies);
}
#endif  // TILEKIT_BENCH_HAVE_ONEDNN

// Rows of more than ~0.5 s per call (at ~50 GFLOP/s per thread): one call per
// repetition, 3 repetitions, so the full set stays within minutes.
// (Google Benchmark takes either a minimum time or an iteration count.)
void Register(const std::string& name, void (*fn)(benchmark::State&, AttnCase), const AttnCase& c) {
  benchmark::internal::Benchmark* b = benchmark::RegisterBenchmark(name.c_str(), fn, c);
  if (!c.decode && !tilekit_bench::Policy().quick && Flops(c) / (50e9 * c.threads) > 0.5) {
    b->UseRealTime()->Iterations(1)->Repetitions(3)->ReportAggregatesOnly(true)->Unit(benchmark::kMillisecond);
  } else {
    tilekit_bench::ApplyPolicy(b);
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::AddCustomContext("tilekit_path", tilekit::cpu::path_report());
  for (size_t threads : {1, 2}) {
    for (const char* unit : {"fma", "vdpbf16ps", "amx_tdpbf16ps"}) {
      const std::string name = std::string("attention_ceiling/") + unit + (std::string(unit) == "fma" ? "/f32" : "/bf16") +
                               "/threads:" + std::to_string(threads);
      tilekit_bench::ApplyPolicy(benchmark::RegisterBenchmark(name.c_str(), &ComputeCeilingRow, unit, threads));
    }
  }
  for (size_t threads : {1, 2}) {
    for (bool bf16 : {false, true}) {
      for (size_t hkv : {32, 8}) {
        for (size_t l : {512, 1024, 2048, 4096}) {
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
        ("attention_decode/read_ceiling/f32/M:1/N:0/threads:" + std::to_string(threads)).c_str(), &ReadCeilingRow,
        threads));
    for (bool bf16 : {false, true}) {
      for (size_t hkv : {32, 8}) {
        for (size_t s : {4096, 16384}) {
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

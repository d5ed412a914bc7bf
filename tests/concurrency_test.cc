// Kernels called from several host threads at once, built to be run under
// ThreadSanitizer (the tsan leg of scripts/test) as well as natively:
//  - the first calls of the process racing dispatch initialisation;
//  - concurrent GEMMs, conversions and epilogues, each host thread with its own
//    ThreadPool or all sharing one, bitwise equal to single-threaded results;
//  - set_max_isa() changing the path while other threads run kernels: every
//    call runs on one path (cpu/isa.h), so its result is within the bound of
//    whichever path it took, or it refuses weights packed for another layout
//    and leaves C untouched;
//  - pack_weights of different weights at once through one shared executor;
//  - attention (plain and on a KvCache) from several threads, own, shared or
//    no executor; kv_cache_write to different sequences while other threads
//    read theirs through attention and one thread allocates and releases
//    blocks (the contract of attention/kv_cache.h);
//  - the row ops (rms_norm, add_rms_norm, softmax, rope) from several threads
//    with own and shared pools, bitwise, and with set_max_isa racing them,
//    within their fp64 bounds.
//
// Plain TESTs, not PathTest: the path list would initialise dispatch while
// gtest registers the tests, before the first test can race it.
#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "gemm_reference.h"
#include "harness.h"
#include "ops_reference.h"

namespace tilekit {
namespace {

constexpr int kHostThreads = 4;

// Starts `threads` threads at once (a spin barrier, so they reach their first
// call together) and joins them.
template <typename Fn>
void RunTogether(int threads, Fn fn) {
  std::atomic<int> ready{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      ready.fetch_add(1);
      while (ready.load() < threads) std::this_thread::yield();
      fn(t);
    });
  }
  for (std::thread& th : pool) th.join();
}

// Moves the cap over every path (and clears it), over and over, on a thread
// of its own until stop().
class PathChanger {
 public:
  PathChanger() : paths_(testing::AvailablePaths()), thread_([this] {
    for (int r = 0; !stop_.load(); ++r) {
      if (r % (static_cast<int>(paths_.size()) + 1) == 0) {
        clear_max_isa();
      } else {
        EXPECT_EQ(set_max_isa(paths_[r % paths_.size()]), Status::kOk);
      }
      std::this_thread::yield();
    }
  }) {}
  ~PathChanger() { stop(); }
  void stop() {
    if (thread_.joinable()) {
      stop_.store(true);
      thread_.join();
      clear_max_isa();
    }
  }

 private:
  const std::vector<Isa> paths_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// One GEMM problem with fp32 data, its packed weights and (once computed) the
// single-threaded result on the path active when it was made.
struct Problem {
  size_t m, n, k;
  std::vector<float> a, w, bias;
  PackedWeights pw;
  std::vector<float> want;

  Problem(size_t m_, size_t n_, size_t k_, testing::Rng& rng) : m(m_), n(n_), k(k_), a(m * k), w(k * n), bias(n) {
    rng.fill(a.data(), a.size());
    rng.fill(w.data(), w.size());
    rng.fill(bias.data(), bias.size());
  }
  Epilogue epilogue() const { return Epilogue().with_bias(bias.data()).with(Activation::kGeluTanh); }
  Status run(std::vector<float>& c, Executor* ex) const {
    c.assign(m * n, testing::PoisonF32());
    GemmOptions opt;
    opt.executor = ex;
    return gemm(matrix(a.data(), m, k), pw, matrix(c.data(), m, n), epilogue(), opt);
  }
};

std::vector<Problem> MakeProblems(testing::Rng& rng) {
  std::vector<Problem> ps;
  // M = 1 (GEMV), narrow N (dot-product columns), row tiles with tails, and a
  // shape worth splitting over threads.
  for (const auto& s : {std::array<size_t, 3>{1, 90, 64}, std::array<size_t, 3>{7, 10, 70},
                        std::array<size_t, 3>{33, 70, 64}, std::array<size_t, 3>{64, 128, 128}}) {
    ps.emplace_back(s[0], s[1], s[2], rng);
  }
  return ps;
}

// Must run first in the process: nothing has read the CPU or dispatched yet.
TEST(Concurrency, FirstCallsRaceDispatchInitialisation) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(1);
  std::vector<float> in(100);
  rng.fill(in.data(), in.size());
  std::vector<float> w(16 * 24);
  rng.fill(w.data(), w.size());
  std::atomic<int> failures{0};
  std::vector<Isa> seen(kHostThreads);
  RunTogether(kHostThreads, [&](int t) {
    seen[t] = cpu::active_isa();  // cpu::features(), TILEKIT_MAX_ISA, cpuinfo: first use
    std::vector<bf16> out(in.size());
    if (convert_f32_to_bf16(in.data(), out.data(), in.size()) != Status::kOk) ++failures;
    for (size_t i = 0; i < in.size(); ++i) failures += out[i].bits != f32_to_bf16(in[i]).bits;
    PackedWeights pw;
    if (pack_weights(weights_kn(w.data(), 16, 24), WeightType::kF32, &pw) != Status::kOk) ++failures;
    std::vector<float> a(3 * 16, 1.f), c(3 * 24);
    if (gemm(matrix(a.data(), 3, 16), pw, matrix(c.data(), 3, 24)) != Status::kOk) ++failures;
  });
  EXPECT_EQ(failures.load(), 0);
  for (Isa isa : seen) EXPECT_EQ(isa, seen[0]);
}

// Each host thread runs every problem many times, with its own pool, a pool
// shared by all, or none; every result equals the single-threaded one bitwise.
TEST(Concurrency, GemmFromSeveralThreadsOwnAndSharedPools) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(2);
  std::vector<Problem> ps = MakeProblems(rng);
  for (Problem& p : ps) {
    ASSERT_EQ(pack_weights(weights_kn(p.w.data(), p.k, p.n), WeightType::kF32, &p.pw), Status::kOk);
    ASSERT_EQ(p.run(p.want, nullptr), Status::kOk);
  }
  ThreadPool shared(2);
  std::atomic<int> mismatches{0};
  RunTogether(kHostThreads, [&](int t) {
    ThreadPool own(2);
    Executor* ex = t % 3 == 0 ? &own : t % 3 == 1 ? static_cast<Executor*>(&shared) : nullptr;
    std::vector<float> c;
    for (int r = 0; r < 6; ++r) {
      for (size_t i = 0; i < ps.size(); ++i) {
        const Problem& p = ps[(i + t) % ps.size()];
        if (p.run(c, ex) != Status::kOk || std::memcmp(c.data(), p.want.data(), c.size() * 4) != 0) ++mismatches;
      }
    }
  });
  EXPECT_EQ(mismatches.load(), 0);
}

// Conversions and separate epilogue passes at once, on buffers of their own.
TEST(Concurrency, ConvertAndEpilogueFromSeveralThreads) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(3);
  const size_t rows = 9, cols = 77;
  std::vector<float> src(rows * cols), bias(cols);
  rng.fill(src.data(), src.size(), -3.f, 3.f);
  rng.fill(bias.data(), bias.size());
  const Epilogue ep = Epilogue().with_bias(bias.data()).with(Activation::kSilu).with_clamp(-1.f, 2.f);
  std::vector<float> want_ep(src);
  ASSERT_EQ(apply_epilogue(matrix(want_ep.data(), rows, cols), ep), Status::kOk);
  std::atomic<int> mismatches{0};
  RunTogether(kHostThreads, [&](int) {
    std::vector<bf16> h(src.size());
    std::vector<float> back(src.size());
    for (int r = 0; r < 20; ++r) {
      if (convert_f32_to_bf16(src.data(), h.data(), src.size()) != Status::kOk ||
          convert_bf16_to_f32(h.data(), back.data(), h.size()) != Status::kOk) {
        ++mismatches;
      }
      for (size_t i = 0; i < src.size(); ++i) mismatches += back[i] != bf16_to_f32(f32_to_bf16(src[i]));
      std::vector<float> c(src);
      if (apply_epilogue(matrix(c.data(), rows, cols), ep) != Status::kOk ||
          std::memcmp(c.data(), want_ep.data(), c.size() * 4) != 0) {
        ++mismatches;
      }
    }
  });
  EXPECT_EQ(mismatches.load(), 0);
}

// One thread moves the cap over every path while the others run GEMMs (with a
// pool, so the executor's threads run the call too) and conversions. A GEMM
// either succeeds, within the fp64 bound (the paths differ in summation order
// only: fp32 weights), or refuses weights packed for another layout without
// touching C; conversions match the scalar reference on any path.
TEST(Concurrency, SetMaxIsaWhileKernelsRun) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(4);
  std::vector<Problem> ps = MakeProblems(rng);
  std::vector<testing::GemmReference> refs(ps.size());
  for (size_t i = 0; i < ps.size(); ++i) {
    Problem& p = ps[i];
    testing::GemmCase g;
    g.m = p.m, g.n = p.n, g.k = p.k;
    g.ep = p.epilogue();
    refs[i].compute(g, p.a.data(), p.k, p.w.data(), nullptr, p.n);
  }
  // Packed on the best path; weaker paths with another layout must refuse them.
  clear_max_isa();
  for (Problem& p : ps) ASSERT_EQ(pack_weights(weights_kn(p.w.data(), p.k, p.n), WeightType::kF32, &p.pw), Status::kOk);

  std::atomic<int> wrong{0}, ran{0}, refused{0};
  ThreadPool shared(2);
  PathChanger changer;
  // 40 rounds, and more until some GEMM has run: on a loaded machine the
  // changer can sit on paths of another layout for all of 40 rounds (every
  // call refused, seen in a release run). The deadline only keeps a library
  // that always refuses from hanging the test; it then fails on ran > 0.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  RunTogether(kHostThreads - 1, [&](int t) {
    std::vector<float> c;
    std::vector<float> x(50);
    std::vector<bf16> h(50);
    for (size_t i = 0; i < x.size(); ++i) x[i] = 0.37f * static_cast<float>(i) - 7.f;
    for (int r = 0; r < 40 || (ran.load() == 0 && std::chrono::steady_clock::now() < deadline); ++r) {
      for (size_t i = 0; i < ps.size(); ++i) {
        const Problem& p = ps[(i + t) % ps.size()];
        const Status s = p.run(c, t == 0 ? nullptr : &shared);
        if (s == Status::kWrongPacking) {
          ++refused;
          for (float v : c) wrong += !std::isnan(v);  // still the poison
          continue;
        }
        if (s != Status::kOk) {
          ++wrong;
          continue;
        }
        ++ran;
        const testing::GemmReference& ref = refs[(i + t) % ps.size()];
        for (size_t e = 0; e < c.size(); ++e) wrong += !(std::fabs(c[e] - ref.out[e]) <= ref.bound[e]);
      }
      wrong += convert_f32_to_bf16(x.data(), h.data(), x.size()) != Status::kOk;
      for (size_t i = 0; i < x.size(); ++i) wrong += h[i].bits != f32_to_bf16(x[i]).bits;
    }
  });
  changer.stop();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_GT(ran.load(), 0);
  RecordProperty("gemm_ran", ran.load());
  RecordProperty("gemm_refused", refused.load());
}

// Several host threads pack different weights through one shared executor; each
// gets the bytes a single-threaded pack gives.
TEST(Concurrency, PackWeightsWithASharedExecutor) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(5);
  struct Job {
    std::vector<float> w;
    size_t k, n;
    WeightType type;
    PackedWeights want;
  };
  std::vector<Job> jobs;
  for (int j = 0; j < kHostThreads; ++j) {
    Job job;
    job.k = 40 + 13 * j;
    job.n = 50 + 31 * j;
    job.type = j % 2 ? WeightType::kBf16 : WeightType::kF32;
    job.w.resize(job.k * job.n);
    rng.fill(job.w.data(), job.w.size());
    ASSERT_EQ(pack_weights(weights_kn(job.w.data(), job.k, job.n), job.type, &job.want), Status::kOk);
    jobs.push_back(std::move(job));
  }
  ThreadPool shared(3);
  std::atomic<int> mismatches{0};
  RunTogether(kHostThreads, [&](int t) {
    const Job& job = jobs[t];
    PackOptions opt;
    opt.executor = &shared;
    for (int r = 0; r < 5; ++r) {
      PackedWeights pw;
      if (pack_weights(weights_kn(job.w.data(), job.k, job.n), job.type, &pw, opt) != Status::kOk ||
          pw.bytes() != job.want.bytes() || std::memcmp(pw.panel(0), job.want.panel(0), pw.bytes()) != 0) {
        ++mismatches;
      }
    }
  });
  EXPECT_EQ(mismatches.load(), 0);
}

// A cache of `sequences` sequences of `tokens` tokens each (blocks of 16, in
// allocation order), every pool byte NaN first so stray writes would show.
struct CacheFixture {
  KvCacheConfig cfg;
  KvCache cache;
  std::vector<std::vector<uint32_t>> tables;

  CacheFixture(size_t sequences, size_t tokens, size_t spare_blocks) {
    cfg.kv_heads = 2;
    cfg.head_dim = cfg.v_head_dim = 32;
    cfg.block_tokens = 16;
    cfg.num_blocks = sequences * ((tokens + 15) / 16) + spare_blocks;
    cfg.dtype = KvDtype::kBf16;
    EXPECT_EQ(cache.init(cfg), Status::kOk);
    std::memset(cache.key_rows(0, 0), 0xFF, cache.bytes());
    tables.resize(sequences);
    for (std::vector<uint32_t>& table : tables) {
      table.resize((tokens + 15) / 16);
      for (uint32_t& id : table) EXPECT_EQ(cache.allocate_block(&id), Status::kOk);
    }
  }
  KvSequence seq(size_t i, size_t length) const { return KvSequence{tables[i].data(), tables[i].size(), length}; }
};

// Q, K, V of one sequence ([tokens][heads][32], packed).
struct AttentionData {
  size_t t, s;
  std::vector<float> q, k, v;
  AttentionData(size_t t_, size_t s_, testing::Rng& rng) : t(t_), s(s_), q(t * 8 * 32), k(s * 2 * 32), v(s * 2 * 32) {
    rng.fill(q.data(), q.size());
    rng.fill(k.data(), k.size());
    rng.fill(v.data(), v.size());
  }
  HeadsView<const float> qv() const { return heads_view(q.data(), t, 8, 32); }
  HeadsView<const float> kv() const { return heads_view(k.data(), s, 2, 32); }
  HeadsView<const float> vv() const { return heads_view(v.data(), s, 2, 32); }
};

// Host threads run plain and cached attention (a decode step over 1500 keys:
// three key chunks merged; 4 speculative tokens; a 40-token prefill), each
// with its own pool, one shared by all, or none; every output and lse equals
// the single-threaded call's bitwise (the key chunks do not depend on threads).
// Emulated, the smallest shapes of the same kinds: 1100 keys are still three
// chunks of 512 (the last 76), and a 33-token prefill over 129 keys still two
// query blocks (32 tokens at 4 query heads per KV head) and a key tile's tail.
TEST(Concurrency, AttentionFromSeveralThreadsOwnAndSharedPools) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(6);
  const bool emulated = testing::Emulated();
  const size_t decode_keys = emulated ? 1100 : 1500;
  const std::vector<AttentionData> data = {AttentionData(1, decode_keys, rng), AttentionData(4, 300, rng),
                                           emulated ? AttentionData(33, 129, rng) : AttentionData(40, 200, rng)};
  CacheFixture fx(data.size(), decode_keys, 0);
  for (size_t i = 0; i < data.size(); ++i) {
    ASSERT_EQ(kv_cache_write(fx.cache, 0, fx.seq(i, data[i].s), 0, data[i].kv(), data[i].vv()), Status::kOk);
  }
  // Problem i, cached or plain, into out / lse.
  const auto run = [&](size_t i, bool cached, Executor* ex, std::vector<float>* out, std::vector<float>* lse) {
    const AttentionData& x = data[i];
    out->assign(x.t * 8 * 32, testing::PoisonF32());
    lse->assign(x.t * 8, testing::PoisonF32());
    AttentionParams p;
    p.mask.causal = true;
    p.executor = ex;
    const HeadsView<float> o = heads_view(out->data(), x.t, 8, 32);
    return cached ? attention(x.qv(), fx.cache, 0, fx.seq(i, x.s), o, p, lse->data())
                  : attention(x.qv(), x.kv(), x.vv(), o, p, lse->data());
  };
  std::vector<float> want_out[3][2], want_lse[3][2];
  for (size_t i = 0; i < data.size(); ++i) {
    for (int cached = 0; cached < 2; ++cached) {
      ASSERT_EQ(run(i, cached, nullptr, &want_out[i][cached], &want_lse[i][cached]), Status::kOk) << last_error();
    }
  }
  ThreadPool shared(2);
  std::atomic<int> mismatches{0};
  RunTogether(kHostThreads, [&](int t) {
    ThreadPool own(2);
    Executor* ex = t % 3 == 0 ? &own : t % 3 == 1 ? static_cast<Executor*>(&shared) : nullptr;
    std::vector<float> out, lse;
    for (int r = 0; r < 3; ++r) {
      for (size_t j = 0; j < 2 * data.size(); ++j) {
        const size_t i = (j + t) % data.size();
        const int cached = static_cast<int>((j / data.size() + t) % 2);
        if (run(i, cached, ex, &out, &lse) != Status::kOk ||
            std::memcmp(out.data(), want_out[i][cached].data(), out.size() * 4) != 0 ||
            std::memcmp(lse.data(), want_lse[i][cached].data(), lse.size() * 4) != 0) {
          ++mismatches;
        }
      }
    }
  });
  EXPECT_EQ(mismatches.load(), 0);
}

// What kv_cache.h allows at once: writes to different blocks from any threads,
// attention reading each sequence as it grows, and block management on one
// thread (a scheduler taking and returning spare blocks) alongside them. Three
// threads each decode their own sequence token by token (write K/V, attend),
// one thread allocates and releases; the pool and every final output equal a
// single-threaded replay bitwise.
TEST(Concurrency, KvCacheWritesAndReadsWhileBlocksAreManaged) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(7);
  constexpr size_t kSequences = 3, kTokens = 70, kSpare = 4;
  std::vector<AttentionData> data;
  for (size_t i = 0; i < kSequences; ++i) data.emplace_back(kTokens, kTokens, rng);
  // Token p of sequence i: write its K/V, then attend with its query over [0, p].
  const auto step = [&](CacheFixture& fx, size_t i, size_t p, Executor* ex, std::vector<float>* out) {
    const AttentionData& x = data[i];
    const Status w = kv_cache_write(fx.cache, 0, fx.seq(i, p + 1), p, heads_view(x.k.data() + p * 64, 1, 2, 32),
                                    heads_view(x.v.data() + p * 64, 1, 2, 32));
    AttentionParams params;
    params.mask.causal = true;
    params.executor = ex;
    out->assign(8 * 32, testing::PoisonF32());
    const Status a = attention(heads_view(x.q.data() + p * 256, 1, 8, 32), fx.cache, 0, fx.seq(i, p + 1),
                               heads_view(out->data(), 1, 8, 32), params);
    return w == Status::kOk && a == Status::kOk;
  };
  CacheFixture want(kSequences, kTokens, kSpare), got(kSequences, kTokens, kSpare);
  std::vector<float> want_out[kSequences], got_out[kSequences];
  for (size_t i = 0; i < kSequences; ++i) {
    for (size_t p = 0; p < kTokens; ++p) ASSERT_TRUE(step(want, i, p, nullptr, &want_out[i])) << last_error();
  }
  ThreadPool shared(2);
  std::atomic<int> failures{0};
  RunTogether(kSequences + 1, [&](int t) {
    if (t == kSequences) {  // the scheduler
      for (int r = 0; r < 200; ++r) {
        uint32_t ids[kSpare];
        for (uint32_t& id : ids) failures += got.cache.allocate_block(&id) != Status::kOk;
        for (uint32_t id : ids) failures += got.cache.share_block(id) != Status::kOk;
        for (uint32_t id : ids) failures += got.cache.release_block(id) != Status::kOk;
        for (uint32_t id : ids) failures += got.cache.release_block(id) != Status::kOk;
      }
      return;
    }
    Executor* ex = t == 0 ? &shared : nullptr;
    for (size_t p = 0; p < kTokens; ++p) failures += !step(got, t, p, ex, &got_out[t]);
  });
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(got.cache.free_blocks(), kSpare);
  EXPECT_EQ(std::memcmp(got.cache.key_rows(0, 0), want.cache.key_rows(0, 0), want.cache.bytes()), 0);
  for (size_t i = 0; i < kSequences; ++i) {
    EXPECT_EQ(std::memcmp(got_out[i].data(), want_out[i].data(), want_out[i].size() * 4), 0) << "sequence " << i;
  }
}

// The row ops on inputs of their own, each large enough to be split over a
// pool (ops/rows.h kMinBytesPerTask): rms_norm (fp32 in, bf16 out),
// add_rms_norm, softmax with a mask, rope on Q and K slices of one row.
struct RowOps {
  static constexpr size_t kRows = 64, kDim = 1024, kHeadDim = 64, kQkRow = 4 * kHeadDim;  // 3 Q heads, 1 K head
  std::vector<float> x, w, residual, mask, qk;
  std::vector<int32_t> pos;
  RopeTable table;
  struct Out {
    std::vector<bf16> norm;
    std::vector<float> add_y, add_residual, soft, qk;
  };

  explicit RowOps(testing::Rng& rng)
      : x(kRows * kDim), w(kDim), residual(kRows * kDim), mask(kRows * kDim), qk(kRows * kQkRow), pos(kRows) {
    rng.fill(x.data(), x.size(), -3.f, 3.f);
    rng.fill(w.data(), w.size());
    rng.fill(residual.data(), residual.size());
    rng.fill(mask.data(), mask.size());
    rng.fill(qk.data(), qk.size());
    for (int32_t& p : pos) p = static_cast<int32_t>(rng.below(512));
    RopeConfig c;
    c.head_dim = kHeadDim;
    EXPECT_EQ(make_rope_table(c, 512, &table), Status::kOk);
  }
  bool run(Out* o, Executor* ex) const {
    o->norm.assign(kRows * kDim, bf16{testing::kPoisonBf16});
    o->add_y.assign(kRows * kDim, testing::PoisonF32());
    o->soft.assign(kRows * kDim, testing::PoisonF32());
    o->add_residual = residual;
    o->qk = qk;
    RmsNormOptions norm_opt;
    norm_opt.executor = ex;
    SoftmaxOptions soft_opt;
    soft_opt.executor = ex;
    soft_opt.mask = matrix<const float>(mask.data(), kRows, kDim);
    const auto xv = rows_of(matrix<const float>(x.data(), kRows, kDim));
    return rms_norm(xv, w.data(), rows_of(matrix(o->norm.data(), kRows, kDim)), norm_opt) == Status::kOk &&
           add_rms_norm(xv, rows_of(matrix(o->add_residual.data(), kRows, kDim)), w.data(),
                        rows_of(matrix(o->add_y.data(), kRows, kDim)), norm_opt) == Status::kOk &&
           softmax(matrix<const float>(x.data(), kRows, kDim), matrix(o->soft.data(), kRows, kDim), soft_opt) ==
               Status::kOk &&
           rope(heads_view(o->qk.data(), kRows, 3, kHeadDim, kQkRow),
                heads_view(o->qk.data() + 3 * kHeadDim, kRows, 1, kHeadDim, kQkRow), pos.data(), table,
                ex) == Status::kOk;
  }
  // Elements outside the fp64 bounds of ops_reference.h (any path).
  int wrong(const Out& o) const {
    int bad = 0;
    const double norm_rel = testing::RmsNormRelBound(kDim, false, true, Bf16Rounding::kAfterWeight),
                 add_rel = testing::RmsNormRelBound(kDim, false, false, Bf16Rounding::kAfterWeight);
    for (size_t r = 0; r < kRows; ++r) {
      double ss = 0, hh = 0;
      for (size_t i = 0; i < kDim; ++i) {
        const float h = x[r * kDim + i] + residual[r * kDim + i];  // fp32, as stored
        bad += o.add_residual[r * kDim + i] != h;
        ss += static_cast<double>(x[r * kDim + i]) * x[r * kDim + i];
        hh += static_cast<double>(h) * h;
      }
      const double eps = RmsNormOptions().eps;
      const double inv = 1 / std::sqrt(ss / kDim + eps), inv_h = 1 / std::sqrt(hh / kDim + eps);
      const testing::SoftmaxRow soft = testing::SoftmaxRowRef(&x[r * kDim], &mask[r * kDim], 1.f, kDim);
      for (size_t i = 0; i < kDim; ++i) {
        const double norm = x[r * kDim + i] * inv * w[i], add = o.add_residual[r * kDim + i] * inv_h * w[i];
        bad += !(std::fabs(bf16_to_f32(o.norm[r * kDim + i]) - norm) <= norm_rel * std::fabs(norm) + 1e-30);
        bad += !(std::fabs(o.add_y[r * kDim + i] - add) <= add_rel * std::fabs(add) + 1e-30);
        bad += !(std::fabs(o.soft[r * kDim + i] - soft.ref[i]) <= soft.bound[i]);
      }
    }
    double attention;
    RopeConfig c;
    c.head_dim = kHeadDim;
    const std::vector<double> inv = testing::RopeReferenceInvFreq(c, 512, &attention);
    const size_t half = kHeadDim / 2;
    for (size_t t = 0; t < kRows; ++t) {
      for (size_t j = 0; j < kQkRow; ++j) {
        const size_t head = t * kQkRow + j / kHeadDim * kHeadDim, e = j % kHeadDim, partner = e < half ? e + half : e - half;
        const double angle = pos[t] * inv[e % half];
        const testing::RopeElement want = testing::RopeElementRef(qk[head + e], qk[head + partner], std::cos(angle),
                                                                  std::sin(angle), e < half, false);
        bad += !(std::fabs(o.qk[t * kQkRow + j] - want.ref) <= want.bound);
      }
    }
    return bad;
  }
};

bool SameBits(const RowOps::Out& a, const RowOps::Out& b) {
  return std::memcmp(a.norm.data(), b.norm.data(), a.norm.size() * 2) == 0 && a.add_y == b.add_y &&
         a.add_residual == b.add_residual && std::memcmp(a.soft.data(), b.soft.data(), a.soft.size() * 4) == 0 &&
         a.qk == b.qk;
}

// Each host thread runs the row ops with its own pool, a shared one, or none;
// every result equals the single-threaded one bitwise (each row is computed
// whole by one thread).
TEST(Concurrency, RowOpsFromSeveralThreadsOwnAndSharedPools) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(6);
  const RowOps ops(rng);
  RowOps::Out want;
  ASSERT_TRUE(ops.run(&want, nullptr)) << last_error();
  ASSERT_EQ(ops.wrong(want), 0);
  ThreadPool shared(2);
  std::atomic<int> mismatches{0};
  RunTogether(kHostThreads, [&](int t) {
    ThreadPool own(2);
    Executor* ex = t % 3 == 0 ? &own : t % 3 == 1 ? static_cast<Executor*>(&shared) : nullptr;
    RowOps::Out got;
    for (int r = 0; r < 4; ++r) mismatches += !ops.run(&got, ex) || !SameBits(got, want);
  });
  EXPECT_EQ(mismatches.load(), 0);
}

// The row ops while the cap moves: each call runs on one path, so every
// element is within the bound of whichever it took. Emulated, 3 rounds, not
// 6: the changer's loop is scalar code, which qemu slows far less than the
// kernels' vectors, so a round sees more cap changes than natively.
TEST(Concurrency, SetMaxIsaWhileRowOpsRun) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(7);
  const RowOps ops(rng);
  ThreadPool shared(2);
  std::atomic<int> wrong{0};
  PathChanger changer;
  const int rounds = testing::Emulated() ? 3 : 6;
  RunTogether(kHostThreads - 1, [&](int t) {
    RowOps::Out got;
    for (int r = 0; r < rounds; ++r) wrong += !ops.run(&got, t == 0 ? nullptr : &shared) || ops.wrong(got) != 0;
  });
  changer.stop();
  EXPECT_EQ(wrong.load(), 0);
}

}  // namespace
}  // namespace tilekit

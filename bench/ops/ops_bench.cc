// bench_tilekit_ops: rms_norm, add_rms_norm, rope and softmax, tilekit against
// the same op as eager passes (eager_ops.cc), oneDNN's layer norm (when found)
// and a copy of the same bytes (`ceiling`), in one binary, on 1 and 2 threads.
// Rows: <kernel>/<library>/<dtype>/M:<m>/N:<n>/threads:<t>; counter GB/s =
// bytes each call must move (bench/README.md) / time, for every library alike.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bench_main.h"
#include "eager_ops.h"
#include "tilekit/tilekit.h"
#ifdef TILEKIT_BENCH_HAS_ONEDNN
#include "onednn_layer_norm.h"
#endif

namespace {

using tilekit::bf16;

enum class Kernel { kRmsNorm, kAddRmsNorm, kRope, kSoftmax };
const char* KernelName(Kernel k) {
  switch (k) {
    case Kernel::kRmsNorm:
      return "rms_norm";
    case Kernel::kAddRmsNorm:
      return "add_rms_norm";
    case Kernel::kRope:
      return "rope";
    case Kernel::kSoftmax:
      return "softmax";
  }
  return "";
}

// RoPE rows: 32 Q heads + 8 K heads of 128 in a fused QKV row (+ 8 V heads).
constexpr size_t kQHeads = 32, kKHeads = 8, kHeadDim = 128, kQkvRow = (kQHeads + 2 * kKHeads) * kHeadDim;
constexpr size_t kRopePositions = 4096;

struct Case {
  Kernel kernel;
  bool bf16;
  size_t m, n;  // rope: m = tokens, n = (Q + K heads) · head_dim
  int threads;
  size_t elem() const { return bf16 ? 2 : 4; }
  // Bytes one call must read and write (the weight and tables, read once per
  // call and from cache, are not counted).
  size_t bytes() const {
    const size_t mn = m * n * elem();
    switch (kernel) {
      case Kernel::kRmsNorm:
        return 2 * mn;  // x in, y out
      case Kernel::kAddRmsNorm:
        return 4 * mn;  // x, residual in; residual, y out
      case Kernel::kRope:
        return 2 * mn;  // Q and K in and out
      case Kernel::kSoftmax:
        return 2 * mn;  // x in, y out
    }
    return 0;
  }
};

void* Alloc(std::vector<tilekit::AlignedBuffer>& keep, size_t bytes, float value) {
  keep.emplace_back();
  if (!keep.back().allocate(bytes, tilekit::PageHint::kHuge)) std::abort();
  float* f = keep.back().as<float>();
  for (size_t i = 0; i < bytes / 4; ++i) f[i] = value + static_cast<float>(i % 17) * 0.01f;
  return f;
}

// Runs fn(r0, r1) over [0, rows) split over the pool: one parallel pass.
template <typename F>
void ForRows(tilekit::ThreadPool& pool, size_t rows, const F& fn) {
  struct Ctx {
    const F* fn;
    size_t rows, tasks;
  } ctx{&fn, rows, std::min<size_t>(pool.num_threads(), rows)};
  pool.run(
      ctx.tasks,
      [](void* c, size_t t) {
        const Ctx& x = *static_cast<const Ctx*>(c);
        (*x.fn)(x.rows * t / x.tasks, x.rows * (t + 1) / x.tasks);
      },
      &ctx);
}

void Check(tilekit::Status s) {
  if (s != tilekit::Status::kOk) {
    std::fprintf(stderr, "tilekit: %s\n", tilekit::last_error());
    std::abort();
  }
}

// One library's call for a case, over buffers it allocates into `keep`.
using Maker =
    std::function<std::function<void()>(const Case&, tilekit::ThreadPool&, std::vector<tilekit::AlignedBuffer>&)>;

std::function<void()> MakeTilekit(const Case& c, tilekit::ThreadPool& pool, std::vector<tilekit::AlignedBuffer>& keep) {
  const size_t mn = c.m * c.n;
  if (c.kernel == Kernel::kRope) {
    auto table = std::make_shared<tilekit::RopeTable>();
    tilekit::RopeConfig cfg;
    cfg.head_dim = kHeadDim;
    cfg.theta = 500000;
    Check(tilekit::make_rope_table(cfg, kRopePositions, table.get()));
    auto* positions = static_cast<int32_t*>(Alloc(keep, c.m * 4, 0));
    for (size_t t = 0; t < c.m; ++t) positions[t] = static_cast<int32_t>((t * 7 + 100) % kRopePositions);
    void* qkv = Alloc(keep, c.m * kQkvRow * c.elem(), 0.5f);
    return [=, &pool] {
      if (c.bf16) {
        bf16* b = static_cast<bf16*>(qkv);
        Check(tilekit::rope(tilekit::heads_view(b, c.m, kQHeads, kHeadDim, kQkvRow),
                            tilekit::heads_view(b + kQHeads * kHeadDim, c.m, kKHeads, kHeadDim, kQkvRow), positions,
                            *table, &pool));
      } else {
        float* f = static_cast<float*>(qkv);
        Check(tilekit::rope(tilekit::heads_view(f, c.m, kQHeads, kHeadDim, kQkvRow),
                            tilekit::heads_view(f + kQHeads * kHeadDim, c.m, kKHeads, kHeadDim, kQkvRow), positions,
                            *table, &pool));
      }
    };
  }
  void* x = Alloc(keep, mn * c.elem(), 0.5f);
  void* y = Alloc(keep, mn * c.elem(), 0.f);
  void* res = c.kernel == Kernel::kAddRmsNorm ? Alloc(keep, mn * c.elem(), 0.25f) : nullptr;
  const float* w = static_cast<float*>(Alloc(keep, c.n * 4, 1.f));
  tilekit::RmsNormOptions opt;
  opt.executor = &pool;
  return [=] {
    if (c.kernel == Kernel::kSoftmax) {
      tilekit::SoftmaxOptions so;
      so.scale = 0.0883883f;
      so.executor = opt.executor;
      Check(tilekit::softmax(tilekit::matrix<const float>(static_cast<float*>(x), c.m, c.n),
                             tilekit::matrix(static_cast<float*>(y), c.m, c.n), so));
    } else if (c.bf16) {
      const auto xv = tilekit::rows_of(tilekit::matrix<const bf16>(static_cast<bf16*>(x), c.m, c.n));
      const auto yv = tilekit::rows_of(tilekit::matrix(static_cast<bf16*>(y), c.m, c.n));
      Check(c.kernel == Kernel::kRmsNorm
                ? tilekit::rms_norm(xv, w, yv, opt)
                : tilekit::add_rms_norm(xv, tilekit::rows_of(tilekit::matrix(static_cast<bf16*>(res), c.m, c.n)), w, yv,
                                        opt));
    } else {
      const auto xv = tilekit::rows_of(tilekit::matrix<const float>(static_cast<float*>(x), c.m, c.n));
      const auto yv = tilekit::rows_of(tilekit::matrix(static_cast<float*>(y), c.m, c.n));
      Check(c.kernel == Kernel::kRmsNorm
                ? tilekit::rms_norm(xv, w, yv, opt)
                : tilekit::add_rms_norm(xv, tilekit::rows_of(tilekit::matrix(static_cast<float*>(res), c.m, c.n)), w,
                                        yv, opt));
    }
  };
}

// The eager passes. bf16 inputs are widened by a pass first and the result
// narrowed by a last one (`x.float()` ... `.to(bf16)`), as HF's norms do.
std::function<void()> MakeEager(const Case& c, tilekit::ThreadPool& pool, std::vector<tilekit::AlignedBuffer>& keep) {
  namespace e = tilekit_bench::eager;
  const size_t mn = c.m * c.n, n = c.n;
  tilekit::ThreadPool* p = &pool;
  if (c.kernel == Kernel::kRope) {
    // cos/sin tables as HF caches them: [positions][head_dim] (cat(freqs, freqs)).
    float* cos_t = static_cast<float*>(Alloc(keep, kRopePositions * kHeadDim * 4, 0.6f));
    float* sin_t = static_cast<float*>(Alloc(keep, kRopePositions * kHeadDim * 4, 0.8f));
    auto* positions = static_cast<int32_t*>(Alloc(keep, c.m * 4, 0));
    for (size_t t = 0; t < c.m; ++t) positions[t] = static_cast<int32_t>((t * 7 + 100) % kRopePositions);
    void* qkv = Alloc(keep, c.m * kQkvRow * c.elem(), 0.5f);
    float* qkv_f = c.bf16 ? static_cast<float*>(Alloc(keep, c.m * kQkvRow * 4, 0.f)) : static_cast<float*>(qkv);
    float* cos = static_cast<float*>(Alloc(keep, c.m * kHeadDim * 4, 0.f));
    float* sin = static_cast<float*>(Alloc(keep, c.m * kHeadDim * 4, 0.f));
    float* rot = static_cast<float*>(Alloc(keep, c.m * kQHeads * kHeadDim * 4, 0.f));
    float* a = static_cast<float*>(Alloc(keep, c.m * kQHeads * kHeadDim * 4, 0.f));
    float* b = static_cast<float*>(Alloc(keep, c.m * kQHeads * kHeadDim * 4, 0.f));
    return [=] {
      const size_t tokens = c.m;
      if (c.bf16)
        ForRows(*p, tokens, [&](size_t r0, size_t r1) { e::ToF32(static_cast<bf16*>(qkv), qkv_f, kQkvRow, r0, r1); });
      ForRows(*p, tokens, [&](size_t r0, size_t r1) { e::Gather(cos_t, positions, cos, kHeadDim, r0, r1); });
      ForRows(*p, tokens, [&](size_t r0, size_t r1) { e::Gather(sin_t, positions, sin, kHeadDim, r0, r1); });
      for (auto [x, heads] : {std::make_pair(qkv_f, kQHeads), std::make_pair(qkv_f + kQHeads * kHeadDim, kKHeads)}) {
        ForRows(*p, tokens, [&](size_t r0, size_t r1) { e::MulHeads(x, kQkvRow, cos, a, heads, kHeadDim, r0, r1); });
        ForRows(*p, tokens, [&](size_t r0, size_t r1) { e::RotateHalf(x, kQkvRow, rot, heads, kHeadDim, r0, r1); });
        ForRows(*p, tokens,
                [&](size_t r0, size_t r1) { e::MulHeads(rot, heads * kHeadDim, sin, b, heads, kHeadDim, r0, r1); });
        ForRows(*p, tokens, [&](size_t r0, size_t r1) { e::AddHeads(a, b, x, kQkvRow, heads, kHeadDim, r0, r1); });
      }
      if (c.bf16)
        ForRows(*p, tokens, [&](size_t r0, size_t r1) { e::ToBf16(qkv_f, static_cast<bf16*>(qkv), kQkvRow, r0, r1); });
    };
  }
  void* x = Alloc(keep, mn * c.elem(), 0.5f);
  void* y = Alloc(keep, mn * c.elem(), 0.f);
  void* res = c.kernel == Kernel::kAddRmsNorm ? Alloc(keep, mn * c.elem(), 0.25f) : nullptr;
  const float* w = static_cast<float*>(Alloc(keep, n * 4, 1.f));
  float* xf = static_cast<float*>(Alloc(keep, mn * 4, 0.f));
  float* rf = c.kernel == Kernel::kAddRmsNorm && c.bf16 ? static_cast<float*>(Alloc(keep, mn * 4, 0.f)) : nullptr;
  float* t1 = static_cast<float*>(Alloc(keep, mn * 4, 0.f));
  float* t2 = static_cast<float*>(Alloc(keep, mn * 4, 0.f));
  float* stat = static_cast<float*>(Alloc(keep, c.m * 4, 0.f));
  float* stat2 = static_cast<float*>(Alloc(keep, c.m * 4, 0.f));
  return [=] {
    const size_t m = c.m;
    const auto pass = [&](auto f) { ForRows(*p, m, f); };
    // h (fp32) = the input the norm sees.
    const float* h = c.bf16 ? xf : static_cast<const float*>(x);
    if (c.bf16) pass([&](size_t r0, size_t r1) { e::ToF32(static_cast<bf16*>(x), xf, n, r0, r1); });
    if (c.kernel == Kernel::kSoftmax) {
      pass([&](size_t r0, size_t r1) { e::MulScalar(h, 0.0883883f, t1, n, r0, r1); });
      pass([&](size_t r0, size_t r1) { e::RowMax(t1, stat, n, r0, r1); });
      pass([&](size_t r0, size_t r1) { e::SubRowScalar(t1, stat, t2, n, r0, r1); });
      pass([&](size_t r0, size_t r1) { e::Exp(t2, t1, n, r0, r1); });
      pass([&](size_t r0, size_t r1) { e::RowSum(t1, stat, n, r0, r1); });
      pass([&](size_t r0, size_t r1) { e::DivRowScalar(t1, stat, static_cast<float*>(y), n, r0, r1); });
      return;
    }
    if (c.kernel == Kernel::kAddRmsNorm) {  // hidden = x + residual; residual = hidden
      float* r = c.bf16 ? rf : static_cast<float*>(res);
      if (c.bf16) pass([&](size_t r0, size_t r1) { e::ToF32(static_cast<bf16*>(res), rf, n, r0, r1); });
      pass([&](size_t r0, size_t r1) { e::Add(h, r, t2, n, r0, r1); });
      if (c.bf16) {
        pass([&](size_t r0, size_t r1) { e::ToBf16(t2, static_cast<bf16*>(res), n, r0, r1); });
      } else {
        pass([&](size_t r0, size_t r1) { e::Copy(t2, r, n, r0, r1); });
      }
      h = t2;
    }
    float* out = c.bf16 ? t1 : static_cast<float*>(y);
    pass([&](size_t r0, size_t r1) { e::Square(h, t1, n, r0, r1); });
    pass([&](size_t r0, size_t r1) { e::RowMean(t1, stat, n, r0, r1); });
    pass([&](size_t r0, size_t r1) { e::AddRsqrt(stat, 1e-6f, stat2, r0, r1); });
    pass([&](size_t r0, size_t r1) { e::MulRowScalar(h, stat2, t1, n, r0, r1); });
    pass([&](size_t r0, size_t r1) { e::MulBroadcast(t1, w, out, n, r0, r1); });
    if (c.bf16) pass([&](size_t r0, size_t r1) { e::ToBf16(t1, static_cast<bf16*>(y), n, r0, r1); });
  };
}

// A copy of bytes() / 2 (read that much, write that much) split over the
// pool: the read+write bandwidth this shape can get, in the same binary.
std::function<void()> MakeCeiling(const Case& c, tilekit::ThreadPool& pool, std::vector<tilekit::AlignedBuffer>& keep) {
  const size_t floats = c.bytes() / 2 / 4, rows = c.m, per_row = floats / rows;
  const float* src = static_cast<float*>(Alloc(keep, floats * 4, 1.f));
  float* dst = static_cast<float*>(Alloc(keep, floats * 4, 0.f));
  tilekit::ThreadPool* p = &pool;
  return
      [=] { ForRows(*p, rows, [&](size_t r0, size_t r1) { tilekit_bench::eager::Copy(src, dst, per_row, r0, r1); }); };
}

#ifdef TILEKIT_BENCH_HAS_ONEDNN
std::function<void()> MakeOnednn(const Case& c, tilekit::ThreadPool&, std::vector<tilekit::AlignedBuffer>& keep) {
  const size_t mn = c.m * c.n;
  void* x = Alloc(keep, mn * c.elem(), 0.5f);
  void* y = Alloc(keep, mn * c.elem(), 0.f);
  float* w = static_cast<float*>(Alloc(keep, c.n * 4, 1.f));
  if (c.bf16) {
    for (size_t i = 0; i < mn; ++i)
      static_cast<bf16*>(x)[i] = tilekit::f32_to_bf16(0.5f + static_cast<float>(i % 17) * 0.01f);
  }
  return tilekit_bench::MakeOnednnLayerNorm(c.bf16, c.m, c.n, c.threads, x, y, w);
}
#endif

void Register(const Case& c, const std::string& library, Maker make) {
  const std::string name = std::string(KernelName(c.kernel)) + "/" + library + "/" + (c.bf16 ? "bf16" : "f32") +
                           "/M:" + std::to_string(c.m) + "/N:" + std::to_string(c.n) +
                           "/threads:" + std::to_string(c.threads) +
                           (c.kernel == Kernel::kRope ? "/heads:32+8/head_dim:128" : "");
  tilekit_bench::ApplyPolicy(benchmark::RegisterBenchmark(name.c_str(), [c, make](benchmark::State& state) {
    tilekit::ThreadPool pool(static_cast<size_t>(c.threads));
    std::vector<tilekit::AlignedBuffer> keep;
    keep.reserve(32);
    const std::function<void()> call = make(c, pool, keep);
    call();  // warm-up: first touch, pool start
    for (auto _ : state) {
      call();
      benchmark::ClobberMemory();
    }
    state.counters["GB/s"] =
        benchmark::Counter(static_cast<double>(c.bytes()) / 1e9, benchmark::Counter::kIsIterationInvariantRate);
  }));
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::AddCustomContext("tilekit_path", tilekit::cpu::path_report());
#ifdef TILEKIT_BENCH_HAS_ONEDNN
  benchmark::AddCustomContext("onednn", tilekit_bench::OnednnVersion());
#endif
  const size_t shapes[][2] = {{1, 4096}, {512, 4096}, {4096, 4096}};
  for (int threads : {1, 2}) {
    for (Kernel k : {Kernel::kRmsNorm, Kernel::kAddRmsNorm, Kernel::kSoftmax}) {
      for (bool bf : {false, true}) {
        if (k == Kernel::kSoftmax && bf) continue;  // softmax is fp32
        for (const auto& s : shapes) {
          const Case c{k, bf, s[0], s[1], threads};
          Register(c, "tilekit", MakeTilekit);
          Register(c, "eager", MakeEager);
          Register(c, "ceiling", MakeCeiling);
#ifdef TILEKIT_BENCH_HAS_ONEDNN
          if (k == Kernel::kRmsNorm) Register(c, "onednn_layer_norm", MakeOnednn);
#endif
        }
      }
    }
    for (bool bf : {false, true}) {
      for (size_t tokens : {1, 512}) {
        const Case c{Kernel::kRope, bf, tokens, (kQHeads + kKHeads) * kHeadDim, threads};
        Register(c, "tilekit", MakeTilekit);
        Register(c, "eager", MakeEager);
        Register(c, "ceiling", MakeCeiling);
      }
    }
  }
  return tilekit_bench::BenchMain(argc, argv);
}

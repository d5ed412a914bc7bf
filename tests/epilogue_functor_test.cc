// An engine's own epilogue functor (gemm/epilogue_functor.h) on every path and
// kernel record: the functor sees each lane's row and column of C, it runs in
// the documented order (alpha, beta, bias, functor, residual, clamp, store),
// tails, fused outputs, 1 vs 2 threads bitwise, bad input. The functors are
// compiled for every Highway target in epilogue_functors.cc, as an engine
// compiles its own; this file includes only the API header and their
// declarations.
#include <array>
#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "bf16_store_checks.h"
#include "epilogue_functors.h"
#include "gemm_reference.h"
#include "quant_reference.h"

namespace tilekit {
namespace {

using testing::GemmCase;
using testing::GemmReference;

class EpilogueFunctorTest : public testing::PathTest {};

// Weight types and shapes that reach every kernel record the path has: fp32
// and bf16 wide (the vector kernel; AMX and BFMMLA take bf16 where the path has
// them), narrow (N <= kDotMaxN columns: the dot-product kernel, or AMX's narrow
// one), int8 and int4 (the quantized kernels; with enough rows the VNNI / SDOT
// ones quantize A).
constexpr WeightType kTypes[] = {WeightType::kF32, WeightType::kBf16, WeightType::kInt8, WeightType::kInt4};

std::vector<size_t> Rows() {
  // 1 (the GEMV), primes, mr ± 1 for mr = 4, 6 and 12, two tiles + 1.
  if (testing::Emulated()) return {1, 5, 13, 25};
  return {1, 2, 3, 5, 7, 11, 12, 13, 25, 37};
}
std::vector<size_t> Cols() {
  // 1, primes, nr ± 1 for nr of 8 (NEON, AVX2 fp32), 16 (SVE-128 bf16 and AVX2
  // bf16), 32 (AVX-512), and two panels + 1.
  if (testing::Emulated()) return {1, 3, 17, 33};
  return {1, 3, 7, 8, 9, 15, 17, 31, 32, 33, 65};
}

struct Weights {
  std::vector<float> src;  // [K][N] as packed
  std::vector<float> seen, mag;  // what the kernel multiplies by; roundings' magnitude (empty: |seen|)
  PackedWeights pw;
};

// Packs random [K][N] weights of type t; `seen` is what the kernels multiply.
::testing::AssertionResult PackRandom(WeightType t, size_t k, size_t n, testing::Rng& rng, Weights* w) {
  w->src.resize(k * n);
  rng.fill(w->src.data(), w->src.size());
  if (pack_weights(weights_kn(w->src.data(), k, n), t, &w->pw) != Status::kOk) {
    return ::testing::AssertionFailure() << "pack_weights: " << last_error();
  }
  w->mag.clear();
  if (t == WeightType::kInt8 || t == WeightType::kInt4) {
    const testing::Dequantized d = testing::Quantize(w->src.data(), k, n, SourceLayout::kKN, t, w->pw.group());
    w->seen = d.w;
    w->mag = d.mag;
  } else {
    w->seen = w->src;
    if (t == WeightType::kBf16) {
      for (float& x : w->seen) x = bf16_to_f32(f32_to_bf16(x));
    }
  }
  return ::testing::AssertionSuccess();
}

// The reference of the functor-free part (v = alpha·acc + beta·C_old + bias)
// for the path that packed `w`: value and error bound per element.
GemmReference PreFunctor(const Weights& w, WeightType t, size_t m, size_t n, size_t k, const Epilogue& ep,
                         const std::vector<float>& a, const std::vector<float>& c_old, bool a_bf16) {
  GemmCase g;
  g.m = m, g.n = n, g.k = k;
  g.ep = ep;
  g.ep.residual = nullptr;  // applied after the functor: added by the caller
  g.ep.clamp_min = -INFINITY, g.ep.clamp_max = INFINITY;
  g.a_rounded = !a_bf16 && w.pw.layout().rounds_a_to_bf16();
  g.odd_rounded_sums = w.pw.layout().kind == PanelKind::kArmBfmmla;
  const bool quant = t == WeightType::kInt8 || t == WeightType::kInt4;
  if (quant) g.sum_terms = testing::QuantSumTerms(k, w.pw.group());
  const std::vector<float> a_seen = quant ? testing::ActivationsSeen(a, m, k, k, w.pw.layout()) : a;
  GemmReference ref;
  ref.compute(g, a_seen.data(), k, w.seen.data(), c_old.data(), n, quant ? w.mag.data() : nullptr);
  // compute() adds the rounding of a stored fp32 result (u·|v|): here v goes on
  // to the functor instead; the caller adds the roundings that follow.
  for (size_t i = 0; i < ref.out.size(); ++i) ref.bound[i] -= testing::kF32Eps * std::fabs(ref.out[i]);
  return ref;
}

std::string Describe(WeightType t, size_t m, size_t n, size_t k, const PackedWeights& pw, const char* types) {
  char buf[160];
  std::snprintf(buf, sizeof(buf), "%s weights (%s panels, nr=%u), M=%zu N=%zu K=%zu, %s", weight_type_name(t),
                panel_kind_name(pw.layout().kind), unsigned{pw.layout().nr}, m, n, k, types);
  return buf;
}

// Every element gets its own row and column: the functor was handed the right
// indices for every lane of every tile, on every kernel, and wrote nothing else
// (the padding past N keeps its poison). K = 0 too: the store still runs.
TEST_P(EpilogueFunctorTest, SeesEachLanesRowAndColumn) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(1);
  const size_t stride = 4096, pad = 3;
  for (size_t k : {size_t{19}, size_t{0}})
  for (WeightType t : kTypes) {
    for (size_t n : Cols()) {
      Weights w;
      ASSERT_TRUE(PackRandom(t, k, n, rng, &w));
      for (size_t m : Rows()) {
        SCOPED_TRACE(Describe(t, m, n, k, w.pw, "fp32 A and C"));
        std::vector<float> a(m * k), c(m * (n + pad), testing::PoisonF32());
        rng.fill(a.data(), a.size());
        const functors::IndexParams p{stride};
        ASSERT_EQ(functors::gemm_index(matrix(a.data(), m, k), w.pw, matrix(c.data(), m, n, n + pad), p), Status::kOk)
            << last_error();
        for (size_t i = 0; i < m; ++i) {
          for (size_t j = 0; j < n + pad; ++j) {
            const float got = c[i * (n + pad) + j];
            if (j < n) {
              ASSERT_EQ(got, static_cast<float>(i * stride + j)) << "C[" << i << "][" << j << "]";
            } else {
              ASSERT_TRUE(std::isnan(got)) << "padding C[" << i << "][" << j << "] written";
            }
          }
        }
      }
    }
  }
}

// Segments side by side in one C (gemm) count their columns from C's first;
// gemm_fused's outputs each from their own.
TEST_P(EpilogueFunctorTest, SegmentsSeeTheirColumnsOfC) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(2);
  const size_t k = 23, m = 5, stride = 4096;
  const size_t widths[3] = {17, 9, 40};
  std::vector<float> src[3];
  WeightSource parts[3];
  for (size_t s = 0; s < 3; ++s) {
    src[s].resize(k * widths[s]);
    rng.fill(src[s].data(), src[s].size());
    parts[s] = weights_kn(src[s].data(), k, widths[s]);
  }
  std::vector<float> a(m * k);
  rng.fill(a.data(), a.size());
  const functors::IndexParams p{stride};
  for (WeightType t : kTypes) {
    SCOPED_TRACE(weight_type_name(t));
    PackedWeights pw;
    ASSERT_EQ(pack_weights(parts, 3, t, PackKind::kSeparate, &pw), Status::kOk) << last_error();
    std::vector<float> cat(m * pw.n(), testing::PoisonF32());
    ASSERT_EQ(functors::gemm_index(matrix(a.data(), m, k), pw, matrix(cat.data(), m, pw.n()), p), Status::kOk);
    for (size_t i = 0; i < m; ++i) {
      for (size_t j = 0; j < pw.n(); ++j) ASSERT_EQ(cat[i * pw.n() + j], static_cast<float>(i * stride + j));
    }
    std::vector<float> outs[3];
    FusedOutput<float> fused[3];
    for (size_t s = 0; s < 3; ++s) {
      outs[s].assign(m * widths[s], testing::PoisonF32());
      fused[s].c = matrix(outs[s].data(), m, widths[s]);
    }
    ASSERT_EQ(functors::gemm_index_fused(matrix(a.data(), m, k), pw, fused, 3, p), Status::kOk) << last_error();
    for (size_t s = 0; s < 3; ++s) {
      for (size_t i = 0; i < m; ++i) {
        for (size_t j = 0; j < widths[s]; ++j) {
          ASSERT_EQ(outs[s][i * widths[s] + j], static_cast<float>(i * stride + j)) << "output " << s;
        }
      }
    }
  }
}

// v = min(max(alpha·acc + beta·C_old + bias, lo), hi) · scale[j] + shift[i],
// + residual, then the Epilogue's clamp, against fp64, every dtype of A and C.
// Bound: the pre-functor part's (PreFunctor: the accumulation, alpha, beta,
// bias); the clamp moves no error (1-Lipschitz); the product scales it by
// |scale[j]| and rounds once (u·|v·scale|), the shift's add rounds once
// (u·|result|); then the residual's rounding, the clamp and the store's
// rounding (FinishEpilogueRef: u, or 2^-8 for bf16 C).
TEST_P(EpilogueFunctorTest, MatchesFp64InTheDocumentedOrder) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(3);
  size_t index = 0;
  for (WeightType t : kTypes) {
    for (size_t n : Cols()) {
      const size_t k = 2 + rng.below(70);
      Weights w;
      ASSERT_TRUE(PackRandom(t, k, n, rng, &w));
      for (size_t m : Rows()) {
        const bool a_bf16 = index & 1, c_bf16 = index & 2;
        ++index;
        SCOPED_TRACE(Describe(t, m, n, k, w.pw, a_bf16 ? (c_bf16 ? "bf16 A, bf16 C" : "bf16 A, fp32 C")
                                                         : (c_bf16 ? "fp32 A, bf16 C" : "fp32 A, fp32 C")));
        std::vector<float> a(m * k), c_old(m * n), bias(n), residual(m * n), scale(n), shift(m);
        rng.fill(a.data(), a.size());
        rng.fill(c_old.data(), c_old.size());
        rng.fill(bias.data(), bias.size());
        rng.fill(residual.data(), residual.size());
        rng.fill(scale.data(), scale.size(), -2.f, 2.f);
        rng.fill(shift.data(), shift.size());
        auto round = [](std::vector<float>& v) { for (float& x : v) x = bf16_to_f32(f32_to_bf16(x)); };
        if (a_bf16) round(a);
        if (c_bf16) round(c_old);  // read back as bf16 by beta
        Epilogue ep = Epilogue().with_scale(0.75f).with_beta(index % 3 ? 0.5f : 0.f).with_bias(bias.data())
                          .with_residual(residual.data(), n).with_clamp(-2.5f, 2.5f);
        const GemmReference pre = PreFunctor(w, t, m, n, k, ep, a, c_old, a_bf16);
        const functors::ClampScaleParams p{-0.9f, 1.1f, scale.data(), shift.data()};

        std::vector<float> got(m * n);
        Status s;
        auto run = [&](auto* a_elem, auto* c_elem) {
          using TA = std::remove_pointer_t<decltype(a_elem)>;
          using TC = std::remove_pointer_t<decltype(c_elem)>;
          std::vector<TA> av(a.size());
          std::vector<TC> cv(c_old.size());
          for (size_t i = 0; i < a.size(); ++i) av[i] = testing::FromF32<TA>(a[i]);
          for (size_t i = 0; i < c_old.size(); ++i) {
            cv[i] = ep.beta != 0 ? testing::FromF32<TC>(c_old[i]) : testing::Poison<TC>();
          }
          s = functors::gemm_clamp_scale(matrix(av.data(), m, k), w.pw, matrix(cv.data(), m, n), p, ep);
          for (size_t i = 0; i < cv.size(); ++i) got[i] = testing::ToF32(cv[i]);
        };
        if (a_bf16) {
          c_bf16 ? run(static_cast<bf16*>(nullptr), static_cast<bf16*>(nullptr))
                 : run(static_cast<bf16*>(nullptr), static_cast<float*>(nullptr));
        } else {
          c_bf16 ? run(static_cast<float*>(nullptr), static_cast<bf16*>(nullptr))
                 : run(static_cast<float*>(nullptr), static_cast<float*>(nullptr));
        }
        ASSERT_EQ(s, Status::kOk) << last_error();
        for (size_t i = 0; i < m; ++i) {
          for (size_t j = 0; j < n; ++j) {
            double v = std::min<double>(std::max<double>(pre.out[i * n + j], p.lo), p.hi);
            double err = std::fabs(scale[j]) * pre.bound[i * n + j];
            v *= scale[j];
            err += testing::kF32Eps * std::fabs(v);
            v += shift[i];
            err += testing::kF32Eps * std::fabs(v);
            testing::FinishEpilogueRef(ep, residual[i * n + j], c_bf16, &v, &err);
            ASSERT_TRUE(testing::WithinBound(std::fabs(got[i * n + j] - v), err + 1e-30))
                << "C[" << i << "][" << j << "] = " << got[i * n + j] << ", want " << v;
          }
        }
      }
    }
  }
}

// A ThreadPool that counts the jobs it is handed: which calls were split.
class CountingExecutor final : public Executor {
 public:
  explicit CountingExecutor(size_t threads) : pool_(threads) {}
  size_t num_threads() const override { return pool_.num_threads(); }
  void run(size_t tasks, TaskFn fn, void* context) override {
    ++runs_;
    pool_.run(tasks, fn, context);
  }
  size_t runs() const { return runs_; }

 private:
  ThreadPool pool_;
  size_t runs_ = 0;  // calls come from this thread only
};

// The functor's store runs per tile on each thread's share: the same bits on
// 1 and 2 threads, for each kernel record. The shapes are gemm_test's
// (OneAndTwoThreadsAreBitwiseEqual): M = 1 (split N), N = 10 (split M), both,
// dot-product columns; each is worth splitting (threading/split.h: the work
// alone decides), checked by counting the executor's runs, except M = 1 with
// quantized weights, whose few bytes may not be worth a second thread.
TEST_P(EpilogueFunctorTest, OneAndTwoThreadsAreBitwiseEqual) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(4);
  using Shape = std::array<size_t, 3>;
  const std::vector<Shape> native = {Shape{1, 300, 2000}, Shape{200, 10, 1100}, Shape{64, 130, 333},
                                     Shape{40, 300, 700}, Shape{12, 10, 18000}};
  const std::vector<Shape> emulated = {Shape{1, 300, 1000}, Shape{200, 10, 600}, Shape{64, 130, 145},
                                       Shape{40, 300, 100}, Shape{12, 10, 10000}};
  CountingExecutor two(2);
  for (const Shape& shape : testing::Emulated() ? emulated : native) {
    const size_t m = shape[0], n = shape[1], k = shape[2];
    for (WeightType t : kTypes) {
      Weights w;
      ASSERT_TRUE(PackRandom(t, k, n, rng, &w));
      SCOPED_TRACE(Describe(t, m, n, k, w.pw, "fp32"));
      std::vector<float> a(m * k), scale(n), shift(m), bias(n);
      rng.fill(a.data(), a.size());
      rng.fill(scale.data(), n);
      rng.fill(shift.data(), m);
      rng.fill(bias.data(), n);
      const functors::ClampScaleParams p{-0.5f, 0.5f, scale.data(), shift.data()};
      std::vector<float> c1(m * n, testing::PoisonF32()), c2(m * n, testing::PoisonF32());
      GemmOptions o2;
      o2.executor = &two;
      const Epilogue ep = Epilogue().with_bias(bias.data());
      ASSERT_EQ(functors::gemm_clamp_scale(matrix(a.data(), m, k), w.pw, matrix(c1.data(), m, n), p, ep),
                Status::kOk);
      const size_t runs_before = two.runs();
      ASSERT_EQ(functors::gemm_clamp_scale(matrix(a.data(), m, k), w.pw, matrix(c2.data(), m, n), p, ep, o2),
                Status::kOk);
      const bool quant = t == WeightType::kInt8 || t == WeightType::kInt4;
      if (w.pw.panels() > 1 && !(quant && m == 1)) {
        EXPECT_EQ(two.runs() - runs_before, 1u) << "not split";
      }
      for (size_t i = 0; i < c1.size(); ++i) {
        ASSERT_EQ(testing::Bits(c1[i]), testing::Bits(c2[i])) << "element " << i;
        ASSERT_FALSE(std::isnan(c1[i])) << "element " << i << " not written";
      }
    }
  }
}

// The functor is the activation step and stores one vector at a time: an
// Epilogue with an activation, or gate/up weights, is refused, C untouched;
// the usual checks of gemm still apply, naming the engine's entry point.
TEST_P(EpilogueFunctorTest, BadInputIsReportedAndOutputUntouched) {
  const size_t m = 3, n = 5, k = 4;
  std::vector<float> a(m * k, 0.5f), w(k * n, 0.25f), c(m * n, testing::PoisonF32());
  PackedWeights pw, gate_up;
  ASSERT_EQ(pack_weights(weights_kn(w.data(), k, n), WeightType::kF32, &pw), Status::kOk);
  ASSERT_EQ(pack_weights_gate_up(weights_kn(w.data(), k, n), weights_kn(w.data(), k, n), WeightType::kF32, &gate_up),
            Status::kOk);
  const functors::IndexParams p{16};
  const auto untouched = [&] {
    for (float v : c) {
      if (!std::isnan(v)) return false;
    }
    return true;
  };
  EXPECT_TRUE(testing::FailsWith(functors::gemm_index(matrix(a.data(), m, k), pw, matrix(c.data(), m, n), p,
                                                      Epilogue().with(Activation::kRelu)),
                                 Status::kInvalidArgument, "gemm_index: the epilogue functor is the activation"));
  EXPECT_TRUE(untouched());
  EXPECT_TRUE(testing::FailsWith(functors::gemm_index(matrix(a.data(), m, k), gate_up, matrix(c.data(), m, n), p,
                                                      Epilogue().with(Activation::kSwiGlu)),
                                 Status::kInvalidArgument, "gemm_index: the epilogue functor is the activation"));
  EXPECT_TRUE(testing::FailsWith(functors::gemm_index(matrix(a.data(), m, k), gate_up, matrix(c.data(), m, n), p),
                                 Status::kInvalidArgument, "gemm_index: an epilogue functor cannot store a gate/up"));
  EXPECT_TRUE(untouched());
  EXPECT_TRUE(testing::FailsWith(functors::gemm_index(matrix(a.data(), m, k + 1), pw, matrix(c.data(), m, n), p),
                                 Status::kShapeMismatch, "gemm_index: A has K=5"));
  FusedOutput<float> out{matrix(c.data(), m, n), {}};
  EXPECT_TRUE(testing::FailsWith(functors::gemm_index_fused(matrix(a.data(), m, k), pw, &out, 2, p),
                                 Status::kShapeMismatch, "gemm_index_fused: 2 outputs for 1 weight segments"));
  const FusedOutput<float>* none = nullptr;
  EXPECT_TRUE(testing::FailsWith(functors::gemm_index_fused(matrix(a.data(), m, k), pw, none, 1, p),
                                 Status::kNullPointer, "gemm_index_fused: outputs is null"));
  EXPECT_TRUE(untouched());
}

// The functor's store of a bf16 C is the rounded fp32 C of the same call, bit
// for bit (one instruction on the paths with BF16), on every kernel record and
// under MXCSR DAZ/FTZ or FPCR FZ/DN. Integer A and W give integer products
// (ties past 2^8, for fp32 and bf16 weights); the functor's per-column scale
// takes column blocks of 8 to the rounding's edges: × 1, × 2^-140 (fp32
// subnormals), × 2^119 (within a factor of 4 of FLT_MAX: bf16's max, Inf, or
// Inf in fp32 already); its per-row shift adds a subnormal, or NaN every third
// row.
TEST_P(EpilogueFunctorTest, Bf16OutputIsTheRoundedFp32Output) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(5);
  using Shape = std::array<size_t, 3>;
  const std::vector<Shape> shapes = testing::Emulated()
                                        ? std::vector<Shape>{Shape{1, 40, 37}, Shape{13, 33, 40}, Shape{9, 13, 33}}
                                        : std::vector<Shape>{Shape{1, 100, 64}, Shape{13, 97, 40}, Shape{9, 13, 33},
                                                             Shape{37, 150, 700}};
  const auto integer = [&] { return static_cast<float>(1 + rng.below(15)) * (rng.below(2) ? 1.f : -1.f); };
  for (const bool flush : {false, true}) {
    for (WeightType t : kTypes) {
      for (const Shape& shape : shapes) {
        const size_t m = shape[0], n = shape[1], k = shape[2], ldc = n + 2;
        std::vector<float> a(m * k), w(k * n), scale(n), shift(m);
        for (float& x : a) x = integer();
        for (float& x : w) x = integer();
        for (size_t j = 0; j < n; ++j) scale[j] = std::ldexp(1.f, j / 8 % 3 == 0 ? 0 : j / 8 % 3 == 1 ? -140 : 119);
        for (size_t i = 0; i < m; ++i) {
          shift[i] = i % 3 == 2 ? std::numeric_limits<float>::quiet_NaN() : std::ldexp(integer(), -149);
        }
        PackedWeights pw;
        ASSERT_EQ(pack_weights(weights_kn(w.data(), k, n), t, &pw), Status::kOk) << last_error();
        SCOPED_TRACE(Describe(t, m, n, k, pw, flush ? "fp32 A, flush modes" : "fp32 A"));
        const functors::ClampScaleParams p{-INFINITY, INFINITY, scale.data(), shift.data()};
        std::vector<float> c32(m * ldc, testing::PoisonF32());
        std::vector<bf16> c16(m * ldc, bf16{testing::kPoisonBf16});
        Status s32, s16;
        {
          std::optional<testing::ScopedFlushModes> modes;
          if (flush) modes.emplace();
          s32 = functors::gemm_clamp_scale(matrix<const float>(a.data(), m, k), pw, matrix(c32.data(), m, n, ldc), p);
          s16 = functors::gemm_clamp_scale(matrix<const float>(a.data(), m, k), pw, matrix(c16.data(), m, n, ldc), p);
        }
        ASSERT_EQ(s32, Status::kOk) << last_error();
        ASSERT_EQ(s16, Status::kOk) << last_error();
        testing::Bf16Edges edges;
        for (size_t i = 0; i < m; ++i) {
          for (size_t j = 0; j < ldc; ++j) {
            const size_t at = i * ldc + j;
            const uint16_t want = j < n ? f32_to_bf16(c32[at]).bits : testing::kPoisonBf16;  // padding untouched
            ASSERT_EQ(c16[at].bits, want) << "C[" << i << "][" << j << "], fp32 C 0x" << std::hex
                                          << testing::Bits(c32[at]);
            if (j < n) edges.add(c32[at]);
          }
        }
        if (m >= 3 && n >= 24 && (t == WeightType::kF32 || t == WeightType::kBf16)) {
          EXPECT_GT(edges.ties, 0u) << edges.describe();
          EXPECT_GT(edges.nans, 0u) << edges.describe();
          if (!flush) {
            EXPECT_GT(edges.subnormals, 0u) << edges.describe();
          }
        }
      }
    }
  }
}

TILEKIT_INSTANTIATE_PATHS(EpilogueFunctorTest);

}  // namespace
}  // namespace tilekit

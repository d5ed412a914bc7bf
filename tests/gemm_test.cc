// GEMM on every path: shapes and tails, random shapes, every dtype mix, every
// epilogue op, fusion, threads, concurrency, allocation-freedom and bad input.
#include <array>
#include <atomic>
#include <cstdlib>
#include <iterator>
#include <new>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "bf16_store_checks.h"
#include "gemm_reference.h"
#include "tilekit/cpu/hwy_targets.h"

#include "count_allocations.h"

namespace tilekit {
namespace {

using testing::GemmCase;
using testing::GemmReference;

// Inputs for one case: fp32 copies (already rounded where the kernel sees bf16)
// for the reference, and the typed buffers the kernel reads.
struct Problem {
  GemmCase g;
  size_t lda = 0, ldc = 0, ldr = 0, wn = 0;
  std::vector<float> a, w, c_old, bias, residual;
  std::vector<bf16> a_bf16, c_old_bf16;

  Problem(const GemmCase& gc, testing::Rng& rng, size_t pad = 0) : g(gc) {
    lda = g.k + pad;
    ldc = g.n + pad;
    ldr = g.n + 2 * pad;
    wn = g.gate_up ? 2 * g.n : g.n;
    a.resize(g.m * lda + 1);
    w.resize(g.k * wn + 1);
    c_old.resize(g.m * ldc + 1);
    rng.fill(a.data(), a.size());
    rng.fill(w.data(), w.size());
    rng.fill(c_old.data(), c_old.size());
    auto round = [](std::vector<float>& v) { for (float& x : v) x = bf16_to_f32(f32_to_bf16(x)); };
    if (g.a_bf16) round(a);
    if (g.w_bf16) round(w);
    if (g.c_bf16) round(c_old);  // C_old is read back as bf16 when beta != 0
    a_bf16.resize(a.size());
    c_old_bf16.resize(c_old.size());
    for (size_t i = 0; i < a.size(); ++i) a_bf16[i] = f32_to_bf16(a[i]);
    for (size_t i = 0; i < c_old.size(); ++i) c_old_bf16[i] = f32_to_bf16(c_old[i]);
    if (g.ep.bias) {
      bias.resize(g.n + 1);
      rng.fill(bias.data(), bias.size());
      g.ep.bias = bias.data();
    }
    if (g.ep.residual) {
      residual.resize(g.m * ldr + 1);
      rng.fill(residual.data(), residual.size());
      g.ep.residual = residual.data();
      g.ep.ld_residual = ldr;
    }
  }

  Status pack(PackedWeights* pw) const {
    const WeightType t = g.w_bf16 ? WeightType::kBf16 : WeightType::kF32;
    if (!g.gate_up) return pack_weights(weights_kn(w.data(), g.k, g.n), t, pw);
    // Gate and up as two [K][N] views into the [K][2N] matrix.
    return pack_weights_gate_up(weights_kn(w.data(), g.k, g.n, wn), weights_kn(w.data() + g.n, g.k, g.n, wn), t, pw);
  }

  // Runs the kernel into C (an fp32 vector; bf16 results are widened for
  // comparison) starting from C_old (which beta reads) or poison.
  template <typename TA, typename TC>
  Status run_typed(const PackedWeights& pw, std::vector<float>& out, Executor* ex) const {
    std::vector<TC> c(g.m * ldc + 1);
    for (size_t i = 0; i < c.size(); ++i) {
      if constexpr (kIsBf16<TC>) {
        c[i] = g.ep.beta != 0 ? c_old_bf16[i] : bf16{testing::kPoisonBf16};
      } else {
        c[i] = g.ep.beta != 0 ? c_old[i] : testing::PoisonF32();
      }
    }
    const TA* a_ptr;
    if constexpr (kIsBf16<TA>) a_ptr = a_bf16.data(); else a_ptr = a.data();
    GemmOptions opt;
    opt.executor = ex;
    const Status s = gemm(matrix(a_ptr, g.m, g.k, lda), pw, matrix(c.data(), g.m, g.n, ldc), g.ep, opt);
    out.resize(c.size());
    for (size_t i = 0; i < c.size(); ++i) {
      if constexpr (kIsBf16<TC>) out[i] = bf16_to_f32(c[i]); else out[i] = c[i];
    }
    return s;
  }

  Status run(const PackedWeights& pw, std::vector<float>& out, Executor* ex = nullptr) const {
    if (g.a_bf16) {
      return g.c_bf16 ? run_typed<bf16, bf16>(pw, out, ex) : run_typed<bf16, float>(pw, out, ex);
    }
    return g.c_bf16 ? run_typed<float, bf16>(pw, out, ex) : run_typed<float, float>(pw, out, ex);
  }

  std::string describe() const {
    char buf[256];
    std::snprintf(buf, sizeof(buf), "M=%zu N=%zu K=%zu lda=%zu ldc=%zu A=%s W=%s C=%s act=%s bias=%d res=%d alpha=%g beta=%g clamp=%d%s",
                  g.m, g.n, g.k, lda, ldc, g.a_bf16 ? "bf16" : "f32", g.w_bf16 ? "bf16" : "f32",
                  g.c_bf16 ? "bf16" : "f32", activation_name(g.ep.activation), g.ep.bias != nullptr,
                  g.ep.residual != nullptr, g.ep.alpha, g.ep.beta, g.ep.clamps(), g.gate_up ? " gate_up" : "");
    return buf;
  }

  // Checks every element against the fp64 reference (with the arithmetic of
  // the path that read `pw`) and that the padding between rows (ldc > n) and
  // past the end was not written.
  ::testing::AssertionResult check(const std::vector<float>& out, const PackedWeights& pw) const {
    GemmCase path_case = g;
    path_case.a_rounded = !g.a_bf16 && pw.layout().rounds_a_to_bf16();
    path_case.odd_rounded_sums = pw.layout().kind == PanelKind::kArmBfmmla;
    GemmReference ref;
    ref.compute(path_case, a.data(), lda, w.data(), c_old.data(), ldc);
    double worst = 0;
    for (size_t i = 0; i < g.m; ++i) {
      for (size_t j = 0; j < ldc; ++j) {
        const float got = out[i * ldc + j];
        if (j >= g.n) {
          const bool untouched = g.ep.beta != 0 ? (got == (g.c_bf16 ? bf16_to_f32(c_old_bf16[i * ldc + j]) : c_old[i * ldc + j]))
                                                : std::isnan(got);
          if (!untouched) return ::testing::AssertionFailure() << describe() << ": wrote padding at " << i << "," << j;
          continue;
        }
        const double want = ref.out[i * g.n + j], bound = ref.bound[i * g.n + j];
        const double err = std::fabs(got - want);
        if (!(err <= bound)) {
          return ::testing::AssertionFailure() << describe() << ": C[" << i << "][" << j << "] = " << got << ", want "
                                               << want << ", error " << err << " > bound " << bound
                                               << " (error/bound " << err / bound << ")";
        }
        worst = std::max(worst, err / bound);
      }
    }
    return ::testing::AssertionSuccess() << "worst error/bound " << worst;
  }
};

class GemmTest : public testing::PathTest {};

GemmCase Case(size_t m, size_t n, size_t k) {
  GemmCase g;
  g.m = m;
  g.n = n;
  g.k = k;
  return g;
}

// The activations of one weight matrix, and with the gate/up pair's SwiGLU and GeGLU.
using testing::kActivations;
constexpr Activation kActivationsAndSwiGlu[] = {Activation::kNone,     Activation::kRelu, Activation::kGeluErf,
                                                Activation::kGeluTanh, Activation::kSilu, Activation::kSwiGlu,
                                                Activation::kGeGlu};

// Random element types and epilogue for g, drawn from rng in a fixed order so a
// seed replays the same cases. The activation comes from `acts`; SwiGLU or
// GeGLU makes g a gate/up pair, which takes no bias. With `pick` >= 0 the dtype mix (pick
// mod 8) and the activation (pick / 8 mod kActs) are chosen instead of drawn:
// 8·kActs consecutive picks run every pair once, where fewer random draws
// (the emulated legs) could miss one.
template <size_t kActs>
void RandomDtypesAndEpilogue(GemmCase& g, testing::Rng& rng, const Activation (&acts)[kActs], int pick = -1) {
  if (pick >= 0) {
    g.a_bf16 = pick & 1;
    g.w_bf16 = pick & 2;
    g.c_bf16 = pick & 4;
    g.ep.activation = acts[static_cast<size_t>(pick) / 8 % kActs];
  } else {
    g.a_bf16 = rng.below(2);
    g.w_bf16 = rng.below(2);
    g.c_bf16 = rng.below(2);
    g.ep.activation = acts[rng.below(kActs)];
  }
  g.gate_up = is_gated(g.ep.activation);
  if (!g.gate_up && rng.below(2)) g.ep.bias = reinterpret_cast<const float*>(1);
  if (rng.below(3) == 0) g.ep.residual = reinterpret_cast<const float*>(1);
  if (rng.below(3) == 0) g.ep.beta = 0.25f;
  if (rng.below(3) == 0) g.ep.alpha = 1.5f;
}

// "Test/path" of every test that has asked RepeatsAWeakerPath in this process
// (a test runs once per path, weakest path first).
std::set<std::string>& TestsRunOnPaths() {
  static std::set<std::string> ran;
  return ran;
}

std::string TestOnPath(Isa isa) {
  std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();  // "Test/path"
  return name.substr(0, name.rfind('/')) + "/" + isa_name(isa);
}

// Records that this test runs on the active path, and returns whether it
// already ran g, in this process, on a weaker path with the same code. GEMM
// picks its code by the Highway target and the packed layout alone (gemm.h,
// arch_gemm: a path-specific kernel comes with a panel kind of its own), and
// the test drew the same data there (one seed per process, the
// same draws case by case), so running it again would repeat that run bit for
// bit: avx512_bf16 and amx run fp32 weights as avx512 does (and avx512_bf16
// runs bf16 weights as avx512 does), sve_bf16 runs fp32 weights as sve does.
// Their bf16 C is rounded by the conversion instruction instead, to the same
// bits: Bf16OutputIsTheRoundedFp32Output checks that on every path.
// Skipping those repeats cut the sve_bf16 instances on the emulated 256-bit
// SVE leg from 270 to 101 s. A test filtered to one path still runs every case.
bool RepeatsAWeakerPath(const GemmCase& g) {
  const Isa here = cpu::active_isa();
  TestsRunOnPaths().insert(TestOnPath(here));
  const WeightType type = g.w_bf16 ? WeightType::kBf16 : WeightType::kF32;
  const PackKind kind = g.gate_up ? PackKind::kGateUp : PackKind::kSeparate;
  const PanelLayout layout = packing_layout(type, g.n, 1, kind);
  bool same = false;
  for (int i = 0; i < static_cast<int>(here) && !same; ++i) {
    const Isa weaker = static_cast<Isa>(i);
    if (cpu::hwy_target_of(weaker) != cpu::hwy_target_of(here) || !TestsRunOnPaths().count(TestOnPath(weaker))) {
      continue;
    }
    EXPECT_EQ(set_max_isa(weaker), Status::kOk);
    same = packing_layout(type, g.n, 1, kind) == layout;
    EXPECT_EQ(set_max_isa(here), Status::kOk);
  }
  return same;
}

void RunAndCheck(const GemmCase& g, testing::Rng& rng, size_t pad = 0) {
  const Problem p(g, rng, pad);  // drawn even when skipped: later cases keep their data
  if (RepeatsAWeakerPath(g)) return;
  PackedWeights pw;
  ASSERT_EQ(p.pack(&pw), Status::kOk) << last_error();
  std::vector<float> out;
  ASSERT_EQ(p.run(pw, out), Status::kOk) << p.describe() << ": " << last_error();
  ASSERT_TRUE(p.check(out, pw));
}

const size_t kSweep[] = {1, 2, 3, 7, 15, 16, 17, 31, 33, 64, 100, 257};

// The row counts of the sweeps: kSweep, up to 100 on the emulated legs. 257
// rows cut into the same row tiles as 100 (heights 11 and 12 at mr = 12, 4 at
// mr = 4), so it adds cost (a third of the sweep), not a tail; columns keep 257
// (at 2048 bits, the only count of three panels), and row blocks are
// LargeShapesCrossEveryBlockBoundary's.
std::vector<size_t> SweepRows() {
  std::vector<size_t> rows;
  for (size_t m : kSweep) {
    if (!testing::Emulated() || m <= 100) rows.push_back(m);
  }
  return rows;
}

TEST_P(GemmTest, ShapeSweepF32) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(10);
  for (size_t m : SweepRows()) {
    for (size_t n : kSweep) {
      for (size_t k : {size_t{1}, size_t{17}, size_t{100}}) RunAndCheck(Case(m, n, k), rng);
    }
  }
  for (size_t k : kSweep) RunAndCheck(Case(33, 31, k), rng);
}

TEST_P(GemmTest, ShapeSweepBf16WeightsAndActivations) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(11);
  for (size_t m : SweepRows()) {
    for (size_t n : kSweep) {
      GemmCase g = Case(m, n, 1 + rng.below(64));
      g.w_bf16 = true;
      g.a_bf16 = (m + n) % 2 == 0;
      g.c_bf16 = (m * n) % 3 == 0;
      RunAndCheck(g, rng);
    }
  }
  for (size_t k : kSweep) {
    GemmCase g = Case(17, 33, k);
    g.w_bf16 = g.a_bf16 = true;
    RunAndCheck(g, rng);
  }
}

TEST_P(GemmTest, KZeroGivesTheEpilogueOfZero) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(12);
  for (bool w_bf16 : {false, true}) {
    GemmCase g = Case(5, 19, 0);
    g.w_bf16 = w_bf16;
    g.ep.bias = reinterpret_cast<const float*>(1);  // replaced by real data in Problem
    g.ep.activation = Activation::kGeluErf;
    RunAndCheck(g, rng);
    g.ep.beta = 0.5f;
    RunAndCheck(g, rng);
  }
}

// Shapes past every blocking boundary of every path: several K blocks with a
// K tail inside the last step, several row blocks (mc) and panel groups (nc),
// with an epilogue at each tile of them. Native shapes are sized for real
// caches. The emulated legs fix caches of 4 KiB / 32 KiB
// (TILEKIT_TEST_CACHE_KIB, tests/CMakeLists.txt), blocks of kc = 16-128 and
// mc = 16-128 rows from 128-bit to 2048-bit vectors, so shapes of a tenth of
// the work cross the same boundaries; with them every kernel of every emulated
// path (vector and BFMMLA, 128 to 2048 bits) crosses all three, where the
// native shapes under qemu's fallback caches left BFMMLA at 128 bits without
// K blocks and 2048 bits without row blocks. K is odd: BFMMLA's last k-block of
// 4 is padded too.
TEST_P(GemmTest, LargeShapesCrossEveryBlockBoundary) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(24);
  using Shape = std::array<size_t, 3>;
  const bool emulated = testing::Emulated();
  // Tall: K blocks with a tail, row blocks wherever A is packed. Wide: many
  // panels, and K blocks on the wider vectors.
  const Shape tall = emulated ? Shape{150, 40, 299} : Shape{288, 40, 4100};
  const Shape wide = emulated ? Shape{40, 300, 151} : Shape{100, 1100, 300};
  for (const Shape& shape : {tall, wide}) {
    for (int dt = 0; dt < 3; ++dt) {
      GemmCase g = Case(shape[0], shape[1], shape[2]);
      g.w_bf16 = dt > 0;
      g.a_bf16 = dt == 2;
      g.c_bf16 = dt == 1;
      g.ep.bias = reinterpret_cast<const float*>(1);
      g.ep.activation = Activation::kGeluTanh;
      RunAndCheck(g, rng);
    }
  }
  // A packed block too large to re-read per panel (mc × K floats > half of L2),
  // so the vector loops keep panel groups: several of them, each with several K
  // blocks. The loop order is target-independent; natively (no SVE) every
  // path runs the large shape; emulated, every path runs the small one (at
  // 4 KiB / 32 KiB: 3 to 33 groups of 4 to 15 K blocks).
  {
    const Shape grouped = emulated ? Shape{30, 260, 230} : Shape{288, 480, 920};
    GemmCase g = Case(grouped[0], grouped[1], grouped[2]);
    g.ep.residual = reinterpret_cast<const float*>(1);
    RunAndCheck(g, rng);
  }
  // SwiGLU and GeGLU pairs finished after several K blocks.
  for (Activation act : {Activation::kSwiGlu, Activation::kGeGlu}) {
    for (bool w_bf16 : {false, true}) {
      GemmCase g = emulated ? Case(30, 150, 230) : Case(70, 150, 600);
      g.gate_up = true;
      g.ep.activation = act;
      g.w_bf16 = w_bf16;
      RunAndCheck(g, rng);
    }
  }
}

TEST_P(GemmTest, LeadingDimensionsLargerThanColumns) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(13);
  for (size_t pad : {1, 3, 16}) {
    GemmCase g = Case(37, 45, 29);
    g.ep.residual = reinterpret_cast<const float*>(1);
    RunAndCheck(g, rng, pad);
    g.a_bf16 = g.w_bf16 = g.c_bf16 = true;
    g.ep.beta = 1.f;
    RunAndCheck(g, rng, pad);
  }
}

// Every op alone and in combination, fp32 and bf16 output.
TEST_P(GemmTest, EveryEpilogueOpAndCombination) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(14);
  const float* kSet = reinterpret_cast<const float*>(1);  // Problem fills in real data
  for (int mask = 0; mask < 32; ++mask) {
    for (Activation act : kActivations) {
      GemmCase g = Case(13 + mask % 5, 35 + mask % 7, 24 + mask);
      g.ep.activation = act;
      if (mask & 1) g.ep.bias = kSet;
      if (mask & 2) g.ep.residual = kSet;
      if (mask & 4) g.ep.alpha = 0.75f;
      if (mask & 8) g.ep.beta = -1.5f;
      if (mask & 16) g.ep.clamp_min = -0.5f, g.ep.clamp_max = 0.8f;
      g.c_bf16 = (mask + static_cast<int>(act)) % 2;
      g.w_bf16 = mask % 3 == 0;
      RunAndCheck(g, rng);
    }
  }
}

// SwiGLU and GeGLU (the same pair, gelu_tanh for silu on the gate).
TEST_P(GemmTest, GatedGateUpPair) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(15);
  for (Activation act : {Activation::kSwiGlu, Activation::kGeGlu}) {
    for (size_t n : {1, 7, 16, 17, 33, 100}) {
      for (int variant = 0; variant < 8; ++variant) {
        // M = 1 (the GEMV kernels) with every dtype / residual variant, then 12, 23, 34.
        GemmCase g = Case(variant < 4 ? 1 : 1 + 11 * (variant - 3), n, 40 + variant);
        g.gate_up = true;
        g.ep.activation = act;
        g.w_bf16 = variant & 1;
        g.c_bf16 = variant & 2;
        if ((variant & 3) == 3) g.ep.residual = reinterpret_cast<const float*>(1), g.ep.beta = 0.5f;
        if (variant == 5) g.ep.alpha = 0.75f, g.ep.clamp_min = -0.5f, g.ep.clamp_max = 0.8f;
        RunAndCheck(g, rng);
      }
    }
  }
}

// Natively 200 cases with every choice drawn. Emulated, 48: each pair of dtype
// mix (8) and activation (6) once, and a GEMV in each run of 8, so that every
// category is covered by construction; shapes, bias, residual, alpha, beta and
// padding are still drawn.
TEST_P(GemmTest, RandomShapesDtypesAndEpilogues) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(16);
  const bool emulated = testing::Emulated();
  const int cases = emulated ? 8 * static_cast<int>(std::size(kActivationsAndSwiGlu)) : 200;
  for (int t = 0; t < cases; ++t) {
    // Every 8th case is a GEMV (M = 1 has kernels of its own); emulated, at a
    // different dtype mix in each run of 8.
    const bool gemv = (emulated ? t + t / 8 : t) % 8 == 0;
    GemmCase g = Case(gemv ? 1 : 1 + rng.below(80), 1 + rng.below(160), rng.below(160));
    RandomDtypesAndEpilogue(g, rng, kActivationsAndSwiGlu, emulated ? t : -1);
    SCOPED_TRACE(t);
    RunAndCheck(g, rng, rng.below(3));
  }
}

TEST_P(GemmTest, NanAndInfPropagate) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(17);
  for (bool w_bf16 : {false, true})
  for (size_t n : {size_t{40}, size_t{10}}) {  // 10: dot-product columns
    GemmCase g = Case(20, n, 30);
    g.w_bf16 = w_bf16;
    Problem p(g, rng);
    p.a[3 * p.lda + 5] = NAN;                      // row 3 of C: all NaN
    p.w[7 * p.wn + 9] = INFINITY;                  // column 9: ±Inf (or NaN where the Inf meets a NaN)
    PackedWeights pw;
    ASSERT_EQ(p.pack(&pw), Status::kOk);
    std::vector<float> out;
    ASSERT_EQ(p.run(pw, out), Status::kOk);
    for (size_t j = 0; j < p.g.n; ++j) EXPECT_TRUE(std::isnan(out[3 * p.ldc + j])) << j;
    for (size_t i = 0; i < p.g.m; ++i) {
      if (i != 3) {
        EXPECT_TRUE(std::isinf(out[i * p.ldc + 9])) << i << ": " << out[i * p.ldc + 9];
      }
    }
    EXPECT_TRUE(std::isfinite(out[0]));
  }
}

// The activations at the edges of fp32: C = A (identity weights), one value
// per row in column 0. gelu_tanh's inner polynomial overflows to ±Inf past
// |x| ~ 1e13, and Highway's Tanh of ±Inf or NaN (gelu_erf: its Exp of NaN)
// is undefined behaviour on the emulated targets (UBSan traps it in the asan
// leg): gelu(x) = x and gelu(−x) = 0 for large x, Inf and NaN pass; silu
// likewise (its −x side tiny, not 0).
TEST_P(GemmTest, ActivationsOfHugeAndNonFiniteValues) {
  TILEKIT_SEED_TRACE();
  const float kBig = 3e13f, kHuge = 1e30f;
  const float in[] = {INFINITY, NAN, kHuge, -kHuge, kBig, -kBig};
  const size_t m = sizeof(in) / sizeof(in[0]), k = 8, n = 8;
  std::vector<float> a(m * k, 0.f), w(k * n, 0.f), c(m * n);
  for (size_t i = 0; i < m; ++i) a[i * k] = in[i];
  for (size_t i = 0; i < k; ++i) w[i * n + i] = 1.f;
  PackedWeights pw;
  ASSERT_EQ(pack_weights(weights_kn(w.data(), k, n), WeightType::kF32, &pw), Status::kOk);
  for (Activation act : {Activation::kGeluTanh, Activation::kGeluErf, Activation::kSilu}) {
    std::fill(c.begin(), c.end(), -42.f);
    ASSERT_EQ(gemm(matrix(a.data(), m, k), pw, matrix(c.data(), m, n), Epilogue().with(act)), Status::kOk);
    const std::string what = activation_name(act);
    EXPECT_EQ(c[0 * n], INFINITY) << what;
    EXPECT_TRUE(std::isnan(c[1 * n])) << what;
    EXPECT_EQ(c[2 * n], kHuge) << what;
    EXPECT_EQ(c[4 * n], kBig) << what;
    // gelu: x/2 · (1 + (−1)), exactly 0; silu: x / (1 + e^88), below 1e-8.
    const float zero_within = act == Activation::kSilu ? 1e-8f : 0.f;
    EXPECT_LE(std::fabs(c[3 * n]), zero_within) << what << ": " << c[3 * n];
    EXPECT_LE(std::fabs(c[5 * n]), zero_within) << what << ": " << c[5 * n];
  }
}

// Packing tabulates offsets as a row part plus a column part: every layout of
// every path must separate so.
TEST_P(GemmTest, PackedOffsetsSeparateIntoRowAndColumn) {
  for (WeightType type : {WeightType::kF32, WeightType::kBf16}) {
    for (size_t n : {size_t{10}, size_t{300}}) {
      const PanelLayout l = packing_layout(type, n, 1, PackKind::kSeparate);
      for (size_t k = 0; k < 200; ++k) {
        for (size_t c = 0; c < l.nr; ++c) {
          ASSERT_EQ(packed_offset(l, k, c), packed_offset(l, k, 0) + packed_offset(l, 0, c))
              << panel_kind_name(l.kind) << " k=" << k << " c=" << c;
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
    runs_.fetch_add(1);
    pool_.run(tasks, fn, context);
  }
  size_t runs() const { return runs_.load(); }

 private:
  ThreadPool pool_;
  std::atomic<size_t> runs_{0};
};

// An engine passes its pool to every call: calls too small to pay for waking
// another thread (1 × 64 × 64 took 0.3-0.5 µs alone, 1.3-4.1 µs split over
// two; 1 × 256 × 256 and 32 × 128 × 128 ran about half as fast split) run on
// the calling thread, whatever their shape.
TEST_P(GemmTest, SmallCallsStayOnTheCallingThread) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(31);
  CountingExecutor pool(2);
  for (const auto& shape : {std::array<size_t, 3>{1, 64, 64}, std::array<size_t, 3>{16, 64, 64},
                            std::array<size_t, 3>{4, 100, 30}, std::array<size_t, 3>{1, 10, 200},
                            std::array<size_t, 3>{1, 256, 256}, std::array<size_t, 3>{32, 128, 128}}) {
    GemmCase g = Case(shape[0], shape[1], shape[2]);
    Problem p(g, rng);
    PackedWeights pw;
    ASSERT_EQ(p.pack(&pw), Status::kOk);
    std::vector<float> out;
    ASSERT_EQ(p.run(pw, out, &pool), Status::kOk);
    EXPECT_EQ(pool.runs(), 0u) << p.describe() << ": a small call woke the pool";
    ASSERT_TRUE(p.check(out, pw));
  }
}

// Packing on several threads writes the same bytes as on one (panels are
// split, each written by one task), and packing different weights from several
// host threads at once, sharing one pool, is safe.
TEST_P(GemmTest, PackingOnThreadsAndConcurrently) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(32);
  ThreadPool pool(2);
  PackOptions on_pool;
  on_pool.executor = &pool;
  for (bool w_bf16 : {false, true}) {
    for (const auto& kn : {std::array<size_t, 2>{300, 200}, std::array<size_t, 2>{77, 10}, std::array<size_t, 2>{5, 1}}) {
      for (SourceLayout layout : {SourceLayout::kKN, SourceLayout::kNK}) {
        std::vector<float> w(kn[0] * kn[1]);
        rng.fill(w.data(), w.size());
        const WeightSource src = layout == SourceLayout::kKN ? weights_kn(w.data(), kn[0], kn[1])
                                                             : weights_nk(w.data(), kn[1], kn[0]);
        const WeightType type = w_bf16 ? WeightType::kBf16 : WeightType::kF32;
        PackedWeights one, two;
        ASSERT_EQ(pack_weights(src, type, &one), Status::kOk);
        ASSERT_EQ(pack_weights(src, type, &two, on_pool), Status::kOk);
        ASSERT_EQ(one.bytes(), two.bytes());
        EXPECT_EQ(0, std::memcmp(one.panel(0), two.panel(0), one.bytes())) << "K=" << kn[0] << " N=" << kn[1];
      }
    }
  }
  // Four host threads pack four different matrices on the shared pool.
  std::vector<std::vector<float>> ws(4, std::vector<float>(256 * 96));
  for (auto& w : ws) rng.fill(w.data(), w.size());
  std::vector<PackedWeights> serial(4), concurrent(4);
  for (size_t i = 0; i < 4; ++i) ASSERT_EQ(pack_weights(weights_kn(ws[i].data(), 256, 96), WeightType::kBf16, &serial[i]), Status::kOk);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (size_t i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      for (int r = 0; r < 5; ++r) {
        if (pack_weights(weights_kn(ws[i].data(), 256, 96), WeightType::kBf16, &concurrent[i], on_pool) != Status::kOk ||
            std::memcmp(serial[i].panel(0), concurrent[i].panel(0), serial[i].bytes()) != 0) {
          ++failures;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST_P(GemmTest, OneAndTwoThreadsAreBitwiseEqual) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(18);
  CountingExecutor pool(2);
  // M = 1 (split N), N = 10 (split M), shapes where both splits apply, and
  // shapes with several K blocks (split N, split M). Each is large enough to be
  // split (the count of executor runs checks it): smaller calls stay on the
  // calling thread (SmallCallsStayOnTheCallingThread). Whether a call is split
  // depends on its work alone (threading/split.h: 2·M·K·N flops or the packed
  // weights' bytes against 10 µs a task), not on the machine, so the emulated
  // legs run the same geometries with K cut to 1.2x that threshold (M = 1: in
  // bf16 bytes, 1.2-1.25x); their small caches
  // (TILEKIT_TEST_CACHE_KIB) keep several K blocks in the K-blocked shapes.
  using Shape = std::array<size_t, 3>;
  const std::vector<Shape> native = {Shape{1, 300, 2000}, Shape{200, 10, 1100}, Shape{64, 130, 333},
                                     Shape{13, 70, 2400}, Shape{40, 300, 700},  Shape{200, 20, 600},
                                     // dot-product columns: M = 1 and 12 split columns, 9 and 50 rows
                                     Shape{1, 13, 42000}, Shape{12, 10, 18000}, Shape{9, 7, 36000},
                                     Shape{50, 10, 4400}};
  const std::vector<Shape> emulated = {Shape{1, 300, 1000}, Shape{200, 10, 600},  Shape{64, 130, 145},
                                       Shape{13, 70, 1320},  Shape{40, 300, 100},  Shape{200, 20, 300},
                                       Shape{1, 13, 24000},  Shape{12, 10, 10000}, Shape{9, 7, 19100},
                                       Shape{50, 10, 2400}};
  for (const Shape& shape : testing::Emulated() ? emulated : native) {
    for (int dt = 0; dt < 3; ++dt) {
      GemmCase g = Case(shape[0], shape[1], shape[2]);
      g.w_bf16 = dt > 0;  // fp32 A with bf16 weights, and all bf16
      g.a_bf16 = dt == 2;
      g.ep.activation = Activation::kGeluTanh;
      Problem p(g, rng);
      if (RepeatsAWeakerPath(g)) continue;
      PackedWeights pw;
      ASSERT_EQ(p.pack(&pw), Status::kOk);
      std::vector<float> one, two;
      ASSERT_EQ(p.run(pw, one), Status::kOk);
      const size_t runs_before = pool.runs();
      ASSERT_EQ(p.run(pw, two, &pool), Status::kOk);
      // With one panel, whether rows are split depends on the kernel's row
      // tile (one share of the work runs inline); with several it must be split.
      if (pw.panels() > 1) EXPECT_EQ(pool.runs() - runs_before, 1u) << p.describe() << ": not split";
      ASSERT_EQ(0, std::memcmp(one.data(), two.data(), one.size() * sizeof(float))) << p.describe();
      ASSERT_TRUE(p.check(two, pw));
    }
  }
}

// Calls from several threads at once, each with its own shape (tile shapes and
// per-thread state differ with M), each matching its single-thread result.
TEST_P(GemmTest, ConcurrentCallsFromSeveralThreads) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(19);
  for (bool w_bf16 : {false, true}) {
    std::vector<Problem> problems;
    // N = 10: narrow weights (dot-product columns; on amx, the narrow AMX
    // kernel with its own tile configuration).
    for (const auto& mn : {std::array<size_t, 2>{1, 90}, std::array<size_t, 2>{7, 90}, std::array<size_t, 2>{50, 90},
                           std::array<size_t, 2>{70, 90}, std::array<size_t, 2>{70, 10},
                           std::array<size_t, 2>{20, 10}}) {
      GemmCase g = Case(mn[0], mn[1], 70);
      g.w_bf16 = w_bf16;
      g.ep.activation = Activation::kSilu;
      problems.emplace_back(g, rng);
    }
    std::vector<PackedWeights> pws(problems.size());
    std::vector<std::vector<float>> want(problems.size());
    for (size_t i = 0; i < problems.size(); ++i) {
      ASSERT_EQ(problems[i].pack(&pws[i]), Status::kOk);
      ASSERT_EQ(problems[i].run(pws[i], want[i]), Status::kOk);
    }
    // The path is forced by a process-wide cap, so the workers run it too.
    std::atomic<int> mismatches{0};
    auto worker = [&](size_t first) {
      for (int r = 0; r < 20; ++r) {
        const size_t i = (first + r) % problems.size();
        std::vector<float> got;
        if (problems[i].run(pws[i], got) != Status::kOk ||
            std::memcmp(got.data(), want[i].data(), got.size() * 4) != 0) {
          ++mismatches;
        }
      }
    };
    std::vector<std::thread> threads;
    for (size_t t = 0; t < 4; ++t) threads.emplace_back(worker, t);
    for (std::thread& t : threads) t.join();
    EXPECT_EQ(mismatches.load(), 0) << (w_bf16 ? "bf16" : "f32") << " weights";
  }
}

// K: enough work to be split over the pool (the count of executor runs checks
// it), and several K blocks (the partial sums' workspace). Emulated, K is cut
// to 1.2x the split threshold (threading/split.h), which the legs' small
// caches still cut into several K blocks.
TEST_P(GemmTest, NoHeapAllocationAfterWarmUp) {
  testing::Rng rng(20);
  const bool emulated = testing::Emulated();
  for (bool w_bf16 : {false, true})
  for (size_t n : {size_t{100}, size_t{10}}) {  // 10: narrow weights
    GemmCase g = Case(64, n, emulated ? (n == 10 ? 1880 : 190) : 3600);
    g.a_bf16 = true;  // the path that needs the A workspace
    g.w_bf16 = w_bf16;
    Problem p(g, rng);
    PackedWeights pw;
    ASSERT_EQ(p.pack(&pw), Status::kOk);
    std::vector<float> c(g.m * g.n);
    std::vector<bf16> a(p.a_bf16);
    CountingExecutor pool(2);
    GemmOptions opt;
    opt.executor = &pool;
    for (int warm = 0; warm < 3; ++warm) {
      ASSERT_EQ(gemm(matrix(a.data(), g.m, g.k, p.lda), pw, matrix(c.data(), g.m, g.n), Epilogue(), opt), Status::kOk);
      ASSERT_EQ(gemm(matrix(p.a.data(), 1, g.k), pw, matrix(c.data(), 1, g.n)), Status::kOk);
    }
    const size_t before = g_allocations.load();
    for (int r = 0; r < 5; ++r) {
      ASSERT_EQ(gemm(matrix(a.data(), g.m, g.k, p.lda), pw, matrix(c.data(), g.m, g.n), Epilogue(), opt), Status::kOk);
      ASSERT_EQ(gemm(matrix(p.a.data(), 1, g.k), pw, matrix(c.data(), 1, g.n)), Status::kOk);
    }
    EXPECT_EQ(g_allocations.load(), before) << (w_bf16 ? "bf16" : "f32") << " weights, N=" << n;
    // With one panel, whether rows are split depends on the kernel's row tile
    // (as in OneAndTwoThreadsAreBitwiseEqual); with several, all 8 calls are.
    if (pw.panels() > 1) EXPECT_EQ(pool.runs(), 8u) << (w_bf16 ? "bf16" : "f32") << " weights, N=" << n;
  }
}

TEST_P(GemmTest, PyTorchLayoutPacksToTheSameWeights) {
  testing::Rng rng(21);
  for (size_t n : {size_t{45}, size_t{10}})  // 10: dot-product columns
  for (size_t k : {size_t{37}}) {
  std::vector<float> kn(k * n), nk(n * k);
  rng.fill(kn.data(), kn.size());
  for (size_t i = 0; i < k; ++i) {
    for (size_t j = 0; j < n; ++j) nk[j * k + i] = kn[i * n + j];
  }
  for (WeightType t : {WeightType::kF32, WeightType::kBf16}) {
    PackedWeights a, b;
    ASSERT_EQ(pack_weights(weights_kn(kn.data(), k, n), t, &a), Status::kOk);
    ASSERT_EQ(pack_weights(weights_nk(nk.data(), n, k), t, &b), Status::kOk);
    ASSERT_EQ(a.bytes(), b.bytes());
    EXPECT_EQ(0, std::memcmp(a.panel(0), b.panel(0), a.bytes()));
    size_t predicted = 0;
    const WeightSource src = weights_kn(kn.data(), k, n);
    ASSERT_EQ(packed_weights_size(&src, 1, t, PackKind::kSeparate, &predicted), Status::kOk);
    EXPECT_EQ(predicted, a.bytes());
    EXPECT_EQ(a.k(), k);
    EXPECT_EQ(a.n(), n);
    EXPECT_EQ(a.type(), t);
    EXPECT_EQ(a.packed_for(), GetParam());
    EXPECT_EQ(reinterpret_cast<uintptr_t>(a.panel(0)) % kCacheLine, 0u);
  }
  }
}

// K = 0 packs no bytes and reads nothing, so a source without data is valid
// (pack_fuzz: the fill still formed null + column offsets, which UBSan reports).
TEST_P(GemmTest, EmptyKWithNullSourcesPacksNothing) {
  for (WeightType t : {WeightType::kF32, WeightType::kBf16}) {
    for (SourceLayout layout : {SourceLayout::kKN, SourceLayout::kNK}) {
      const WeightSource src{nullptr, 0, 37, layout == SourceLayout::kKN ? size_t{37} : size_t{0}, layout};
      PackedWeights pw;
      ASSERT_EQ(pack_weights(src, t, &pw), Status::kOk) << last_error();
      EXPECT_EQ(pw.bytes(), 0u);
      EXPECT_EQ(pw.k(), 0u);
      EXPECT_EQ(pw.n(), 37u);
    }
  }
}

// One call may mix layouts: each segment is packed from its own source's
// layout (pack_fuzz found [K][N] followed by [N][K] read as [K][N]).
TEST_P(GemmTest, MixedSourceLayoutsPackLikeAllKN) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(33);
  const size_t k = 37, n0 = 5, n1 = 61, n2 = 33;
  std::vector<float> kn0(k * n0), kn1(k * n1), kn2(k * n2), nk1(n1 * k), nk2(n2 * k);
  for (auto* v : {&kn0, &kn1, &kn2}) rng.fill(v->data(), v->size());
  for (size_t i = 0; i < k; ++i) {
    for (size_t j = 0; j < n1; ++j) nk1[j * k + i] = kn1[i * n1 + j];
    for (size_t j = 0; j < n2; ++j) nk2[j * k + i] = kn2[i * n2 + j];
  }
  ThreadPool pool(2);
  for (WeightType t : {WeightType::kF32, WeightType::kBf16}) {
    for (Executor* executor : {static_cast<Executor*>(nullptr), static_cast<Executor*>(&pool)}) {
      PackOptions opt;
      opt.executor = executor;
      const WeightSource kn[3] = {weights_kn(kn0.data(), k, n0), weights_kn(kn1.data(), k, n1),
                                  weights_kn(kn2.data(), k, n2)};
      const WeightSource mixed[3] = {weights_kn(kn0.data(), k, n0), weights_nk(nk1.data(), n1, k),
                                     weights_kn(kn2.data(), k, n2)};
      PackedWeights a, b;
      ASSERT_EQ(pack_weights(kn, 3, t, PackKind::kSeparate, &a, opt), Status::kOk);
      ASSERT_EQ(pack_weights(mixed, 3, t, PackKind::kSeparate, &b, opt), Status::kOk);
      ASSERT_EQ(a.bytes(), b.bytes());
      EXPECT_EQ(0, std::memcmp(a.panel(0), b.panel(0), a.bytes())) << weight_type_name(t) << " separate";
      // Gate [N][K] with up [K][N], and the other way round.
      const WeightSource gu_kn[2] = {weights_kn(kn1.data(), k, n1), weights_kn(kn1.data(), k, n1)};
      const WeightSource gu_mixed[2][2] = {{weights_nk(nk1.data(), n1, k), weights_kn(kn1.data(), k, n1)},
                                           {weights_kn(kn1.data(), k, n1), weights_nk(nk1.data(), n1, k)}};
      PackedWeights c;
      ASSERT_EQ(pack_weights(gu_kn, 2, t, PackKind::kGateUp, &c, opt), Status::kOk);
      for (const auto& pair : gu_mixed) {
        PackedWeights d;
        ASSERT_EQ(pack_weights(pair, 2, t, PackKind::kGateUp, &d, opt), Status::kOk);
        ASSERT_EQ(c.bytes(), d.bytes());
        EXPECT_EQ(0, std::memcmp(c.panel(0), d.panel(0), c.bytes())) << weight_type_name(t) << " gate/up";
      }
    }
  }
}

// Q, K, V packed together: one pass, separate outputs with their own epilogues,
// or one concatenated output.
// m = 1 runs the GEMV, whose panel groups span all three segments.
void FusedQkv(WeightType type, size_t m) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(22);
  const size_t k = 64, nq = 48, nkv = 17;
  std::vector<float> a(m * k), wq(k * nq), wk(k * nkv), wv(k * nkv), bq(nq);
  for (auto* v : {&a, &wq, &wk, &wv, &bq}) rng.fill(v->data(), v->size());
  const WeightSource parts[3] = {weights_kn(wq.data(), k, nq), weights_kn(wk.data(), k, nkv),
                                 weights_kn(wv.data(), k, nkv)};
  PackedWeights fused;
  ASSERT_EQ(pack_weights(parts, 3, type, PackKind::kSeparate, &fused), Status::kOk);
  ASSERT_EQ(fused.segments().size(), 3u);
  std::vector<float> q(m * nq), kk(m * nkv), vv(m * nkv);
  const FusedOutput<float> outs[3] = {
      {matrix(q.data(), m, nq), Epilogue().with_bias(bq.data())},
      {matrix(kk.data(), m, nkv), Epilogue().with(Activation::kRelu)},
      {matrix(vv.data(), m, nkv), Epilogue().with_scale(2.f)}};
  ASSERT_EQ(gemm_fused(matrix(static_cast<const float*>(a.data()), m, k), fused, outs, 3), Status::kOk) << last_error();
  // Each against its own unfused GEMM, bitwise: same kernel, same sums.
  const Epilogue eps[3] = {outs[0].epilogue, outs[1].epilogue, outs[2].epilogue};
  const std::vector<float>* got[3] = {&q, &kk, &vv};
  for (int s = 0; s < 3; ++s) {
    PackedWeights single;
    ASSERT_EQ(pack_weights(parts[s], type, &single), Status::kOk);
    std::vector<float> want(m * parts[s].n);
    ASSERT_EQ(gemm(matrix(a.data(), m, k), single, matrix(want.data(), m, parts[s].n), eps[s]), Status::kOk);
    EXPECT_EQ(0, std::memcmp(want.data(), got[s]->data(), want.size() * 4)) << "segment " << s;
  }
  std::vector<float> cat(m * (nq + 2 * nkv), testing::PoisonF32());
  ASSERT_EQ(gemm(matrix(a.data(), m, k), fused, matrix(cat.data(), m, nq + 2 * nkv)), Status::kOk);
  for (size_t i = 0; i < m; ++i) {
    for (size_t j = 0; j < nkv; ++j) {
      // The concatenated call has no epilogue; the fused one had relu on K and x2 on V.
      ASSERT_EQ(std::max(cat[i * (nq + 2 * nkv) + nq + j], 0.f), kk[i * nkv + j]) << i << "," << j;
      ASSERT_EQ(cat[i * (nq + 2 * nkv) + nq + nkv + j] * 2.f, vv[i * nkv + j]) << i << "," << j;
    }
  }
}

TEST_P(GemmTest, HorizontallyFusedQkv) {
  for (WeightType type : {WeightType::kF32, WeightType::kBf16}) {
    SCOPED_TRACE(weight_type_name(type));
    for (size_t m : {19, 1}) {
      SCOPED_TRACE("m = " + std::to_string(m));
      FusedQkv(type, m);
    }
  }
}

// Every bad input returns its status with a message, and C stays untouched.
// n = 20: the path's panels; n = 10: dot-product columns (every path).
TEST_P(GemmTest, BadInputIsReportedAndOutputUntouched) {
  testing::Rng rng(23);
  for (const size_t n : {size_t{20}, size_t{10}}) {
  SCOPED_TRACE(n);
  const size_t m = 4, k = 8;
  char shape[32], ld[16];
  std::snprintf(shape, sizeof(shape), "expected 4 x %zu", n);
  std::snprintf(ld, sizeof(ld), "ld=%zu", n - 1);
  std::vector<float> a(m * k), w(k * n), c(m * n, 42.f), bias(n);
  rng.fill(a.data(), a.size());
  rng.fill(w.data(), w.size());
  PackedWeights pw, empty;
  ASSERT_EQ(pack_weights(weights_kn(w.data(), k, n), WeightType::kF32, &pw), Status::kOk);
  auto A = matrix(static_cast<const float*>(a.data()), m, k);
  auto C = matrix(c.data(), m, n);
  auto expect = [&](Status got, Status want, const char* needle) {
    EXPECT_EQ(got, want) << status_name(got) << " / " << last_error();
    EXPECT_NE(std::string(last_error()).find(needle), std::string::npos) << last_error();
    for (float v : c) ASSERT_EQ(v, 42.f) << "output touched after: " << needle;
  };
  expect(gemm(matrix(static_cast<const float*>(nullptr), m, k), pw, C), Status::kNullPointer, "A is null");
  expect(gemm(A, pw, matrix(static_cast<float*>(nullptr), m, n)), Status::kNullPointer, "C is null");
  expect(gemm(A, empty, C), Status::kInvalidArgument, "not packed");
  expect(gemm(matrix(static_cast<const float*>(a.data()), m, k - 1), pw, C), Status::kShapeMismatch, "K=7");
  expect(gemm(A, pw, matrix(c.data(), m, n - 1)), Status::kShapeMismatch, shape);
  expect(gemm(A, pw, matrix(c.data(), m - 1, n)), Status::kShapeMismatch, shape);
  expect(gemm(MatrixView<const float>{a.data(), m, k, k - 1}, pw, C), Status::kBadLeadingDim, "A has ld=7");
  expect(gemm(A, pw, MatrixView<float>{c.data(), m, n, 3}), Status::kBadLeadingDim, "C has ld=3");
  expect(gemm(A, pw, C, Epilogue().with_residual(a.data(), 2)), Status::kBadLeadingDim, "residual has ld=2");
  expect(gemm(MatrixView<const float>{a.data(), SIZE_MAX / 2, k, k}, pw, C), Status::kOverflow, "overflows");
  // A and C overlapping; bias inside C; residual overlapping C off by one row.
  expect(gemm(matrix(static_cast<const float*>(c.data()), m, k), pw, C), Status::kAliasing, "A overlaps C");
  expect(gemm(A, pw, C, Epilogue().with_bias(c.data() + 3)), Status::kAliasing, "bias overlaps C");
  expect(gemm(A, pw, C, Epilogue().with_residual(c.data() + n, n)), Status::kAliasing, "residual overlaps C");
  expect(gemm(A, pw, C, Epilogue().with(Activation::kSwiGlu)), Status::kInvalidArgument, "pack_weights_gate_up");
  expect(gemm(A, pw, C, Epilogue().with(Activation::kGeGlu)), Status::kInvalidArgument, "pack_weights_gate_up");
  PackedWeights gu;
  ASSERT_EQ(pack_weights_gate_up(weights_kn(w.data(), k, n / 2, n), weights_kn(w.data() + n / 2, k, n / 2, n),
                                 WeightType::kF32, &gu), Status::kOk);
  expect(gemm(A, gu, matrix(c.data(), m, n / 2)), Status::kInvalidArgument, "need Activation::kSwiGlu");
  expect(gemm_fused(A, pw, static_cast<const FusedOutput<float>*>(nullptr), 1), Status::kNullPointer, "outputs");
  // Packing errors leave the destination as it was.
  const size_t before = pw.bytes();
  expect(pack_weights(weights_kn(nullptr, k, n), WeightType::kF32, &pw), Status::kNullPointer, "source 0 is null");
  expect(pack_weights(WeightSource{w.data(), k, n, n - 1, SourceLayout::kKN}, WeightType::kF32, &pw),
         Status::kBadLeadingDim, ld);
  const WeightSource mism[2] = {weights_kn(w.data(), k, 4), weights_kn(w.data(), k - 1, 4)};
  expect(pack_weights(mism, 2, WeightType::kF32, PackKind::kSeparate, &pw), Status::kShapeMismatch, "K=7");
  expect(pack_weights(weights_kn(w.data(), SIZE_MAX / 4, n), WeightType::kF32, &pw), Status::kOverflow, "overflows");
  for (WeightType t : {WeightType::kF32, WeightType::kBf16}) {  // K padding would wrap
    expect(pack_weights(weights_kn(w.data(), SIZE_MAX, n), t, &pw), Status::kOverflow, "overflows");
  }
  EXPECT_EQ(pw.bytes(), before);
  // In-place residual (residual == C, same ld) is allowed.
  EXPECT_EQ(gemm(A, pw, C, Epilogue().with_residual(c.data(), n)), Status::kOk) << last_error();
  }
}

// Weights packed on one path and used on a path with another layout are
// rejected by name, not misread.
TEST(GemmPacking, WeightsFromAnotherPathAreRejected) {
  const std::vector<Isa> paths = testing::AvailablePaths();
  std::vector<float> w(16 * 40, 0.5f), a(16, 1.f), c(40);
  for (WeightType t : {WeightType::kF32, WeightType::kBf16})
  for (size_t n : {size_t{40}, size_t{10}}) {  // 10: dot-product columns on every path
    for (Isa from : paths) {
      PackedWeights pw;
      {
        testing::ScopedPath on(from);
        ASSERT_EQ(pack_weights(weights_kn(w.data(), 16, n), t, &pw), Status::kOk);
      }
      for (Isa to : paths) {
        testing::ScopedPath on(to);
        const Status s = gemm(matrix(a.data(), 1, 16), pw, matrix(c.data(), 1, n));
        const char* type = weight_type_name(t);
        if (pw.layout() == packing_layout(t, n, 1, PackKind::kSeparate)) {
          EXPECT_EQ(s, Status::kOk) << type << " " << isa_name(from) << " -> " << isa_name(to);
          EXPECT_EQ(c[n - 1], 8.f) << type << " " << isa_name(from) << " -> " << isa_name(to);
        } else {
          EXPECT_EQ(s, Status::kWrongPacking) << type << " " << isa_name(from) << " -> " << isa_name(to);
          EXPECT_NE(std::string(last_error()).find(isa_name(from)), std::string::npos) << last_error();
        }
      }
    }
  }
}

// An epilogue as its own pass over C gives the same bits as fused into the
// GEMM's store: same ops, same order, on the same fp32 accumulator values.
TEST_P(GemmTest, SeparateEpiloguePassMatchesFusedBitwise) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(24);
  const size_t m = 21, n = 53, k = 40;
  std::vector<float> a(m * k), w(k * n), bias(n), res(m * n);
  for (auto* v : {&a, &w, &bias, &res}) rng.fill(v->data(), v->size());
  PackedWeights pw;
  ASSERT_EQ(pack_weights(weights_kn(w.data(), k, n), WeightType::kF32, &pw), Status::kOk);
  const Epilogue ep = Epilogue().with_scale(0.5f).with_bias(bias.data()).with(Activation::kGeluTanh)
                          .with_residual(res.data(), n).with_clamp(-1.f, 2.f);
  std::vector<float> fused(m * n), separate(m * n);
  ASSERT_EQ(gemm(matrix(a.data(), m, k), pw, matrix(fused.data(), m, n), ep), Status::kOk);
  ASSERT_EQ(gemm(matrix(a.data(), m, k), pw, matrix(separate.data(), m, n)), Status::kOk);
  ASSERT_EQ(apply_epilogue(matrix(separate.data(), m, n), ep), Status::kOk);
  EXPECT_EQ(0, std::memcmp(fused.data(), separate.data(), fused.size() * 4));
  EXPECT_EQ(apply_epilogue(matrix(separate.data(), m, n), Epilogue().with_beta(1.f)), Status::kInvalidArgument);
  EXPECT_EQ(apply_epilogue(matrix(separate.data(), m, n), Epilogue().with_bias(separate.data())), Status::kAliasing);
  EXPECT_EQ(apply_epilogue(MatrixView<float>{separate.data(), m, n, n - 1}, ep), Status::kBadLeadingDim);
  EXPECT_EQ(0, std::memcmp(fused.data(), separate.data(), fused.size() * 4)) << "touched on error";
}

// bf16 weights packed on the amx path are in the AMX layout: capped below amx
// (TILEKIT_MAX_ISA or set_max_isa), the vector kernel must refuse them by name.
TEST(GemmPacking, AmxWeightsAreRefusedBelowAmx) {
  const std::vector<Isa> paths = testing::AvailablePaths();
  if (paths.back() != Isa::kAmx) GTEST_SKIP() << "amx is not available here";
  std::vector<float> w(16 * 40, 0.5f), a(16, 1.f), c(40, 42.f);
  PackedWeights pw;
  {
    testing::ScopedPath on(Isa::kAmx);
    ASSERT_EQ(pack_weights(weights_kn(w.data(), 16, 40), WeightType::kBf16, &pw), Status::kOk);
  }
  EXPECT_EQ(pw.layout().kind, PanelKind::kAmx);
  testing::ScopedPath below(Isa::kAvx512Bf16);
  EXPECT_EQ(gemm(matrix(a.data(), 1, 16), pw, matrix(c.data(), 1, 40)), Status::kWrongPacking);
  EXPECT_NE(std::string(last_error()).find("packed for path amx (amx layout"), std::string::npos) << last_error();
  for (float v : c) ASSERT_EQ(v, 42.f);
}

// With AMX refused by the OS (the gemm_test.amx_denied ctest entry simulates it)
// bf16 weights get the vector layout and the vector kernel, and still compute.
TEST(GemmPacking, RefusedAmxPacksBf16ForTheVectorKernel) {
  const char* deny = std::getenv("TILEKIT_TEST_DENY_AMX");
  if (!deny || !*deny) GTEST_SKIP() << "run with TILEKIT_TEST_DENY_AMX=1 (a ctest entry does)";
  clear_max_isa();
  ASSERT_NE(cpu::active_isa(), Isa::kAmx);
  std::vector<float> w(64 * 40, 0.5f), a(3 * 64, 1.f), c(3 * 40);
  PackedWeights pw;
  ASSERT_EQ(pack_weights(weights_kn(w.data(), 64, 40), WeightType::kBf16, &pw), Status::kOk);
  EXPECT_EQ(pw.layout().kind, PanelKind::kVector);
  ASSERT_EQ(gemm(matrix(static_cast<const float*>(a.data()), 3, 64), pw, matrix(c.data(), 3, 40)), Status::kOk);
  for (float v : c) ASSERT_EQ(v, 32.f);
}

// BFMMLA panels, and so the kernels that read them, belong to the paths with
// BF16 only: the neon path (cortex-a72: no BF16) keeps the vector layout, and
// fp32 weights keep it everywhere. SVE records its vector length in the layout.
TEST_P(GemmTest, ArmBfmmlaPanelsOnlyOnPathsWithBf16) {
#if TILEKIT_ARCH_ARM64
  const bool has_bf16 = GetParam() == Isa::kNeonBf16 || GetParam() == Isa::kSveBf16;
  const PanelLayout bf16_layout = active_panel_layout(WeightType::kBf16);
  EXPECT_EQ(bf16_layout.kind, has_bf16 ? PanelKind::kArmBfmmla : PanelKind::kVector);
  EXPECT_EQ(active_panel_layout(WeightType::kF32).kind, PanelKind::kVector);
  if (has_bf16) {
    EXPECT_EQ(bf16_layout.k_align, 4u);
    const unsigned lanes = GetParam() == Isa::kSveBf16 ? cpu::features().sve_bits / 32 : 4;
    EXPECT_EQ(bf16_layout.lanes, lanes);
    EXPECT_EQ(bf16_layout.nr, 2 * lanes);
  }
#else
  GTEST_SKIP() << "BFMMLA panels are aarch64 only";
#endif
}

// Narrow weights (N <= kDotMaxN, where the path's panels would be at least a
// quarter padding) are packed as dot-product columns, one panel per column
// (bf16 on the amx path: one 16-column AMX panel instead); wider ones,
// several segments and gate/up pairs keep the path's panels.
TEST_P(GemmTest, NarrowWeightsPackAsDotColumns) {
  const size_t k = 70;
  std::vector<float> w(k * 40, 0.25f);
  const size_t lanes = active_panel_layout(WeightType::kF32).lanes;
  for (WeightType t : {WeightType::kF32, WeightType::kBf16}) {
    const PanelLayout wide = active_panel_layout(t);
    for (size_t n = 1; n <= 40; ++n) {
      SCOPED_TRACE(n);
      PackedWeights pw;
      ASSERT_EQ(pack_weights(weights_kn(w.data(), k, n), t, &pw), Status::kOk);
      const size_t padded = (n + wide.nr - 1) / wide.nr * wide.nr;
      if (n > kDotMaxN || 4 * (padded - n) < padded) {
        EXPECT_TRUE(pw.layout() == wide);
        continue;
      }
      if (wide.kind == PanelKind::kAmx) {  // AMX: one panel of 16 columns, a single B tile
        EXPECT_EQ(pw.layout().kind, PanelKind::kAmx);
        EXPECT_EQ(pw.layout().nr, 16u);
        EXPECT_TRUE(pw.layout().rounds_a_to_bf16());
        EXPECT_EQ(pw.panels(), 1u);
        EXPECT_EQ(pw.bytes(), (k + 31) / 32 * 32 * 16 * 2);
        continue;
      }
      EXPECT_EQ(pw.layout().kind, PanelKind::kDot);
      EXPECT_FALSE(pw.layout().rounds_a_to_bf16());  // fp32 A is multiplied as it is
      EXPECT_EQ(pw.panels(), n);
      const size_t kp = (k + 2 * lanes - 1) / (2 * lanes) * (2 * lanes);
      EXPECT_EQ(pw.bytes(), n * kp * (t == WeightType::kF32 ? 4 : 2));
    }
    const WeightSource parts[3] = {weights_kn(w.data(), k, 8), weights_kn(w.data(), k, 8), weights_kn(w.data(), k, 8)};
    PackedWeights qkv, gate_up;
    ASSERT_EQ(pack_weights(parts, 3, t, PackKind::kSeparate, &qkv), Status::kOk);
    EXPECT_TRUE(qkv.layout() == wide);
    ASSERT_EQ(pack_weights_gate_up(parts[0], parts[1], t, &gate_up), Status::kOk);
    EXPECT_TRUE(gate_up.layout() == wide);
  }
}

// The dot-product kernel's tails: row tiles (4 rows; 2 on avx2 and scalar),
// column groups (5; 2 on scalar), K around its step of 2·lanes, with every
// dtype and epilogue, C and A with leading dimensions past their columns.
TEST_P(GemmTest, NarrowShapeSweep) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(25);
  const size_t step = 2 * active_panel_layout(WeightType::kF32).lanes;
  for (size_t m : {1, 2, 3, 4, 5, 7, 9, 13, 17, 33}) {
    for (size_t n = 1; n <= kDotMaxN; ++n) {
      for (size_t k : {size_t{1}, step - 1, step, step + 1, 2 * step + 3, size_t{100}, size_t{257}}) {
        GemmCase g = Case(m, n, k);
        RandomDtypesAndEpilogue(g, rng, kActivations);
        RunAndCheck(g, rng, rng.below(3));
      }
    }
  }
}

// Narrow weights with many rows: the AMX narrow kernel's row tiles (16 rows,
// blocks of 1 tile for bf16 A and 2 for fp32 A, a last tile of M mod 16 rows
// under its own tile configuration, thread shares of 32 rows) and its fp32 A
// chunks (8 K steps of 32; K = 600 is two and a tail), on every path (the
// others run the dot-product kernel over the same shapes). The emulated legs
// (aarch64: no AMX) leave out K = 600: for the dot-product kernel, steps of
// 2·lanes (8 to 128) and their tails, 33 and 257 already cross it.
TEST_P(GemmTest, NarrowRowBlocks) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(26);
  const std::vector<size_t> ks = testing::Emulated() ? std::vector<size_t>{33, 257} : std::vector<size_t>{33, 257, 600};
  for (size_t m : {15, 16, 17, 31, 48, 63, 64, 65, 80, 129, 200}) {
    for (size_t n : {1, 10, 16}) {
      for (size_t k : ks) {
        GemmCase g = Case(m, n, k);
        RandomDtypesAndEpilogue(g, rng, kActivations);
        // bf16 weights 3 times in 4: the AMX narrow kernel takes only those.
        if (!g.w_bf16) g.w_bf16 = rng.below(2);
        RunAndCheck(g, rng, rng.below(3));
      }
    }
  }
}

// Data aimed at the edges of the bf16 rounding (Bf16OutputIsTheRoundedFp32Output).
// Rows by (r + M) % 4 (a single row is of the second kind): integers in
// ±[1, 15]; the same × 2^-70; A[r][0] = 2^64 and the rest integers × 2^-60;
// integers with a NaN at k = 1 (its payload in the half bf16 drops; left out
// for quantized weights, whose kernels quantize A from M = 8). Column blocks
// (16 columns, 4 when N <= 16) by block % 3: integers; integers × 2^-70;
// W[0][j] = 2^63 · u(1.99, 1.9999) over integers. So integer rows × integer
// columns sum to integers past 2^8 (a tie when the 9th significant bit is the
// last one set; the same × 2^-70 for tiny rows), tiny × tiny are fp32
// subnormals (integers × 2^-140), row 2 × column 2 lands within 2^-8 of
// FLT_MAX (past bf16's halfway point to 2^128 it rounds to Inf) and rows 3
// are NaN.
float EdgeInteger(testing::Rng& rng) {
  return static_cast<float>(1 + rng.below(15)) * (rng.below(2) ? 1.f : -1.f);
}
float EdgeA(size_t r, size_t m, size_t k, bool quant, testing::Rng& rng) {
  const float i = EdgeInteger(rng);
  switch ((r + m) % 4) {
    case 1: return std::ldexp(i, -70);
    case 2: return k == 0 ? std::ldexp(1.f, 64) : std::ldexp(i, -60);
    case 3: {
      if (k != 1 || quant) return i;
      const uint32_t bits = (rng.below(2) ? 0xFFC00000u : 0x7FC00000u) | static_cast<uint32_t>(1 + rng.below(0x7FFF));
      float nan;
      std::memcpy(&nan, &bits, 4);
      return nan;
    }
    default: return i;
  }
}
size_t EdgeColumnClass(size_t j, size_t n) { return j / (n <= 16 ? 4 : 16) % 3; }
float EdgeW(size_t k, size_t j, size_t n, testing::Rng& rng) {
  const float i = EdgeInteger(rng);
  switch (EdgeColumnClass(j, n)) {
    case 1: return std::ldexp(i, -70);
    case 2: return k == 0 ? std::ldexp(rng.uniform(1.99f, 1.9999f), 63) : i;
    default: return i;
  }
}

// A bf16 C holds, bit for bit, the fp32 C of the same call rounded by the
// reference f32_to_bf16, on every path and kernel record: the epilogue runs in
// fp32 whatever C is, so only the final rounding differs (one instruction on
// the paths with BF16: ToBf16Bits<true> behind the plan's native_bf16). The
// data (EdgeA, EdgeW) reach ties, subnormals, finite values rounding to Inf
// and NaNs, in whole vectors (the instruction) and mixed with normal lanes (its
// guard's fallback); the shapes every record of the path: M = 1 (the GEMV,
// the weight-only quantized kernel), N <= 16 (dot-product columns, AMX
// narrow), M >= 8 with int8 / int4 (VNNI, SDOT), bf16 weights (AMX, BFMMLA),
// K past a K block (partial sums, then the store); epilogues: the plain store,
// bias (with subnormal and NaN entries) + GELU, alpha + beta + residual +
// clamp (scaling integers down to subnormals) and a gate/up pair. Again under MXCSR DAZ/FTZ or FPCR FZ/DN: the
// arithmetic honours them in both calls alike, the rounding must not. (The
// engine functors' store: epilogue_functor_test.)
TEST_P(GemmTest, Bf16OutputIsTheRoundedFp32Output) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(27);
  struct Shape {
    size_t m, n, k;
  };
  const std::vector<Shape> shapes =
      testing::Emulated() ? std::vector<Shape>{{1, 50, 37}, {13, 67, 40}, {9, 13, 33}}
                          : std::vector<Shape>{{1, 100, 64}, {13, 97, 40}, {9, 13, 33}, {37, 150, 700}};
  const WeightType types[] = {WeightType::kF32, WeightType::kBf16, WeightType::kInt8, WeightType::kInt4};
  for (const bool flush : {false, true}) {
    for (WeightType t : types) {
      const bool quant = t == WeightType::kInt8 || t == WeightType::kInt4;
      for (const Shape& sh : shapes) {
        for (int variant = 0; variant < 4; ++variant) {
          const bool gate_up = variant == 3;
          const size_t m = sh.m, n = sh.n, k = sh.k, wn = gate_up ? 2 * n : n, ldc = n + 3;
          std::vector<float> a(m * k), w(k * wn), bias(n), residual(m * n), c_old(m * ldc);
          for (size_t r = 0; r < m; ++r) {
            for (size_t kk = 0; kk < k; ++kk) a[r * k + kk] = EdgeA(r, m, kk, quant, rng);
          }
          for (size_t kk = 0; kk < k; ++kk) {
            for (size_t j = 0; j < wn; ++j) w[kk * wn + j] = EdgeW(kk, j % n, n, rng);
          }
          for (size_t j = 0; j < n; ++j) {  // by column class: integers, subnormals, any; one NaN
            const size_t cls = EdgeColumnClass(j, n);
            bias[j] = cls == 0 ? EdgeInteger(rng) : cls == 1 ? rng.uniform(-1.f, 1.f) * 1e-39f : rng.uniform();
          }
          bias[n / 2] = std::numeric_limits<float>::quiet_NaN();
          // Exact in bf16 (both Cs start from the same values), and scaled
          // with alpha and beta below into the subnormals.
          for (float& x : residual) x = std::ldexp(EdgeInteger(rng), -138);
          for (float& x : c_old) x = EdgeInteger(rng);
          Epilogue ep;
          if (variant == 1) ep = Epilogue().with_bias(bias.data()).with(Activation::kGeluErf);
          if (variant == 2) {
            ep = Epilogue().with_scale(std::ldexp(1.f, -136)).with_beta(std::ldexp(1.f, -140))
                     .with_residual(residual.data(), n).with_clamp(-3.397e38f, 3.397e38f);
          }
          if (gate_up) ep = Epilogue().with(Activation::kSwiGlu);
          PackedWeights pw;
          const Status packed =
              gate_up ? pack_weights_gate_up(weights_kn(w.data(), k, n, wn), weights_kn(w.data() + n, k, n, wn), t, &pw)
                      : pack_weights(weights_kn(w.data(), k, n), t, &pw);
          ASSERT_EQ(packed, Status::kOk) << last_error();
          SCOPED_TRACE(std::string(weight_type_name(t)) + " weights, " + panel_kind_name(pw.layout().kind) +
                       " panels, M=" + std::to_string(m) + " N=" + std::to_string(n) + " K=" + std::to_string(k) +
                       " epilogue " + std::to_string(variant) + (flush ? ", flush modes" : ""));
          std::vector<float> c32(c_old);
          std::vector<bf16> c16(m * ldc);
          for (size_t i = 0; i < c16.size(); ++i) c16[i] = variant == 2 ? f32_to_bf16(c_old[i]) : bf16{testing::kPoisonBf16};
          if (variant != 2) std::fill(c32.begin(), c32.end(), testing::PoisonF32());
          Status s32, s16;
          {
            std::optional<testing::ScopedFlushModes> modes;
            if (flush) modes.emplace();
            s32 = gemm(matrix<const float>(a.data(), m, k), pw, matrix(c32.data(), m, n, ldc), ep);
            s16 = gemm(matrix<const float>(a.data(), m, k), pw, matrix(c16.data(), m, n, ldc), ep);
          }
          ASSERT_EQ(s32, Status::kOk) << last_error();
          ASSERT_EQ(s16, Status::kOk) << last_error();
          testing::Bf16Edges edges;
          for (size_t i = 0; i < m; ++i) {
            for (size_t j = 0; j < ldc; ++j) {
              const size_t at = i * ldc + j;
              // Past N: untouched (C_old, or the poison).
              const uint16_t want = j < n ? f32_to_bf16(c32[at]).bits : variant == 2 ? f32_to_bf16(c_old[at]).bits
                                                                                    : testing::kPoisonBf16;
              ASSERT_EQ(c16[at].bits, want) << "C[" << i << "][" << j << "], fp32 C 0x" << std::hex
                                            << testing::Bits(c32[at]);
              if (j < n) edges.add(c32[at]);
            }
          }
          // The plain store of fp32 and bf16 weights reaches every edge (no
          // subnormals under FTZ, nor from BFMMLA and AMX, which flush their
          // products' subnormals; bf16's copy of W[0][j] keeps 8 bits, so its
          // row 2 × column 2 is bf16's max or Inf already in fp32).
          const bool flushes = flush || pw.layout().kind == PanelKind::kArmBfmmla || pw.layout().kind == PanelKind::kAmx;
          if (variant == 0 && !quant && m >= 4 && n >= 48) {
            EXPECT_GT(edges.ties, 0u) << edges.describe();
            EXPECT_GT(edges.nans, 0u) << edges.describe();
            if (!flushes) {
              EXPECT_GT(edges.subnormals, 0u) << edges.describe();
            }
            if (t == WeightType::kF32) {
              EXPECT_GT(edges.to_inf, 0u) << edges.describe();
            }
          }
        }
      }
    }
  }
}

TILEKIT_INSTANTIATE_PATHS(GemmTest);

}  // namespace
}  // namespace tilekit

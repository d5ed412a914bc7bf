// The batch-reduce GEMM on Arm BFMMLA (arch/arm_bf16_brgemm.h) against an fp64
// reference, on every path: the BF16 paths compute, the others refuse.
// arm_bf16_brgemm is a building block of arch/, not an entry point of
// tilekit.h; arch/ includes nothing above cpu/, so the test includes it
// directly and links tilekit::kernels for the rest.
#include "harness.h"
#include "tilekit/arch/arm_bf16_brgemm.h"

namespace tilekit {
namespace {

class ArmBrgemmTest : public testing::PathTest {
 protected:
  static bool HasBf16Path() { return GetParam() == Isa::kNeonBf16 || GetParam() == Isa::kSveBf16; }
};

// B as the caller would have it: one bf16 panel of nr columns packed from a
// K × nr fp32 matrix (already rounded, so the reference sees what the kernel
// does).
struct Term {
  std::vector<bf16> a;
  std::vector<float> a_f32, w;
  PackedWeights packed;
};

TEST_P(ArmBrgemmTest, MatchesFp64Reference) {
  if (!HasBf16Path()) GTEST_SKIP() << "no BF16 on this path (see RefusedWithoutBf16)";
  TILEKIT_SEED_TRACE();
  testing::Rng rng(40);
  const size_t nr = active_panel_layout(WeightType::kBf16).nr;
  // k: below, at and past a k-block (4) and past the A chunk (256).
  for (size_t rows : {1, 2, 3, 7, 8, 9, 16, 17}) {
    for (size_t k : {1, 3, 4, 5, 33, 300}) {
      for (size_t count : {1, 3}) {
        const size_t lda = k + 3, ldc = nr + 5;
        std::vector<Term> terms(count);
        std::vector<Bf16BrgemmTerm> batch(count);
        for (size_t i = 0; i < count; ++i) {
          Term& t = terms[i];
          t.a_f32.resize(rows * lda);
          t.w.resize(k * nr);
          rng.fill(t.a_f32.data(), t.a_f32.size());
          rng.fill(t.w.data(), t.w.size());
          for (float& x : t.a_f32) x = bf16_to_f32(f32_to_bf16(x));
          for (float& x : t.w) x = bf16_to_f32(f32_to_bf16(x));
          for (float x : t.a_f32) t.a.push_back(f32_to_bf16(x));
          ASSERT_EQ(pack_weights(weights_kn(t.w.data(), k, nr), WeightType::kBf16, &t.packed), Status::kOk);
          ASSERT_EQ(t.packed.layout().kind, PanelKind::kArmBfmmla);
          batch[i] = Bf16BrgemmTerm{t.a.data(), lda, reinterpret_cast<const bf16*>(t.packed.panel(0))};
        }
        // One row more than C has and ldc > nr: both must stay as they were.
        std::vector<float> c((rows + 1) * ldc);
        rng.fill(c.data(), c.size());
        const std::vector<float> c0 = c;
        ASSERT_EQ(arm_bf16_brgemm(batch.data(), count, rows, k, c.data(), ldc), Status::kOk) << last_error();
        // BFMMLA sums round to odd (within 2u); count·k products plus C.
        const double u2 = 2 * testing::kF32Eps, n = static_cast<double>(count * k + 2);
        const double gamma = n * u2 / (1 - n * u2);
        for (size_t r = 0; r <= rows; ++r) {
          for (size_t j = 0; j < ldc; ++j) {
            const size_t at = r * ldc + j;
            if (r == rows || j >= nr) {
              ASSERT_EQ(c[at], c0[at]) << "wrote outside C at " << r << "," << j;
              continue;
            }
            double want = c0[at], mag = std::fabs(c0[at]);
            for (const Term& t : terms) {
              for (size_t kk = 0; kk < k; ++kk) {
                const double p = static_cast<double>(t.a_f32[r * lda + kk]) * t.w[kk * nr + j];
                want += p;
                mag += std::fabs(p);
              }
            }
            ASSERT_TRUE(testing::WithinBound(std::fabs(c[at] - want), gamma * mag + 1e-30, "C"))
                << "rows=" << rows << " k=" << k << " count=" << count << " at " << r << "," << j;
          }
        }
      }
    }
  }
}

TEST_P(ArmBrgemmTest, BadInputIsReportedAndOutputUntouched) {
  if (!HasBf16Path()) GTEST_SKIP() << "no BF16 on this path (see RefusedWithoutBf16)";
  const size_t nr = active_panel_layout(WeightType::kBf16).nr, k = 8, rows = 3;
  std::vector<float> w(k * nr, 0.5f), c(rows * nr, 42.f);
  std::vector<bf16> a(rows * k, f32_to_bf16(1.f));
  PackedWeights pw;
  ASSERT_EQ(pack_weights(weights_kn(w.data(), k, nr), WeightType::kBf16, &pw), Status::kOk);
  const bf16* b = reinterpret_cast<const bf16*>(pw.panel(0));
  auto expect = [&](Bf16BrgemmTerm t, size_t ldc, Status want, const char* needle) {
    EXPECT_EQ(arm_bf16_brgemm(&t, 1, rows, k, c.data(), ldc), want) << last_error();
    EXPECT_NE(std::string(last_error()).find(needle), std::string::npos) << last_error();
    for (float v : c) ASSERT_EQ(v, 42.f) << "output touched after: " << needle;
  };
  expect({nullptr, k, b}, nr, Status::kNullPointer, "A is null");
  expect({a.data(), k, nullptr}, nr, Status::kNullPointer, "B is null");
  expect({a.data(), k - 1, b}, nr, Status::kBadLeadingDim, "lda=7");
  expect({a.data(), k, b}, nr - 1, Status::kBadLeadingDim, "ldc=");
  expect({reinterpret_cast<const bf16*>(c.data()), k, b}, nr, Status::kAliasing, "A overlaps C");
  EXPECT_EQ(arm_bf16_brgemm(nullptr, 1, rows, k, c.data(), nr), Status::kNullPointer);
  // Eight products of 1 and 0.5 per element: 42 + 4.
  const Bf16BrgemmTerm t{a.data(), k, b};
  ASSERT_EQ(arm_bf16_brgemm(&t, 1, rows, k, c.data(), nr), Status::kOk) << last_error();
  for (float v : c) EXPECT_EQ(v, 46.f);
}

// Where there is no BF16 (the neon path of a cortex-a72, scalar) the call is
// refused by name, not run into an illegal instruction.
TEST_P(ArmBrgemmTest, RefusedWithoutBf16) {
  if (HasBf16Path()) GTEST_SKIP() << "this path has BF16";
  std::vector<bf16> a(4);
  std::vector<uint16_t> b(16);
  std::vector<float> c(64, 1.f);
  const Bf16BrgemmTerm t{a.data(), 4, reinterpret_cast<const bf16*>(b.data())};
  EXPECT_EQ(arm_bf16_brgemm(&t, 1, 1, 4, c.data(), 64), Status::kUnsupported);
  EXPECT_NE(std::string(last_error()).find(isa_name(GetParam())), std::string::npos) << last_error();
  for (float v : c) EXPECT_EQ(v, 1.f);
}

TILEKIT_INSTANTIATE_PATHS(ArmBrgemmTest);

}  // namespace
}  // namespace tilekit

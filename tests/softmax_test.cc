// Row softmax on every path against an fp64 reference: widths from 1 to 4097,
// scale and additive mask with their own leading dimensions, in place,
// -Inf / NaN / +Inf rows, 1 vs 2 threads, bad input.
#include <cmath>
#include <cstring>
#include <limits>
#include <tuple>
#include <vector>

#include "harness.h"
#include "ops_reference.h"

namespace tilekit {
namespace {

using testing::PathTest;

constexpr float kInf = std::numeric_limits<float>::infinity();

// Checks y against softmax(x·scale + mask) in double, within the bound of the
// fp32 arithmetic and hn::Exp (ops_reference.h SoftmaxRowRef).
void CheckRows(const float* x, size_t x_ld, const float* mask, size_t mask_ld, float scale, const float* y, size_t y_ld,
               size_t rows, size_t n) {
  for (size_t r = 0; r < rows; ++r) {
    const testing::SoftmaxRow want = testing::SoftmaxRowRef(x + r * x_ld, mask ? mask + r * mask_ld : nullptr, scale, n);
    ASSERT_FALSE(want.nan_row) << "r=" << r;  // finite data only
    for (size_t i = 0; i < n; ++i) {
      const double got = y[r * y_ld + i];
      if (want.ref[i] == 0) {
        ASSERT_EQ(got, 0.f) << "r=" << r << " i=" << i;  // a masked (-Inf) element
        continue;
      }
      ASSERT_TRUE(testing::WithinBound(std::fabs(got - want.ref[i]), want.bound[i], "softmax"))
          << "r=" << r << " i=" << i << " n=" << n << " ref=" << want.ref[i] << " got=" << got;
    }
  }
}

class SoftmaxTest : public PathTest {};

TEST_P(SoftmaxTest, MatchesReferenceAtEveryWidth) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(1);
  for (size_t n : {1, 2, 3, 7, 15, 16, 17, 63, 64, 65, 127, 4095, 4096, 4097}) {
    SCOPED_TRACE(::testing::Message() << "n=" << n);
    const size_t rows = n > 1000 ? 2 : 5, x_ld = n + 3, m_ld = n + 1, y_ld = n + 5;
    std::vector<float> x(rows * x_ld), mask(rows * m_ld), y(rows * y_ld, testing::PoisonF32());
    rng.fill(x.data(), x.size(), -8, 8);
    rng.fill(mask.data(), mask.size(), -4, 4);
    for (size_t i = 0; i < mask.size(); i += 5) mask[i] = -kInf;  // masked positions
    mask[0] = 0;                                                  // keep each row partly unmasked
    for (bool with_mask : {false, true}) {
      SoftmaxOptions opt;
      opt.scale = with_mask ? 0.125f : 1.f;
      if (with_mask) opt.mask = matrix<const float>(mask.data(), rows, n, m_ld);
      ASSERT_EQ(softmax(matrix<const float>(x.data(), rows, n, x_ld), matrix(y.data(), rows, n, y_ld), opt),
                Status::kOk)
          << last_error();
      CheckRows(x.data(), x_ld, with_mask ? mask.data() : nullptr, m_ld, opt.scale, y.data(), y_ld, rows, n);
      for (size_t r = 0; r < rows; ++r)
        for (size_t i = n; i < y_ld && r * y_ld + i < y.size(); ++i) {
          uint32_t bits;
          std::memcpy(&bits, &y[r * y_ld + i], 4);
          ASSERT_EQ(bits, 0x7FA5A5A5u) << "wrote past the row, r=" << r << " i=" << i;
        }
    }
  }
}

TEST_P(SoftmaxTest, RandomShapesInPlace) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(2);
  const int count = testing::Emulated() ? 8 : 40;
  for (int k = 0; k < count; ++k) {
    const size_t rows = 1 + rng.below(8), n = 1 + rng.below(700), ld = n + rng.below(9);
    std::vector<float> x(rows * ld), mask(rows * n);
    rng.fill(x.data(), x.size(), -20, 20);
    rng.fill(mask.data(), mask.size(), -2, 2);
    const std::vector<float> x0 = x;
    SoftmaxOptions opt;
    opt.scale = rng.uniform(0.05f, 2.f);
    if (rng.below(2)) opt.mask = matrix<const float>(mask.data(), rows, n);
    ASSERT_EQ(softmax(matrix<const float>(x.data(), rows, n, ld), matrix(x.data(), rows, n, ld), opt), Status::kOk)
        << last_error();
    CheckRows(x0.data(), ld, opt.mask.data, n, opt.scale, x.data(), ld, rows, n);
  }
}

TEST_P(SoftmaxTest, InfAndNanRows) {
  const size_t n = 37;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> x(6 * n, 0.25f), mask(6 * n, 0.f), y(6 * n);
  for (size_t i = 0; i < n; ++i) mask[0 * n + i] = -kInf;  // row 0: fully masked
  x[1 * n + 20] = nan;                                     // row 1: NaN input
  mask[2 * n + 3] = nan;                                   // row 2: NaN in the mask
  x[3 * n + 36] = kInf;                                    // row 3: +Inf
  for (size_t i = 0; i < n; ++i) mask[4 * n + i] = -kInf;  // row 4: masked, and a NaN
  x[4 * n + 5] = nan;
  for (size_t i = 1; i < n; ++i) mask[5 * n + i] = -kInf;  // row 5: one survivor
  SoftmaxOptions opt;
  opt.mask = matrix<const float>(mask.data(), 6, n);
  ASSERT_EQ(softmax(matrix<const float>(x.data(), 6, n), matrix(y.data(), 6, n), opt), Status::kOk);
  for (size_t i = 0; i < n; ++i) {
    EXPECT_EQ(y[0 * n + i], 0.f) << i;
    EXPECT_TRUE(std::isnan(y[1 * n + i])) << i;
    EXPECT_TRUE(std::isnan(y[2 * n + i])) << i;
    EXPECT_TRUE(std::isnan(y[3 * n + i])) << i;
    EXPECT_TRUE(std::isnan(y[4 * n + i])) << i;
    EXPECT_EQ(y[5 * n + i], i == 0 ? 1.f : 0.f) << i;
  }
}

// Regression (ops_fuzz): a fully masked row is zeros at every width and in
// place. On EMU128, the scalar path of clang builds, hn::MaxOfLanes starts
// from -FLT_MAX, so the row's max came out finite and the row NaN.
TEST_P(SoftmaxTest, FullyMaskedRowsAreZeroAtEveryWidth) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(4);
  for (size_t n : testing::TailSizes(65)) {
    const size_t rows = 3, ld = n + 2;
    std::vector<float> x(rows * ld), mask(rows * ld);
    rng.fill(x.data(), x.size());
    rng.fill(mask.data(), mask.size());
    for (size_t i = 0; i < n; ++i) mask[ld + i] = -kInf;  // row 1
    SoftmaxOptions opt;
    opt.scale = -0.5f;
    opt.mask = matrix<const float>(mask.data(), rows, n, ld);
    const std::vector<float> x0 = x;
    ASSERT_EQ(softmax(matrix<const float>(x.data(), rows, n, ld), matrix(x.data(), rows, n, ld), opt), Status::kOk);
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(x[ld + i], 0.f) << "n=" << n << " i=" << i;
    CheckRows(x0.data(), ld, mask.data(), ld, opt.scale, x.data(), ld, rows, n);  // rows 0 and 2 too
  }
}

TEST_P(SoftmaxTest, TwoThreadsMatchOneBitwise) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(3);
  const size_t rows = 64, n = 4096;
  std::vector<float> x(rows * n), mask(rows * n), y1(rows * n), y2(rows * n);
  rng.fill(x.data(), x.size(), -10, 10);
  rng.fill(mask.data(), mask.size(), -1, 1);
  ThreadPool one(1), two(2);
  for (auto [pool, y] : {std::make_tuple(&one, &y1), std::make_tuple(&two, &y2)}) {
    SoftmaxOptions opt;
    opt.scale = 0.0883883f;
    opt.mask = matrix<const float>(mask.data(), rows, n);
    opt.executor = pool;
    ASSERT_EQ(softmax(matrix<const float>(x.data(), rows, n), matrix(y->data(), rows, n), opt), Status::kOk);
  }
  EXPECT_EQ(std::memcmp(y1.data(), y2.data(), y1.size() * 4), 0);
}

TEST_P(SoftmaxTest, BadInputIsReportedAndOutputUntouched) {
  const size_t n = 8;
  std::vector<float> x(4 * n, 1.f), y(4 * n, 7.f), mask(4 * n, 0.f);
  const auto xv = matrix<const float>(x.data(), 4, n);
  const auto yv = matrix(y.data(), 4, n);
  EXPECT_TRUE(testing::FailsWith(softmax(matrix<const float>(nullptr, 4, n), yv), Status::kNullPointer, "x is null"));
  EXPECT_TRUE(testing::FailsWith(softmax(xv, matrix(y.data(), 4, n - 1)), Status::kShapeMismatch, "y 4 x 7"));
  EXPECT_TRUE(testing::FailsWith(softmax(matrix<const float>(x.data(), 4, 0), matrix(y.data(), 4, 0)),
                                 Status::kInvalidArgument, "width 0"));
  EXPECT_TRUE(
      testing::FailsWith(softmax(matrix<const float>(x.data(), 4, n, n - 1), yv), Status::kBadLeadingDim, "ld=7"));
  SoftmaxOptions opt;
  opt.scale = NAN;
  EXPECT_TRUE(testing::FailsWith(softmax(xv, yv, opt), Status::kInvalidArgument, "scale"));
  opt.scale = 1;
  opt.mask = matrix<const float>(mask.data(), 3, n);
  EXPECT_TRUE(testing::FailsWith(softmax(xv, yv, opt), Status::kShapeMismatch, "mask 3 x 8"));
  opt.mask = matrix<const float>(y.data(), 4, n);
  EXPECT_TRUE(testing::FailsWith(softmax(xv, yv, opt), Status::kAliasing, "mask overlaps y"));
  EXPECT_TRUE(testing::FailsWith(softmax(matrix<const float>(x.data(), 3, n), matrix(x.data() + 1, 3, n)),
                                 Status::kAliasing, "overlaps x"));
  // Column blocks of one buffer: x the left 8 columns, y the right 8; disjoint.
  std::vector<float> xy(4 * 2 * n, 0.5f);
  EXPECT_EQ(softmax(matrix<const float>(xy.data(), 4, n, 2 * n), matrix(xy.data() + n, 4, n, 2 * n)), Status::kOk)
      << last_error();
  EXPECT_EQ(xy[n], 1.f / n);
  EXPECT_TRUE(
      testing::FailsWith(softmax(matrix<const float>(xy.data(), 4, n, 2 * n), matrix(xy.data() + n - 1, 4, n, 2 * n)),
                         Status::kAliasing, "overlaps x"));
  for (float v : y) EXPECT_EQ(v, 7.f);
  for (float v : x) EXPECT_EQ(v, 1.f);
}

TILEKIT_INSTANTIATE_PATHS(SoftmaxTest);

}  // namespace
}  // namespace tilekit

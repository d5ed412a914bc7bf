// add, mul, scale and softcap over rows on every path against an fp64
// reference: widths over every tail, leading dimensions larger than the rows,
// in place over either input, poisoned outputs and padding, 1 vs 2 threads
// bitwise, bad input.
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "harness.h"

namespace tilekit {
namespace {

using testing::PathTest;

enum class Kind { kAdd, kMul, kScale, kSoftcap };
constexpr Kind kKinds[] = {Kind::kAdd, Kind::kMul, Kind::kScale, Kind::kSoftcap};
const char* KindName(Kind k) {
  switch (k) {
    case Kind::kAdd: return "add";
    case Kind::kMul: return "mul";
    case Kind::kScale: return "scale";
    case Kind::kSoftcap: return "softcap";
  }
  return "?";
}
bool Binary(Kind k) { return k == Kind::kAdd || k == Kind::kMul; }

// The scalar of scale (s) and softcap (c): not a power of two, so scale rounds.
constexpr float kValue = 2.7f;

Status RunOp(Kind k, MatrixView<const float> a, MatrixView<const float> b, MatrixView<float> y, Executor* ex = nullptr) {
  ElementwiseOptions o;
  o.executor = ex;
  switch (k) {
    case Kind::kAdd: return add(a, b, y, o);
    case Kind::kMul: return mul(a, b, y, o);
    case Kind::kScale: return scale(a, kValue, y, o);
    case Kind::kSoftcap: return softcap(a, kValue, y, o);
  }
  return Status::kInvalidArgument;
}

// The fp64 value and its bound. add, mul, scale: one fp32 rounding of the
// exact result, |err| <= u·|y|. softcap: x / c rounded (u relative, so the
// tanh argument moves by <= u·|x/c| and tanh, of slope <= 1, by as much),
// Tanh within 4 ULP (<= 8u·|t|: an ULP is at most 2u of the value), the
// product by c rounded (u·|y|): |err| <= u·|x| + 10u·|y|.
void Reference(Kind k, double a, double b, double* want, double* bound) {
  const double u = testing::kF32Eps;
  switch (k) {
    case Kind::kAdd: *want = a + b, *bound = u * std::fabs(*want); break;
    case Kind::kMul: *want = a * b, *bound = u * std::fabs(*want); break;
    case Kind::kScale: *want = kValue * a, *bound = u * std::fabs(*want); break;
    case Kind::kSoftcap:
      *want = kValue * std::tanh(a / kValue);
      *bound = u * std::fabs(a) + 10 * u * std::fabs(*want);
      break;
  }
}

class ElementwiseTest : public PathTest {};

// Rows of every tail width with padded leading dimensions; the padding and the
// row after the last must keep their poison.
TEST_P(ElementwiseTest, MatchesReferenceAtEveryWidth) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(1);
  for (Kind k : kKinds) {
    for (size_t n : testing::TailSizes(testing::Emulated() ? 300 : 1025)) {
      SCOPED_TRACE(::testing::Message() << KindName(k) << " n=" << n);
      const size_t rows = 1 + rng.below(5), a_ld = n + rng.below(4), b_ld = n + rng.below(4), y_ld = n + 1 + rng.below(4);
      std::vector<float> a(rows * a_ld), b(rows * b_ld), y((rows + 1) * y_ld, testing::PoisonF32());
      // Past tanh's linear part for softcap (|x| up to 4c).
      rng.fill(a.data(), a.size(), -11, 11);
      rng.fill(b.data(), b.size(), -3, 3);
      ASSERT_EQ(RunOp(k, matrix<const float>(a.data(), rows, n, a_ld), matrix<const float>(b.data(), rows, n, b_ld),
                    matrix(y.data(), rows, n, y_ld)),
                Status::kOk)
          << last_error();
      for (size_t r = 0; r < rows + 1; ++r) {
        for (size_t i = 0; i < y_ld; ++i) {
          const float got = y[r * y_ld + i];
          if (r == rows || i >= n) {
            ASSERT_EQ(testing::Bits(got), testing::Bits(testing::PoisonF32())) << "wrote padding at " << r << "," << i;
            continue;
          }
          double want = 0, bound = 0;
          Reference(k, a[r * a_ld + i], b[r * b_ld + i], &want, &bound);
          ASSERT_TRUE(testing::WithinBound(std::fabs(got - want), bound + 1e-37, KindName(k)))
              << "r=" << r << " i=" << i << " got " << got << " want " << want;
        }
      }
    }
  }
}

// y over a (and over b, for the binary ops) gives what a separate y gives.
TEST_P(ElementwiseTest, InPlaceMatchesOutOfPlace) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(2);
  const size_t rows = 7, n = 100, ld = 111;
  for (Kind k : kKinds) {
    std::vector<float> a(rows * ld), b(rows * ld), y(rows * ld, testing::PoisonF32());
    rng.fill(a.data(), a.size());
    rng.fill(b.data(), b.size());
    const auto av = matrix<const float>(a.data(), rows, n, ld), bv = matrix<const float>(b.data(), rows, n, ld);
    ASSERT_EQ(RunOp(k, av, bv, matrix(y.data(), rows, n, ld)), Status::kOk) << last_error();
    for (bool over_b : {false, true}) {
      if (over_b && !Binary(k)) continue;
      std::vector<float> in = over_b ? b : a;
      const auto iv = matrix<const float>(in.data(), rows, n, ld);
      ASSERT_EQ(RunOp(k, over_b ? av : iv, over_b ? iv : bv, matrix(in.data(), rows, n, ld)), Status::kOk)
          << last_error();
      for (size_t r = 0; r < rows; ++r) {
        ASSERT_EQ(std::memcmp(in.data() + r * ld, y.data() + r * ld, n * 4), 0) << KindName(k) << " row " << r;
      }
    }
  }
}

TEST_P(ElementwiseTest, TwoThreadsMatchOneBitwise) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(3);
  // Large enough to split (threading/split.h: >= 10 µs per task).
  const size_t rows = testing::Emulated() ? 64 : 256, n = 4096;
  std::vector<float> a(rows * n), b(rows * n);
  rng.fill(a.data(), a.size());
  rng.fill(b.data(), b.size());
  ThreadPool one(1), two(2);
  for (Kind k : kKinds) {
    std::vector<float> y1(rows * n, testing::PoisonF32()), y2(rows * n, testing::PoisonF32());
    const auto av = matrix<const float>(a.data(), rows, n), bv = matrix<const float>(b.data(), rows, n);
    ASSERT_EQ(RunOp(k, av, bv, matrix(y1.data(), rows, n), &one), Status::kOk);
    ASSERT_EQ(RunOp(k, av, bv, matrix(y2.data(), rows, n), &two), Status::kOk);
    EXPECT_EQ(std::memcmp(y1.data(), y2.data(), y1.size() * 4), 0) << KindName(k);
    for (float v : y2) ASSERT_FALSE(std::isnan(v)) << KindName(k);
  }
}

// NaN and Inf in, where each op's arithmetic says: NaN stays NaN; softcap
// takes ±Inf to ±c (tanh's limit).
TEST_P(ElementwiseTest, NonFiniteInputs) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::nanf("");
  std::vector<float> a = {nan, inf, -inf, 1.f}, b = {1.f, 1.f, 1.f, nan}, y(4);
  const auto av = matrix<const float>(a.data(), 1, 4), bv = matrix<const float>(b.data(), 1, 4);
  ASSERT_EQ(add(av, bv, matrix(y.data(), 1, 4)), Status::kOk);
  EXPECT_TRUE(std::isnan(y[0]) && y[1] == inf && y[2] == -inf && std::isnan(y[3]));
  ASSERT_EQ(softcap(av, 3.f, matrix(y.data(), 1, 4)), Status::kOk);
  EXPECT_TRUE(std::isnan(y[0]));
  EXPECT_EQ(y[1], 3.f);
  EXPECT_EQ(y[2], -3.f);
}

TEST(ElementwiseErrors, RefusedWithAReason) {
  std::vector<float> a(64, 1.f), b(64, 1.f), y(64, testing::PoisonF32());
  const auto av = matrix<const float>(a.data(), 4, 8), bv = matrix<const float>(b.data(), 4, 8);
  EXPECT_TRUE(testing::FailsWith(add(av, matrix<const float>(b.data(), 4, 7), matrix(y.data(), 4, 8)),
                                 Status::kShapeMismatch, "b is 4 x 7"));
  EXPECT_TRUE(testing::FailsWith(mul(av, bv, matrix(y.data(), 3, 8)), Status::kShapeMismatch, "a is 4 x 8"));
  EXPECT_TRUE(testing::FailsWith(add(av, bv, MatrixView<float>{y.data(), 4, 8, 7}), Status::kBadLeadingDim, "ld"));
  EXPECT_TRUE(testing::FailsWith(add(av, bv, MatrixView<float>{nullptr, 4, 8, 8}), Status::kNullPointer, "y"));
  // y one element past a: overlapping without being a.
  EXPECT_TRUE(testing::FailsWith(add(matrix<const float>(y.data(), 4, 8), bv, matrix(y.data() + 1, 4, 8)),
                                 Status::kAliasing, "y overlaps a"));
  EXPECT_TRUE(testing::FailsWith(scale(av, std::nanf(""), matrix(y.data(), 4, 8)), Status::kInvalidArgument,
                                 "not finite"));
  EXPECT_TRUE(testing::FailsWith(softcap(av, 0.f, matrix(y.data(), 4, 8)), Status::kInvalidArgument, "> 0"));
  EXPECT_TRUE(testing::FailsWith(softcap(av, -1.f, matrix(y.data(), 4, 8)), Status::kInvalidArgument, "> 0"));
  for (float v : y) EXPECT_EQ(testing::Bits(v), testing::Bits(testing::PoisonF32()));  // refused: nothing written
  // Empty views are fine and write nothing.
  EXPECT_EQ(add(matrix<const float>(a.data(), 0, 8), matrix<const float>(b.data(), 0, 8), matrix(y.data(), 0, 8)),
            Status::kOk);
}

TILEKIT_INSTANTIATE_PATHS(ElementwiseTest);

}  // namespace
}  // namespace tilekit

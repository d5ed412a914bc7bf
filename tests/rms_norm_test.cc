// RMSNorm and the fused residual add on every path: fp64 references on random
// data, fp32 and bf16 rows, strided rows and heads, in place, the two bf16
// rounding orders bit for bit, NaN/Inf, 1 vs 2 threads, bad input.
#include <cmath>
#include <cstring>
#include <optional>
#include <vector>

#include "bf16_store_checks.h"
#include "harness.h"
#include "ops_reference.h"

namespace tilekit {
namespace {

using testing::kBf16Eps;
using testing::kF32Eps;
using testing::PathTest;

using testing::Bits;
using testing::FromF32;
using testing::Poison;
using testing::ToF32;

// A tokens × heads × dim operand in a buffer with gaps (strides larger than
// the rows), so writes outside the rows show up as changed poison.
template <typename T>
struct Operand {
  std::vector<T> buf;
  HeadsView<T> view;
  Operand(size_t tokens, size_t heads, size_t dim, size_t head_gap, size_t token_gap) {
    const size_t head_stride = dim + head_gap, token_stride = heads * head_stride + token_gap;
    buf.assign(tokens * token_stride + 1, Poison<T>());
    view = heads_view(buf.data(), tokens, heads, dim, token_stride, head_stride);
  }
  T& at(size_t t, size_t h, size_t i) { return view.data[t * view.token_stride + h * view.head_stride + i]; }
  void fill(testing::Rng& rng, float lo = -2.f, float hi = 2.f) {
    for (size_t t = 0; t < view.tokens; ++t)
      for (size_t h = 0; h < view.heads; ++h)
        for (size_t i = 0; i < view.head_dim; ++i) at(t, h, i) = FromF32<T>(rng.uniform(lo, hi));
  }
  // Every element outside the rows still holds the poison.
  ::testing::AssertionResult GapsUntouched() const {
    std::vector<bool> in_row(buf.size(), false);
    for (size_t t = 0; t < view.tokens; ++t)
      for (size_t h = 0; h < view.heads; ++h)
        for (size_t i = 0; i < view.head_dim; ++i) in_row[t * view.token_stride + h * view.head_stride + i] = true;
    for (size_t j = 0; j < buf.size(); ++j) {
      if (!in_row[j] && Bits(buf[j]) != Bits(Poison<T>()))
        return ::testing::AssertionFailure() << "wrote outside the rows at " << j;
    }
    return ::testing::AssertionSuccess();
  }
};

struct Case {
  size_t tokens, heads, dim, head_gap, token_gap;
};

// Checks y (and the residual) against an fp64 reference, within the bound of
// the fp32 arithmetic and the bf16 roundings (ops_reference.h RmsNormRelBound).
template <typename X, typename Y>
void CheckNorm(const Case& c, const RmsNormOptions& opt, bool add, uint64_t stream) {
  SCOPED_TRACE(::testing::Message() << "tokens=" << c.tokens << " heads=" << c.heads << " dim=" << c.dim
                                    << " gaps=" << c.head_gap << "," << c.token_gap << " add=" << add << " x="
                                    << (kIsBf16<X> ? "bf16" : "f32") << " y=" << (kIsBf16<Y> ? "bf16" : "f32"));
  testing::Rng rng(stream);
  Operand<X> x(c.tokens, c.heads, c.dim, c.head_gap, c.token_gap),
      res(c.tokens, c.heads, c.dim, c.token_gap, c.head_gap);
  Operand<Y> y(c.tokens, c.heads, c.dim, c.token_gap, c.head_gap);
  x.fill(rng);
  res.fill(rng);
  std::vector<float> w(c.dim);
  rng.fill(w.data(), w.size(), -1.5f, 1.5f);
  const Operand<X> res_before = res;
  const Status s =
      add ? add_rms_norm(x.view, res.view, w.data(), y.view, opt) : rms_norm(x.view, w.data(), y.view, opt);
  ASSERT_EQ(s, Status::kOk) << last_error();
  ASSERT_TRUE(y.GapsUntouched());
  ASSERT_TRUE(res.GapsUntouched());
  const double rel = testing::RmsNormRelBound(c.dim, kIsBf16<X>, kIsBf16<Y>, opt.rounding);
  std::vector<double> h(c.dim);
  for (size_t t = 0; t < c.tokens; ++t) {
    for (size_t hd = 0; hd < c.heads; ++hd) {
      double ss = 0;
      for (size_t i = 0; i < c.dim; ++i) {
        if (add) {
          // h is stored in x's dtype: fp32 addition, then rounding, bit for bit.
          const X hi = FromF32<X>(ToF32(x.at(t, hd, i)) + ToF32(res_before.buf[&res.at(t, hd, i) - res.buf.data()]));
          ASSERT_EQ(Bits(res.at(t, hd, i)), Bits(hi)) << "residual t=" << t << " h=" << hd << " i=" << i;
          h[i] = ToF32(hi);
        } else {
          h[i] = ToF32(x.at(t, hd, i));
        }
        ss += h[i] * h[i];
      }
      const double r = 1.0 / std::sqrt(ss / c.dim + opt.eps);
      for (size_t i = 0; i < c.dim; ++i) {
        const double ref = h[i] * r * (opt.weight_offset ? 1.0 + w[i] : w[i]);
        const double got = ToF32(y.at(t, hd, i));
        ASSERT_TRUE(testing::WithinBound(std::fabs(got - ref), rel * std::fabs(ref) + 1e-30, "y"))
            << "t=" << t << " h=" << hd << " i=" << i << " ref=" << ref << " got=" << got;
      }
    }
  }
}

class RmsNormTest : public PathTest {};

std::vector<size_t> Widths() { return {1, 2, 3, 7, 15, 16, 17, 63, 64, 65, 127, 4095, 4096, 4097}; }

TEST_P(RmsNormTest, MatchesReferenceAtEveryWidth) {
  TILEKIT_SEED_TRACE();
  uint64_t stream = 100;
  for (size_t d : Widths()) {
    const size_t rows = d > 1000 ? 2 : 5;
    for (bool add : {false, true}) {
      CheckNorm<float, float>({rows, 1, d, 0, 3}, {}, add, ++stream);
      CheckNorm<bf16, bf16>({rows, 1, d, 0, 0}, {}, add, ++stream);
      CheckNorm<float, bf16>({rows, 1, d, 0, 1}, {}, add, ++stream);
      CheckNorm<bf16, float>({rows, 1, d, 0, 5}, {}, add, ++stream);
    }
  }
}

TEST_P(RmsNormTest, OptionsAndRandomShapes) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(7);
  // Emulated SVE is slow: fewer random shapes on the qemu legs.
  const int n = testing::Emulated() ? 6 : 30;
  for (int k = 0; k < n; ++k) {
    const Case c{1 + rng.below(6), 1 + rng.below(5), 1 + rng.below(300), rng.below(3) * rng.below(9), rng.below(20)};
    RmsNormOptions opt;
    opt.eps = rng.below(2) ? 1e-5f : 0.5f;
    opt.weight_offset = rng.below(2);
    opt.rounding = rng.below(2) ? Bf16Rounding::kBeforeWeight : Bf16Rounding::kAfterWeight;
    const bool add = rng.below(2);
    CheckNorm<float, float>(c, opt, add, 1000 + k);
    CheckNorm<bf16, bf16>(c, opt, add, 2000 + k);
    CheckNorm<bf16, float>(c, opt, add, 3000 + k);
  }
}

// QK-norm: the heads of a slice of a fused QKV row ([tokens][q | k | v]) with
// one weight of head_dim for every head; the rest of the row stays as it was.
TEST_P(RmsNormTest, PerHeadSliceOfFusedQkvInPlace) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(8);
  const size_t tokens = 5, q_heads = 4, kv_heads = 2, hd = 64, row = (q_heads + 2 * kv_heads) * hd;
  std::vector<bf16> qkv(tokens * row);
  for (auto& v : qkv) v = f32_to_bf16(rng.uniform(-3, 3));
  const std::vector<bf16> before = qkv;
  std::vector<float> w(hd);
  rng.fill(w.data(), hd);
  HeadsView<bf16> k = heads_view(qkv.data() + q_heads * hd, tokens, kv_heads, hd, row);
  RmsNormOptions opt;
  opt.rounding = Bf16Rounding::kBeforeWeight;
  ASSERT_EQ(rms_norm(k, w.data(), k, opt), Status::kOk) << last_error();
  for (size_t t = 0; t < tokens; ++t) {
    for (size_t j = 0; j < row; ++j) {
      const size_t i = t * row + j;
      const bool in_k = j >= q_heads * hd && j < (q_heads + kv_heads) * hd;
      if (!in_k) {
        ASSERT_EQ(qkv[i].bits, before[i].bits) << "t=" << t << " j=" << j;
        continue;
      }
      const size_t h0 = t * row + q_heads * hd + (j - q_heads * hd) / hd * hd;
      double ss = 0;
      for (size_t e = 0; e < hd; ++e) ss += std::pow(bf16_to_f32(before[h0 + e]), 2);
      const double ref = bf16_to_f32(before[i]) / std::sqrt(ss / hd + 1e-6) * w[(j - q_heads * hd) % hd];
      const double rel = testing::RmsNormRelBound(hd, true, true, Bf16Rounding::kBeforeWeight);
      ASSERT_TRUE(testing::WithinBound(std::fabs(bf16_to_f32(qkv[i]) - ref), rel * std::fabs(ref) + 1e-30))
          << t << " " << j;
    }
  }
}

// Slices of one buffer whose rows interleave (K in, V out of a fused QKV row)
// share no element: allowed. Shifted by one element into K's gap they do.
TEST_P(RmsNormTest, InterleavedSlicesOfOneBuffer) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(12);
  const size_t tokens = 4, hd = 16, row = 4 * hd;  // [q | q | k | v]
  std::vector<float> qkv(tokens * row), w(hd);
  rng.fill(qkv.data(), qkv.size());
  rng.fill(w.data(), hd);
  const std::vector<float> before = qkv;
  const auto k = heads_view<const float>(qkv.data() + 2 * hd, tokens, 1, hd, row);
  const auto v = heads_view(qkv.data() + 3 * hd, tokens, 1, hd, row);
  ASSERT_EQ(rms_norm(k, w.data(), v), Status::kOk) << last_error();
  for (size_t t = 0; t < tokens; ++t) {
    double ss = 0;
    for (size_t i = 0; i < hd; ++i) ss += std::pow(before[t * row + 2 * hd + i], 2);
    for (size_t i = 0; i < hd; ++i) {
      const double ref = before[t * row + 2 * hd + i] / std::sqrt(ss / hd + 1e-6) * w[i];
      ASSERT_TRUE(testing::WithinBound(std::fabs(qkv[t * row + 3 * hd + i] - ref),
                                       ((hd + 2) * kF32Eps / 2 + 4 * kF32Eps) * std::fabs(ref) + 1e-30));
      ASSERT_EQ(qkv[t * row + i], before[t * row + i]);  // q untouched
    }
  }
  EXPECT_TRUE(testing::FailsWith(rms_norm(k, w.data(), heads_view(qkv.data() + 3 * hd - 1, tokens, 1, hd, row)),
                                 Status::kAliasing, "y overlaps x"));
}

// The two rounding orders bit for bit against scalar code written in the
// order HF's LlamaRMSNorm and GemmaRMSNorm run. Inputs are small multiples of
// 1/4, so the sum of squares is exact in fp32 in any order and r is the same
// fp32 value here and in the kernel; what is tested is the rounding of y.
TEST_P(RmsNormTest, Bf16RoundingOrdersMatchHfBitForBit) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(9);
  const size_t rows = 3, d = 257;
  std::vector<bf16> x(rows * d), y(rows * d);
  for (auto& v : x) v = f32_to_bf16(static_cast<float>(static_cast<int>(rng.below(33)) - 16) / 4);
  std::vector<float> w(d);
  for (auto& v : w) v = bf16_to_f32(f32_to_bf16(rng.uniform(-2, 2)));  // HF keeps bf16 weights
  for (Bf16Rounding mode : {Bf16Rounding::kBeforeWeight, Bf16Rounding::kAfterWeight}) {
    for (bool offset : {false, true}) {
      RmsNormOptions opt;
      opt.rounding = mode;
      opt.weight_offset = offset;
      opt.eps = 1e-6f;
      ASSERT_EQ(
          rms_norm(rows_of(matrix<const bf16>(x.data(), rows, d)), w.data(), rows_of(matrix(y.data(), rows, d)), opt),
          Status::kOk);
      for (size_t r = 0; r < rows; ++r) {
        float ss = 0;
        for (size_t i = 0; i < d; ++i) ss += bf16_to_f32(x[r * d + i]) * bf16_to_f32(x[r * d + i]);
        const float inv = 1.0f / std::sqrt(ss / static_cast<float>(d) + opt.eps);
        for (size_t i = 0; i < d; ++i) {
          const float wi = offset ? 1.0f + w[i] : w[i];
          float n = bf16_to_f32(x[r * d + i]) * inv;
          if (mode == Bf16Rounding::kBeforeWeight) n = bf16_to_f32(f32_to_bf16(n));  // .to(input_dtype)
          ASSERT_EQ(y[r * d + i].bits, f32_to_bf16(n * wi).bits)
              << "mode=" << static_cast<int>(mode) << " offset=" << offset << " r=" << r << " i=" << i;
        }
      }
    }
  }
}

// On the paths with a bf16 conversion instruction, rms_norm and add_rms_norm
// store the bits the bit rounding of the path below stores (same Highway code
// otherwise). The weights come in runs of 16 of one scale, so whole vectors of
// output are normal, subnormal (|w| ~ 1e-40), near the top of the range where
// rounding overflows to Inf (|w| ~ 3.4e38), or NaN, and some vectors mix them.
TEST(RmsNormBf16Store, ConversionInstructionMatchesBitRounding) {
  TILEKIT_SEED_TRACE();
  const auto pairs = testing::Bf16StorePairs();
  if (pairs.empty()) GTEST_SKIP() << "no path with a bf16 conversion instruction (and the one below it) here";
  testing::Rng rng(12);
  static const float kScales[] = {1.f, 1e-40f, 3.39e38f, NAN, 1e-3f};
  for (size_t d : {1, 7, 16, 17, 33, 100, 257, 1025}) {
    const size_t rows = 3;
    std::vector<float> w(d);
    for (size_t i = 0; i < d; ++i) w[i] = rng.uniform(1.f, 1.9f) * kScales[(i / 16 + i % 3) % 5];
    std::vector<float> xf(rows * d);
    rng.fill(xf.data(), xf.size(), -2.f, 2.f);
    std::vector<bf16> xb(rows * d), res0(rows * d);
    for (size_t i = 0; i < xf.size(); ++i) {
      xb[i] = f32_to_bf16(xf[i]);
      res0[i] = f32_to_bf16(rng.uniform(-2.f, 2.f));
    }
    for (const auto& [native, portable] : pairs) {
      // [0]: the path with the instruction, [1]: the one below.
      std::vector<bf16> y[2], yb[2], res[2];
      for (int k = 0; k < 2; ++k) {
        testing::ScopedPath path(k == 0 ? native : portable);
        y[k].assign(rows * d, bf16{testing::kPoisonBf16});
        yb[k].assign(rows * d, bf16{testing::kPoisonBf16});
        res[k] = res0;
        ASSERT_EQ(rms_norm(rows_of(matrix<const float>(xf.data(), rows, d)), w.data(),
                           rows_of(matrix(y[k].data(), rows, d))),
                  Status::kOk);
        ASSERT_EQ(add_rms_norm(rows_of(matrix<const bf16>(xb.data(), rows, d)), rows_of(matrix(res[k].data(), rows, d)),
                               w.data(), rows_of(matrix(yb[k].data(), rows, d))),
                  Status::kOk);
      }
      size_t subnormal = 0, inf = 0;
      for (size_t i = 0; i < rows * d; ++i) {
        ASSERT_EQ(y[0][i].bits, y[1][i].bits) << isa_name(native) << " rms_norm d=" << d << " i=" << i;
        ASSERT_EQ(yb[0][i].bits, yb[1][i].bits) << isa_name(native) << " add_rms_norm d=" << d << " i=" << i;
        ASSERT_EQ(res[0][i].bits, res[1][i].bits) << isa_name(native) << " residual d=" << d << " i=" << i;
        subnormal += (y[0][i].bits & 0x7F80) == 0 && (y[0][i].bits & 0x7F) != 0;
        inf += (y[0][i].bits & 0x7FFF) == 0x7F80;
      }
      if (d >= 100) {  // the classes the weights aim at were reached
        EXPECT_GT(subnormal, 0u) << "d=" << d;
        EXPECT_GT(inf, 0u) << "d=" << d;
      }
    }
  }
}

// The residual of add_rms_norm is rounded once, by the instruction where the
// path has it, and then summed: bit for bit the rounding of the path below, for
// x + residual in blocks of 16 that are normal, subnormal (scaled by 1e-39),
// past bf16's max (3.39e38 + 3.39e38 is Inf, 3.39e38 - 1e36 rounds to Inf or
// bf16's max) or NaN. y is fp32 in HF's order (x·r rounded to bf16 before the
// weight, the instruction's round trip), so the residual is the only bf16
// store. Without and with MXCSR DAZ/FTZ or FPCR FZ/DN, which the sums honour
// on both paths alike and the rounding must not.
TEST(RmsNormBf16Store, ResidualRoundedOnceMatchesBitRounding) {
  TILEKIT_SEED_TRACE();
  const auto pairs = testing::Bf16StorePairs();
  if (pairs.empty()) GTEST_SKIP() << "no path with a bf16 conversion instruction (and the one below it) here";
  testing::Rng rng(13);
  static const float kScales[] = {1.f, 1e-39f, 3.39e38f, NAN};
  for (size_t d : {1, 17, 64, 257}) {
    const size_t rows = 4;
    std::vector<float> w(d, 1.f);
    std::vector<bf16> x(rows * d), res0(rows * d);
    for (size_t i = 0; i < rows * d; ++i) {
      const float scale = kScales[(i % d / 16 + i / d) % 4];
      const bool overflow = scale > 1e38f;
      x[i] = f32_to_bf16(rng.uniform(1.f, 1.9f) * scale);
      res0[i] = f32_to_bf16((overflow && rng.below(2) ? -1e-2f : 1.f) * rng.uniform(1.f, 1.9f) * scale);
    }
    RmsNormOptions opt;
    opt.rounding = Bf16Rounding::kBeforeWeight;
    for (const bool flush : {false, true}) {
      for (const auto& [native, portable] : pairs) {
        std::vector<bf16> res[2];
        std::vector<float> y[2];
        for (int k = 0; k < 2; ++k) {
          testing::ScopedPath path(k == 0 ? native : portable);
          res[k] = res0;
          y[k].assign(rows * d, testing::PoisonF32());
          std::optional<testing::ScopedFlushModes> modes;
          if (flush) modes.emplace();
          ASSERT_EQ(add_rms_norm(rows_of(matrix<const bf16>(x.data(), rows, d)), rows_of(matrix(res[k].data(), rows, d)),
                                 w.data(), rows_of(matrix(y[k].data(), rows, d)), opt),
                    Status::kOk);
        }
        for (size_t i = 0; i < rows * d; ++i) {
          ASSERT_EQ(res[0][i].bits, res[1][i].bits) << isa_name(native) << " residual d=" << d << " i=" << i
                                                   << " flush=" << flush;
          ASSERT_EQ(testing::Bits(y[0][i]), testing::Bits(y[1][i])) << isa_name(native) << " y d=" << d << " i=" << i;
        }
      }
    }
  }
}

// A NaN poisons its own row only; an Inf makes r = 0 (so 0 elsewhere, NaN at
// the Inf), as in IEEE arithmetic and PyTorch.
TEST_P(RmsNormTest, NanAndInfStayInTheirRow) {
  const size_t d = 33;
  std::vector<float> x(3 * d, 0.5f), y(3 * d), w(d, 1.f);
  x[5] = NAN;
  x[d + 7] = INFINITY;
  RmsNormOptions opt;
  opt.eps = 0;  // so the finite row normalises to exactly 1
  ASSERT_EQ(rms_norm(rows_of(matrix<const float>(x.data(), 3, d)), w.data(), rows_of(matrix(y.data(), 3, d)), opt),
            Status::kOk);
  for (size_t i = 0; i < d; ++i) {
    EXPECT_TRUE(std::isnan(y[i])) << i;
    if (i == 7) {
      EXPECT_TRUE(std::isnan(y[d + i]));
    } else {
      EXPECT_EQ(y[d + i], 0.f) << i;
    }
    EXPECT_EQ(y[2 * d + i], 1.f) << i;
  }
}

TEST_P(RmsNormTest, TwoThreadsMatchOneBitwise) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(10);
  const size_t rows = 64, d = 4096;
  std::vector<float> x(rows * d), w(d), res(rows * d);
  rng.fill(x.data(), x.size());
  rng.fill(res.data(), res.size());
  rng.fill(w.data(), d);
  ThreadPool one(1), two(2);
  for (bool add : {false, true}) {
    std::vector<bf16> y1(rows * d), y2(rows * d);
    std::vector<float> r1 = res, r2 = res;
    for (auto [pool, y, r] : {std::make_tuple(&one, &y1, &r1), std::make_tuple(&two, &y2, &r2)}) {
      RmsNormOptions opt;
      opt.executor = pool;
      const auto xv = rows_of(matrix<const float>(x.data(), rows, d));
      const auto yv = rows_of(matrix(y->data(), rows, d));
      const Status s = add ? add_rms_norm(xv, rows_of(matrix(r->data(), rows, d)), w.data(), yv, opt)
                           : rms_norm(xv, w.data(), yv, opt);
      ASSERT_EQ(s, Status::kOk) << last_error();
    }
    EXPECT_EQ(std::memcmp(y1.data(), y2.data(), y1.size() * 2), 0);
    EXPECT_EQ(std::memcmp(r1.data(), r2.data(), r1.size() * 4), 0);
  }
}

TEST_P(RmsNormTest, InPlaceMatchesOutOfPlace) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(11);
  const size_t rows = 7, d = 100, ld = 111;
  std::vector<float> x(rows * ld), y(rows * ld), w(d), res(rows * ld), res2;
  rng.fill(x.data(), x.size());
  rng.fill(res.data(), res.size());
  rng.fill(w.data(), d);
  res2 = res;
  const auto xv = rows_of(matrix(x.data(), rows, d, ld));
  ASSERT_EQ(
      add_rms_norm(xv, rows_of(matrix(res.data(), rows, d, ld)), w.data(), rows_of(matrix(y.data(), rows, d, ld))),
      Status::kOk);
  ASSERT_EQ(add_rms_norm(xv, rows_of(matrix(res2.data(), rows, d, ld)), w.data(), xv), Status::kOk) << last_error();
  for (size_t r = 0; r < rows; ++r)
    for (size_t i = 0; i < d; ++i) ASSERT_EQ(x[r * ld + i], y[r * ld + i]) << r << " " << i;
}

TEST_P(RmsNormTest, BadInputIsReportedAndOutputUntouched) {
  const size_t d = 16;
  std::vector<float> x(4 * d, 1.f), y(4 * d, 7.f), w(d, 1.f), res(4 * d, 2.f);
  const auto xv = rows_of(matrix<const float>(x.data(), 4, d));
  const auto yv = rows_of(matrix(y.data(), 4, d));
  const auto rv = rows_of(matrix(res.data(), 4, d));
  EXPECT_TRUE(testing::FailsWith(rms_norm(xv, nullptr, yv), Status::kNullPointer, "weight is null"));
  EXPECT_TRUE(testing::FailsWith(rms_norm(HeadsView<const float>{nullptr, 4, 1, d, d, d}, w.data(), yv),
                                 Status::kNullPointer, "x is null"));
  EXPECT_TRUE(testing::FailsWith(
      rms_norm(rows_of(matrix<const float>(x.data(), 4, 0)), w.data(), rows_of(matrix(y.data(), 4, 0))),
      Status::kInvalidArgument, "width 0"));
  EXPECT_TRUE(
      testing::FailsWith(rms_norm(xv, w.data(), rows_of(matrix(y.data(), 4, d - 1))), Status::kShapeMismatch, "y is"));
  RmsNormOptions bad_eps;
  bad_eps.eps = -1e-6f;
  EXPECT_TRUE(testing::FailsWith(rms_norm(xv, w.data(), yv, bad_eps), Status::kInvalidArgument, "eps"));
  bad_eps.eps = NAN;
  EXPECT_TRUE(testing::FailsWith(rms_norm(xv, w.data(), yv, bad_eps), Status::kInvalidArgument, "eps"));
  EXPECT_TRUE(testing::FailsWith(rms_norm(rows_of(matrix<const float>(x.data(), 4, d, d - 1)), w.data(), yv),
                                 Status::kBadLeadingDim, "token_stride=15"));
  // Partial overlap: y is x shifted by one element.
  EXPECT_TRUE(testing::FailsWith(
      rms_norm(rows_of(matrix<const float>(x.data(), 3, d)), w.data(), rows_of(matrix(x.data() + 1, 3, d))),
      Status::kAliasing, "overlaps"));
  EXPECT_TRUE(testing::FailsWith(add_rms_norm(xv, rv, w.data(), rv), Status::kAliasing, "residual overlaps"));
  EXPECT_TRUE(testing::FailsWith(add_rms_norm(xv, rows_of(matrix(x.data(), 4, d)), w.data(), yv), Status::kAliasing,
                                 "residual overlaps"));
  EXPECT_TRUE(testing::FailsWith(add_rms_norm(xv, rows_of(matrix(res.data(), 3, d)), w.data(), yv),
                                 Status::kShapeMismatch, "residual is"));
  // Heads that run into the next token.
  EXPECT_TRUE(testing::FailsWith(rms_norm(HeadsView<const float>{x.data(), 2, 2, d, d, d}, w.data(),
                                          HeadsView<float>{y.data(), 2, 2, d, 2 * d, d}),
                                 Status::kBadLeadingDim, "token_stride"));
  for (float v : y) EXPECT_EQ(v, 7.f);
  for (float v : res) EXPECT_EQ(v, 2.f);
  for (float v : x) EXPECT_EQ(v, 1.f);
  // Empty: nothing to do.
  EXPECT_EQ(rms_norm(rows_of(matrix<const float>(nullptr, 0, d)), nullptr, rows_of(matrix<float>(nullptr, 0, d))),
            Status::kOk);
}

TILEKIT_INSTANTIATE_PATHS(RmsNormTest);

}  // namespace
}  // namespace tilekit

// fp32 <-> bf16 array conversion on every path, against the scalar reference
// (itself checked against hand-computed bit patterns).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "bf16_store_checks.h"
#include "harness.h"

namespace tilekit {
namespace {

using testing::PathTest;

uint32_t Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float FromBits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

TEST(Bf16Scalar, RoundsToNearestEven) {
  EXPECT_EQ(f32_to_bf16(1.0f).bits, 0x3F80);
  EXPECT_EQ(f32_to_bf16(FromBits(0x3F808000)).bits, 0x3F80);  // tie, even stays
  EXPECT_EQ(f32_to_bf16(FromBits(0x3F818000)).bits, 0x3F82);  // tie, odd rounds up
  EXPECT_EQ(f32_to_bf16(FromBits(0x3F808001)).bits, 0x3F81);  // above half
  EXPECT_EQ(f32_to_bf16(FromBits(0x7F7FFFFF)).bits, 0x7F80);  // FLT_MAX rounds to Inf
  EXPECT_EQ(f32_to_bf16(INFINITY).bits, 0x7F80);
  EXPECT_EQ(f32_to_bf16(-INFINITY).bits, 0xFF80);
  EXPECT_EQ(f32_to_bf16(FromBits(0x00000001)).bits, 0x0000);  // smallest denormal
  EXPECT_EQ(f32_to_bf16(FromBits(0x00018000)).bits, 0x0002);  // denormal tie to even
  EXPECT_EQ(f32_to_bf16(-0.0f).bits, 0x8000);
  const uint16_t nan = f32_to_bf16(FromBits(0x7F800001)).bits;  // payload only in low bits
  EXPECT_EQ(nan & 0x7F80, 0x7F80);
  EXPECT_NE(nan & 0x007F, 0) << "NaN must not become Inf";
  EXPECT_EQ(f32_to_bf16(FromBits(0xFFC00000)).bits, 0xFFC0);
}

class ConvertTest : public PathTest {};

// Edge values mixed into random data, at every tail length.
std::vector<float> Inputs(size_t n, testing::Rng& rng) {
  static const uint32_t kSpecial[] = {0x7F800000, 0xFF800000, 0x7FC00000, 0x7F800001, 0xFFFFFFFF,
                                      0x00000001, 0x00018000, 0x807FFFFF, 0x7F7FFFFF, 0x3F808000,
                                      0x3F818000, 0x80000000};
  std::vector<float> in(n);
  for (size_t i = 0; i < n; ++i) {
    in[i] = rng.below(4) == 0 ? FromBits(kSpecial[rng.below(sizeof(kSpecial) / 4)])
                              : FromBits(static_cast<uint32_t>(rng.engine()()));
  }
  return in;
}

TEST_P(ConvertTest, F32ToBf16MatchesScalarBitExactly) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(1);
  for (size_t n : testing::TailSizes(1025)) {
    const std::vector<float> in = Inputs(n, rng);
    std::vector<bf16> out(n + 1, bf16{testing::kPoisonBf16});
    ASSERT_EQ(convert_f32_to_bf16(in.data(), out.data(), n), Status::kOk);
    for (size_t i = 0; i < n; ++i) {
      ASSERT_EQ(out[i].bits, f32_to_bf16(in[i]).bits) << "n=" << n << " i=" << i << " in=0x" << std::hex << Bits(in[i]);
    }
    EXPECT_EQ(out[n].bits, testing::kPoisonBf16) << "wrote past the end, n=" << n;
  }
}

// Every sign and exponent (subnormals, ±0, ±Inf and NaNs included) times a set
// of mantissas: the rounding edges of the 16 dropped bits (ties 0x8000 with the
// kept bit odd and even, one below and above them), the ends of the mantissa
// (the largest finite rounds to Inf; quiet and signalling NaN payloads, with
// and without bits in the kept half), then random ones. Values of one exponent
// sit together, so most vectors hold one class: on the paths with the
// conversion instruction those run the instruction, and the vectors holding
// subnormals the bit rounding it must agree with; random placement
// (`scattered`) mixes them within vectors too. The scalar f32_to_bf16 is the
// reference (checked by hand in Bf16Scalar above). The test below converts
// 8.4 M values natively, 131 K emulated.
std::vector<float> EveryExponent(size_t per_exponent, testing::Rng& rng) {
  static const uint32_t kEdges[] = {0x000000, 0x000001, 0x007FFF, 0x008000, 0x008001, 0x00FFFF, 0x010000,
                                    0x017FFF, 0x018000, 0x018001, 0x3F8000, 0x3FFFFF, 0x400000, 0x400001,
                                    0x408000, 0x7F7FFF, 0x7F8000, 0x7FFFFE, 0x7FFFFF, 0x7E8000, 0x7F0000};
  std::vector<float> in(512 * per_exponent);
  for (uint32_t se = 0; se < 512; ++se) {  // sign and exponent: the top 9 bits
    for (size_t j = 0; j < per_exponent; ++j) {
      const uint32_t mantissa = j < sizeof(kEdges) / 4 ? kEdges[j] : static_cast<uint32_t>(rng.engine()()) & 0x7FFFFF;
      in[se * per_exponent + j] = FromBits(se << 23 | mantissa);
    }
  }
  return in;
}

// How many of out[0, n) differ from the scalar rounding of in; the first few
// reported.
size_t Mismatches(const std::vector<float>& in, const std::vector<bf16>& out, const char* what) {
  size_t mismatches = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    const uint16_t want = f32_to_bf16(in[i]).bits;
    if (out[i].bits == want) continue;
    if (++mismatches <= 5) {
      ADD_FAILURE() << what << " in=0x" << std::hex << Bits(in[i]) << " got 0x" << out[i].bits << " want 0x" << want;
    }
  }
  return mismatches;
}

TEST_P(ConvertTest, F32ToBf16IsBitExactForEveryExponent) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(4);
  std::vector<float> in = EveryExponent(testing::Emulated() ? 256 : 16384, rng);
  const size_t n = in.size();
  for (const bool scattered : {false, true}) {
    if (scattered) std::shuffle(in.begin(), in.end(), rng.engine());
    std::vector<bf16> out(n + 1, bf16{testing::kPoisonBf16});
    ASSERT_EQ(convert_f32_to_bf16(in.data(), out.data(), n), Status::kOk);
    const size_t mismatches = Mismatches(in, out, scattered ? "scattered" : "by exponent");
    EXPECT_EQ(mismatches, 0u) << "scattered=" << scattered << " of " << n;
    EXPECT_EQ(out[n].bits, testing::kPoisonBf16) << "wrote past the end";
  }
}

using testing::ScopedFlushModes;

TEST_P(ConvertTest, F32ToBf16IgnoresFlushToZeroAndDefaultNanModes) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(5);
  const std::vector<float> in = EveryExponent(testing::Emulated() ? 64 : 1024, rng);
  std::vector<bf16> out(in.size(), bf16{testing::kPoisonBf16});
  Status s;
  {
    ScopedFlushModes modes;
    s = convert_f32_to_bf16(in.data(), out.data(), in.size());
  }
  ASSERT_EQ(s, Status::kOk);
  EXPECT_EQ(Mismatches(in, out, "flush modes"), 0u);
}

TEST_P(ConvertTest, Bf16ToF32IsExactAndRoundTrips) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(2);
  for (size_t n : testing::TailSizes(1025)) {
    std::vector<bf16> in(n);
    for (auto& h : in) h.bits = static_cast<uint16_t>(rng.engine()());
    std::vector<float> out(n + 1, testing::PoisonF32());
    ASSERT_EQ(convert_bf16_to_f32(in.data(), out.data(), n), Status::kOk);
    for (size_t i = 0; i < n; ++i) {
      ASSERT_EQ(Bits(out[i]), static_cast<uint32_t>(in[i].bits) << 16) << "n=" << n << " i=" << i;
    }
    EXPECT_EQ(Bits(out[n]), Bits(testing::PoisonF32()));
    std::vector<bf16> back(n);
    ASSERT_EQ(convert_f32_to_bf16(out.data(), back.data(), n), Status::kOk);
    for (size_t i = 0; i < n; ++i) {
      const bool nan = (in[i].bits & 0x7FFF) > 0x7F80;
      if (nan) {
        EXPECT_GT(back[i].bits & 0x7FFF, 0x7F80) << "NaN must stay NaN";
      } else {
        EXPECT_EQ(back[i].bits, in[i].bits);
      }
    }
  }
}

TEST_P(ConvertTest, RoundingErrorIsWithinHalfUlp) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(3);
  std::vector<float> in(777);
  rng.fill(in.data(), in.size(), -1e3f, 1e3f);
  std::vector<bf16> out(in.size());
  ASSERT_EQ(convert_f32_to_bf16(in.data(), out.data(), in.size()), Status::kOk);
  for (size_t i = 0; i < in.size(); ++i) {
    const double err = std::fabs(static_cast<double>(bf16_to_f32(out[i])) - in[i]);
    ASSERT_TRUE(testing::WithinBound(err, std::fabs(in[i]) * testing::kBf16Eps, "bf16 rounding")) << i;
  }
}

TEST_P(ConvertTest, BadInputIsReportedAndOutputUntouched) {
  float in[4] = {1, 2, 3, 4};
  bf16 out[4] = {{7}, {7}, {7}, {7}};
  EXPECT_EQ(convert_f32_to_bf16(nullptr, out, 4), Status::kNullPointer);
  EXPECT_NE(std::string(last_error()).find("in is null"), std::string::npos) << last_error();
  EXPECT_EQ(convert_f32_to_bf16(in, nullptr, 4), Status::kNullPointer);
  EXPECT_EQ(convert_f32_to_bf16(nullptr, nullptr, 0), Status::kOk);  // empty is fine
  // out overlapping in: the conversion would read what it already wrote.
  EXPECT_EQ(convert_f32_to_bf16(in, reinterpret_cast<bf16*>(in) + 1, 4), Status::kAliasing);
  EXPECT_EQ(convert_f32_to_bf16(in, out, SIZE_MAX / 2), Status::kOverflow);
  for (const bf16& h : out) EXPECT_EQ(h.bits, 7);
  EXPECT_EQ(in[0], 1.f);
}

TILEKIT_INSTANTIATE_PATHS(ConvertTest);

}  // namespace
}  // namespace tilekit

// simd/bf16_dot-inl.h, the bf16 pair dot product, on every path: the vector
// and broadcast forms against an fp64 sum with the bound the header states
// (random pairs, bf16 denormals beside large values, a random accumulator,
// lane counts around the vector, NaN), and on x86 the instruction against the
// fallback bit for bit where no denormal is involved. This file is its own
// per-target code (found on the include path, like epilogue_functors.cc).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "bf16_dot_test.cc"
#include "tilekit/cpu/compile_targets.h"  // first: Highway's foreach_target over this file
#include "tilekit/simd/bf16_dot-inl.h"

#include <algorithm>
#include <vector>

HWY_BEFORE_NAMESPACE();
namespace tilekit {
namespace dot_test {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
using tilekit::detail::HWY_NAMESPACE::Bf16Dot;
using tilekit::detail::HWY_NAMESPACE::Bf16DotBroadcast;
using tilekit::detail::HWY_NAMESPACE::LoadBf16Pairs;

// out[i] = acc[i] + Σ_s a[s][i] · b[s][i] (broadcast: · b[s]) over `lanes`
// lanes and `steps` steps; a step's row is 2 · lanes bf16 (b: 2 per step when
// broadcast). A last partial vector runs on a copy padded with zeros.
template <bool kNative, bool kBroadcast>
void DotT(const uint16_t* a, const uint16_t* b, const float* acc, size_t lanes, size_t steps, float* out) {
  const hn::ScalableTag<float> df;
  const hn::RebindToUnsigned<decltype(df)> du;
  const size_t L = hn::Lanes(df);
  std::vector<uint16_t> pa(2 * L * steps), pb(2 * L * steps);
  std::vector<float> pacc(L), pout(L);
  for (size_t i = 0; i < lanes; i += L) {
    const size_t n = std::min(L, lanes - i);
    const uint16_t* ra = a + 2 * i;
    const uint16_t* rb = b + (kBroadcast ? 0 : 2 * i);
    size_t lda = 2 * lanes, ldb = kBroadcast ? 2 : 2 * lanes;
    const float* racc = acc + i;
    float* rout = out + i;
    if (n < L) {  // the tail: zero pairs past the lanes
      std::fill(pa.begin(), pa.end(), 0);
      std::fill(pb.begin(), pb.end(), 0);
      std::fill(pacc.begin(), pacc.end(), 0.f);
      for (size_t s = 0; s < steps; ++s) {
        std::copy(ra + s * lda, ra + s * lda + 2 * n, pa.begin() + s * 2 * L);
        if (kBroadcast) {
          std::copy(rb + s * 2, rb + s * 2 + 2, pb.begin() + s * 2);
        } else {
          std::copy(rb + s * ldb, rb + s * ldb + 2 * n, pb.begin() + s * 2 * L);
        }
      }
      std::copy(racc, racc + n, pacc.begin());
      ra = pa.data();
      rb = pb.data();
      lda = 2 * L;
      ldb = kBroadcast ? 2 : 2 * L;
      racc = pacc.data();
      rout = pout.data();
    }
    auto v = hn::LoadU(df, racc);
    for (size_t s = 0; s < steps; ++s) {
      const auto va = LoadBf16Pairs(du, ra + s * lda);
      if (kBroadcast) {
        v = Bf16DotBroadcast<kNative>(df, v, va, rb + s * ldb);
      } else {
        v = Bf16Dot<kNative>(df, v, va, LoadBf16Pairs(du, rb + s * ldb));
      }
    }
    hn::StoreU(v, df, rout);
    if (n < L) std::copy(pout.begin(), pout.begin() + n, out + i);
  }
}

void Dot(const uint16_t* a, const uint16_t* b, const float* acc, size_t lanes, size_t steps, float* out, bool native,
         bool broadcast) {
  if (native) {
    broadcast ? DotT<true, true>(a, b, acc, lanes, steps, out) : DotT<true, false>(a, b, acc, lanes, steps, out);
  } else {
    broadcast ? DotT<false, true>(a, b, acc, lanes, steps, out) : DotT<false, false>(a, b, acc, lanes, steps, out);
  }
}

size_t Lanes() { return hn::Lanes(hn::ScalableTag<float>()); }

}  // namespace HWY_NAMESPACE
}  // namespace dot_test
}  // namespace tilekit
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <cmath>
#include <cstring>

#include "harness.h"
#include "tilekit/cpu/dispatch.h"

namespace tilekit {
namespace dot_test {
HWY_EXPORT(Dot);
HWY_EXPORT(Lanes);

namespace {

using testing::PathTest;
constexpr double kU = 1.0 / (1 << 24);
const double kMinNormal = std::ldexp(1.0, -126);

double Bf16Value(uint16_t bits) { return bf16_to_f32(bf16{bits}); }
bool IsDenormalBf16(uint16_t bits) { return (bits & 0x7F80) == 0 && (bits & 0x7F) != 0; }

// Random bf16 in [-2, 2).
uint16_t RandomBf16(testing::Rng& rng) { return f32_to_bf16(rng.uniform(-2.f, 2.f)).bits; }
uint16_t RandomDenormalBf16(testing::Rng& rng) {
  return static_cast<uint16_t>((rng.below(2) << 15) | (1 + rng.below(0x7F)));
}

struct Problem {
  size_t lanes, steps;
  bool broadcast;
  std::vector<uint16_t> a, b;
  std::vector<float> acc;
};

Problem Make(size_t lanes, size_t steps, bool broadcast, bool specials, testing::Rng& rng) {
  Problem p{lanes, steps, broadcast, {}, {}, {}};
  p.a.resize(2 * lanes * steps);
  p.b.resize(broadcast ? 2 * steps : 2 * lanes * steps);
  for (uint16_t& x : p.a) x = RandomBf16(rng);
  for (uint16_t& x : p.b) x = RandomBf16(rng);
  // specials: one element in 8 of a a bf16 denormal, and one in 8 a large
  // value (2^120 scale) whose partner in b is a denormal, so the flushed
  // products (up to 2^-5) are a visible part of the sum and nothing overflows.
  for (size_t i = 0; specials && i < p.a.size(); ++i) {
    const uint32_t kind = rng.below(8);
    if (kind == 0) p.a[i] = RandomDenormalBf16(rng);
    if (kind == 1 && !broadcast) {
      p.a[i] = f32_to_bf16(std::ldexp(rng.uniform(-2.f, 2.f), 120)).bits;
      p.b[i] = RandomDenormalBf16(rng);
    }
  }
  for (size_t i = 0; specials && broadcast && i < p.b.size(); ++i) {
    if (rng.below(8) == 0) p.b[i] = RandomDenormalBf16(rng);
  }
  p.acc.resize(lanes);
  for (float& x : p.acc) x = rng.uniform(-4.f, 4.f);
  return p;
}

std::vector<float> RunDot(const Problem& p, Isa path, bool native) {
  std::vector<float> out(p.lanes, testing::PoisonF32());
  TILEKIT_DISPATCH_ON(path, Dot)(p.a.data(), p.b.data(), p.acc.data(), p.lanes, p.steps, out.data(), native,
                                 p.broadcast);
  return out;
}

class Bf16DotTest : public PathTest {};

// The bound of the header: 2n roundings per lane of u' (u, or 2u for BFDOT's
// round to odd) on S = |acc| + Σ |a b|, plus the products the native forms
// flush (a denormal operand) and 2n flushed results below 2^-126.
TEST_P(Bf16DotTest, AgainstFp64WithinTheStatedBound) {
  TILEKIT_SEED_TRACE();
  const Isa path = GetParam();
  const bool native = cpu::isa_converts_bf16(path);
  const double u = native && TILEKIT_ARCH_ARM64 ? 2 * kU : kU;
  const size_t L = TILEKIT_DISPATCH_ON(path, Lanes)();
  std::vector<size_t> lane_counts = {1, 3, L - 1, L, L + 1, 2 * L + 3, 67};
  std::vector<size_t> step_counts = {1, 2, 7, 64, 129};
  if (testing::Emulated()) step_counts = {1, 7, 64};
  testing::Rng rng(1);
  for (bool broadcast : {false, true}) {
    for (bool specials : {false, true}) {
      for (size_t lanes : lane_counts) {
        if (lanes == 0) continue;
        for (size_t steps : step_counts) {
          SCOPED_TRACE(::testing::Message() << "lanes=" << lanes << " steps=" << steps << " broadcast=" << broadcast
                                            << " specials=" << specials << " native=" << native);
          const Problem p = Make(lanes, steps, broadcast, specials, rng);
          const std::vector<float> out = RunDot(p, path, native);
          for (size_t i = 0; i < lanes; ++i) {
            double sum = p.acc[i], mag = std::fabs(p.acc[i]), flushed = 0;
            for (size_t s = 0; s < steps; ++s) {
              for (size_t e = 0; e < 2; ++e) {
                const uint16_t ab = p.a[s * 2 * lanes + 2 * i + e];
                const uint16_t bb = broadcast ? p.b[2 * s + e] : p.b[s * 2 * lanes + 2 * i + e];
                const double prod = Bf16Value(ab) * Bf16Value(bb);
                sum += prod;
                mag += std::fabs(prod);
                if (IsDenormalBf16(ab) || IsDenormalBf16(bb)) flushed += std::fabs(prod);
              }
            }
            const double n2 = 2.0 * steps;
            const double bound = n2 * u * mag * (1 + n2 * u) + flushed + n2 * kMinNormal;
            ASSERT_TRUE(testing::WithinBound(std::fabs(out[i] - sum), bound, "bf16 dot"))
                << "lane " << i << " got " << out[i] << " want " << sum;
          }
        }
      }
    }
  }
}

// vdpbf16ps is the fallback's two FMAs (exact products, the same order): the
// same bits on normal values. BFDOT rounds to odd, so Arm has the bound only.
TEST_P(Bf16DotTest, NativeMatchesTheFallbackBitwiseOnX86) {
  TILEKIT_SEED_TRACE();
  const Isa path = GetParam();
  if (!cpu::isa_converts_bf16(path) || !TILEKIT_ARCH_X86) GTEST_SKIP() << "no x86 dot instruction on this path";
  testing::Rng rng(2);
  for (bool broadcast : {false, true}) {
    for (size_t lanes : {5, 16, 48, 53}) {
      const Problem p = Make(lanes, 96, broadcast, false, rng);
      const std::vector<float> native = RunDot(p, path, true), fallback = RunDot(p, path, false);
      EXPECT_EQ(std::memcmp(native.data(), fallback.data(), lanes * sizeof(float)), 0)
          << "lanes=" << lanes << " broadcast=" << broadcast;
    }
  }
}

// A NaN in one pair, or Inf times 0, makes that lane NaN and no other.
TEST_P(Bf16DotTest, NaNAndInfTimesZeroReachOnlyTheirLane) {
  TILEKIT_SEED_TRACE();
  const Isa path = GetParam();
  const bool native = cpu::isa_converts_bf16(path);
  const size_t L = TILEKIT_DISPATCH_ON(path, Lanes)();
  testing::Rng rng(3);
  const size_t lanes = L + 3, steps = 9;
  for (int kind = 0; kind < 2; ++kind) {
    for (size_t lane : {size_t{0}, L - 1, L + 2}) {
      Problem p = Make(lanes, steps, false, false, rng);
      const size_t s = rng.below(steps), e = rng.below(2);
      const size_t at = s * 2 * lanes + 2 * lane + e;
      if (kind == 0) {
        p.a[at] = 0x7FC1;  // a quiet NaN with a payload
      } else {
        p.a[at] = 0x7F80;  // +Inf
        p.b[at] = 0x8000;  // −0
      }
      const std::vector<float> out = RunDot(p, path, native);
      for (size_t i = 0; i < lanes; ++i) {
        EXPECT_EQ(std::isnan(out[i]), i == lane) << "kind " << kind << " lane " << i << " of " << lane;
      }
    }
  }
}

TILEKIT_INSTANTIATE_PATHS(Bf16DotTest);

}  // namespace
}  // namespace dot_test
}  // namespace tilekit
#endif  // HWY_ONCE

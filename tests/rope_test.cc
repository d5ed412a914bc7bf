// RoPE on every path: each pairing × full and partial rotary × every scaling,
// fp32 and bf16, Q and K as slices of one fused QKV buffer at scattered
// positions, against a double reference written from HF transformers'
// rope_utils formulas; 1 vs 2 threads; bad input.
#include <cmath>
#include <cstring>
#include <tuple>
#include <vector>

#include "harness.h"
#include "ops_reference.h"

namespace tilekit {
namespace {

using testing::PathTest;

using testing::Bits;
using testing::FromF32;
using testing::ToF32;

struct Shape {
  size_t tokens, q_heads, k_heads, head_dim, rotary_dim;
};

// Q and K slices of a [tokens][q | k | v] buffer; checks every element of it.
template <typename T>
void CheckRope(const RopeConfig& cfg_in, const Shape& sh, uint64_t stream, Executor* executor = nullptr) {
  RopeConfig cfg = cfg_in;
  cfg.head_dim = sh.head_dim;
  cfg.rotary_dim = sh.rotary_dim;
  SCOPED_TRACE(::testing::Message() << "pairing=" << static_cast<int>(cfg.pairing)
                                    << " scaling=" << static_cast<int>(cfg.scaling) << " tokens=" << sh.tokens
                                    << " heads=" << sh.q_heads << "+" << sh.k_heads << " head_dim=" << sh.head_dim
                                    << " rotary=" << sh.rotary_dim << " dtype=" << (kIsBf16<T> ? "bf16" : "f32"));
  testing::Rng rng(stream);
  const size_t max_positions = 300;
  RopeTable table;
  ASSERT_EQ(make_rope_table(cfg, max_positions, &table), Status::kOk) << last_error();
  const size_t row = (sh.q_heads + 2 * sh.k_heads) * sh.head_dim;
  std::vector<T> qkv(sh.tokens * row);
  for (auto& v : qkv) v = FromF32<T>(rng.uniform(-2, 2));
  const std::vector<T> before = qkv;
  std::vector<int32_t> pos(sh.tokens);
  for (auto& p : pos) p = static_cast<int32_t>(rng.below(max_positions));
  pos[0] = static_cast<int32_t>(max_positions - 1);  // the table's last row
  auto q = heads_view(qkv.data(), sh.tokens, sh.q_heads, sh.head_dim, row);
  auto k = heads_view(qkv.data() + sh.q_heads * sh.head_dim, sh.tokens, sh.k_heads, sh.head_dim, row);
  ASSERT_EQ(rope(q, k, pos.data(), table, executor), Status::kOk) << last_error();

  double attention;
  const std::vector<double> inv = testing::RopeReferenceInvFreq(cfg, max_positions, &attention);
  const size_t rot = sh.rotary_dim, half = rot / 2;
  for (size_t t = 0; t < sh.tokens; ++t) {
    for (size_t j = 0; j < row; ++j) {
      const size_t i = t * row + j;
      const size_t head_start = j / sh.head_dim * sh.head_dim, e = j % sh.head_dim;
      const bool rotated = j < (sh.q_heads + sh.k_heads) * sh.head_dim && e < rot;
      if (!rotated) {  // V, and the pass-through part of partial rotary
        ASSERT_EQ(Bits(qkv[i]), Bits(before[i])) << "t=" << t << " j=" << j;
        continue;
      }
      // e's partner and its frequency index under the pairing.
      const bool interleaved = cfg.pairing == RopePairing::kInterleaved;
      const size_t f = interleaved ? e / 2 : e % half;
      const bool first = interleaved ? e % 2 == 0 : e < half;
      const size_t partner = interleaved ? (first ? e + 1 : e - 1) : (first ? e + half : e - half);
      const double angle = pos[t] * inv[f];
      const double c = std::cos(angle) * attention, s = std::sin(angle) * attention;
      const double x = ToF32(before[t * row + head_start + e]), xp = ToF32(before[t * row + head_start + partner]);
      // Table rounding, the products, the sum, bf16's rounding (ops_reference.h).
      const testing::RopeElement want = testing::RopeElementRef(x, xp, c, s, first, kIsBf16<T>);
      ASSERT_TRUE(testing::WithinBound(std::fabs(ToF32(qkv[i]) - want.ref), want.bound))
          << "t=" << t << " j=" << j << " pos=" << pos[t] << " ref=" << want.ref << " got=" << ToF32(qkv[i]);
    }
  }
}

std::vector<RopeConfig> Configs() {
  std::vector<RopeConfig> configs;
  for (RopePairing pairing : {RopePairing::kHalfSplit, RopePairing::kInterleaved}) {
    RopeConfig c;
    c.pairing = pairing;
    c.theta = 10000;
    configs.push_back(c);
    c.theta = 500000;  // Llama 3
    c.scaling = RopeScaling::kLinear;
    c.factor = 4;
    configs.push_back(c);
    c.scaling = RopeScaling::kDynamicNtk;
    c.factor = 2;
    c.original_max_positions = 128;  // the table's 300 positions exceed it: base is scaled
    configs.push_back(c);
    c.scaling = RopeScaling::kLlama3;
    c.factor = 8;
    c.low_freq_factor = 1;
    c.high_freq_factor = 4;
    c.original_max_positions = 64;  // small, so low, medium and high bands all occur at d = 64
    configs.push_back(c);
    c.scaling = RopeScaling::kYarn;
    c.theta = 10000;
    c.factor = 4;
    c.original_max_positions = 256;
    configs.push_back(c);
    c.attention_factor = 1.25;
    c.beta_fast = 16;
    configs.push_back(c);
  }
  return configs;
}

class RopeTest : public PathTest {};

TEST_P(RopeTest, EveryPairingScalingAndPartialRotary) {
  TILEKIT_SEED_TRACE();
  uint64_t stream = 0;
  const std::vector<Shape> shapes = {{5, 4, 2, 64, 64}, {3, 2, 1, 64, 32},   {4, 3, 1, 18, 18},
                                     {2, 1, 1, 80, 34}, {3, 2, 2, 128, 128}, {1, 1, 0, 6, 4}};
  for (const RopeConfig& c : Configs()) {
    for (const Shape& sh : shapes) {
      CheckRope<float>(c, sh, ++stream);
      CheckRope<bf16>(c, sh, ++stream);
    }
  }
}

TEST_P(RopeTest, RandomShapes) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(5);
  const std::vector<RopeConfig> configs = Configs();
  const int n = testing::Emulated() ? 8 : 40;
  for (int i = 0; i < n; ++i) {
    const size_t hd = 2 * (2 + rng.below(70));
    const size_t rot = 2 * (2 + rng.below(hd / 2 - 1));
    const Shape sh{1 + rng.below(9), 1 + rng.below(5), rng.below(3), hd, rot};
    CheckRope<float>(configs[rng.below(configs.size())], sh, 100 + i);
    CheckRope<bf16>(configs[rng.below(configs.size())], sh, 200 + i);
  }
}

TEST_P(RopeTest, TwoThreadsMatchOneBitwise) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(6);
  for (RopePairing pairing : {RopePairing::kHalfSplit, RopePairing::kInterleaved}) {
    RopeConfig c;
    c.head_dim = 128;
    c.pairing = pairing;
    RopeTable table;
    ASSERT_EQ(make_rope_table(c, 512, &table), Status::kOk);
    const size_t tokens = 64, row = 48 * 128;
    std::vector<float> a(tokens * row);
    rng.fill(a.data(), a.size());
    std::vector<float> b = a;
    std::vector<int32_t> pos(tokens);
    for (auto& p : pos) p = static_cast<int32_t>(rng.below(512));
    ThreadPool one(1), two(2);
    for (auto [buf, pool] : {std::make_tuple(&a, &one), std::make_tuple(&b, &two)}) {
      auto q = heads_view(buf->data(), tokens, 32, 128, row);
      auto k = heads_view(buf->data() + 32 * 128, tokens, 8, 128, row);
      ASSERT_EQ(rope(q, k, pos.data(), table, pool), Status::kOk) << last_error();
    }
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * 4), 0);
  }
}

// On the paths with a bf16 conversion instruction, bf16 q and k rotate to the
// bits the bit rounding of the path below stores (same Highway code
// otherwise). Heads come in runs of 16 elements of one scale: normal, bf16
// subnormal (~1e-39, rotating to subnormals), near the top of the range (the
// rotation overflows to Inf) and NaN, so whole vectors and mixed ones of each.
TEST(RopeBf16Store, ConversionInstructionMatchesBitRounding) {
  TILEKIT_SEED_TRACE();
  const auto pairs = testing::Bf16StorePairs();
  if (pairs.empty()) GTEST_SKIP() << "no path with a bf16 conversion instruction (and the one below it) here";
  testing::Rng rng(13);
  static const float kScales[] = {1.f, 3e-39f, 3.3e38f, NAN, 1e-3f};
  for (RopePairing pairing : {RopePairing::kHalfSplit, RopePairing::kInterleaved}) {
    for (size_t hd : {2, 6, 34, 64, 130}) {
      RopeConfig c;
      c.head_dim = hd;
      c.pairing = pairing;
      RopeTable table;
      ASSERT_EQ(make_rope_table(c, 64, &table), Status::kOk);
      const size_t tokens = 5, q_heads = 3, k_heads = 2, row = (q_heads + k_heads) * hd;
      std::vector<bf16> init(tokens * row);
      for (size_t i = 0; i < init.size(); ++i) {
        init[i] = f32_to_bf16(rng.uniform(-1.9f, 1.9f) * kScales[(i / 16 + i % 3) % 5]);
      }
      std::vector<int32_t> pos(tokens);
      for (auto& p : pos) p = static_cast<int32_t>(rng.below(64));
      for (const auto& [native, portable] : pairs) {
        std::vector<bf16> out[2];  // [0]: the path with the instruction, [1]: the one below
        for (int k = 0; k < 2; ++k) {
          testing::ScopedPath path(k == 0 ? native : portable);
          out[k] = init;
          auto q = heads_view(out[k].data(), tokens, q_heads, hd, row);
          auto kk = heads_view(out[k].data() + q_heads * hd, tokens, k_heads, hd, row);
          ASSERT_EQ(rope(q, kk, pos.data(), table), Status::kOk) << last_error();
        }
        for (size_t i = 0; i < init.size(); ++i) {
          ASSERT_EQ(out[0][i].bits, out[1][i].bits) << isa_name(native) << " hd=" << hd << " i=" << i;
        }
      }
    }
  }
}

TEST_P(RopeTest, BadInputIsReportedAndOutputUntouched) {
  RopeConfig c;
  c.head_dim = 8;
  RopeTable table;
  c.rotary_dim = 3;
  EXPECT_TRUE(testing::FailsWith(make_rope_table(c, 16, &table), Status::kInvalidArgument, "rotary_dim=3"));
  c.rotary_dim = 10;
  EXPECT_TRUE(testing::FailsWith(make_rope_table(c, 16, &table), Status::kInvalidArgument, "rotary_dim=10"));
  c.rotary_dim = 0;
  c.scaling = RopeScaling::kYarn;
  c.factor = 4;
  EXPECT_TRUE(testing::FailsWith(make_rope_table(c, 16, &table), Status::kInvalidArgument, "original_max_positions"));
  c.scaling = RopeScaling::kNone;
  EXPECT_TRUE(testing::FailsWith(make_rope_table(c, 0, &table), Status::kInvalidArgument, "max_positions"));
  EXPECT_EQ(table.max_positions(), 0u);
  std::vector<float> qk(4 * 16, 1.5f);
  const int32_t pos[4] = {0, 1, 2, 3};
  auto q = heads_view(qk.data(), 4, 1, 8, 16);
  auto k = heads_view(qk.data() + 8, 4, 1, 8, 16);
  EXPECT_TRUE(testing::FailsWith(rope(q, k, pos, table, nullptr), Status::kInvalidArgument, "table is empty"));
  ASSERT_EQ(make_rope_table(c, 16, &table), Status::kOk);
  const int32_t past[4] = {0, 1, 16, 3}, negative[4] = {0, -1, 2, 3};
  EXPECT_TRUE(testing::FailsWith(rope(q, k, past, table, nullptr), Status::kInvalidArgument, "positions[2]=16"));
  EXPECT_TRUE(testing::FailsWith(rope(q, k, negative, table, nullptr), Status::kInvalidArgument, "positions[1]=-1"));
  EXPECT_TRUE(testing::FailsWith(rope(q, k, nullptr, table, nullptr), Status::kNullPointer, "positions"));
  EXPECT_TRUE(testing::FailsWith(rope(heads_view(qk.data(), 4, 1, 6, 16), k, pos, table, nullptr),
                                 Status::kShapeMismatch, "head_dim"));
  EXPECT_TRUE(testing::FailsWith(rope(q, heads_view(qk.data() + 8, 3, 1, 8, 16), pos, table, nullptr),
                                 Status::kShapeMismatch, "tokens"));
  // Two heads of 8 in a token stride of 12: the heads run into the next token.
  EXPECT_TRUE(testing::FailsWith(rope(heads_view(qk.data(), 4, 2, 8, 12), HeadsView<float>{}, pos, table, nullptr),
                                 Status::kBadLeadingDim, "token_stride=12"));
  // K starting inside Q's heads.
  EXPECT_TRUE(testing::FailsWith(rope(q, heads_view(qk.data() + 4, 4, 1, 8, 16), pos, table, nullptr),
                                 Status::kAliasing, "overlap"));
  for (float v : qk) EXPECT_EQ(v, 1.5f);
  // Q alone, and interleaved Q/K slices, are fine.
  EXPECT_EQ(rope(q, HeadsView<float>{}, pos, table, nullptr), Status::kOk) << last_error();
  EXPECT_EQ(rope(q, k, pos, table, nullptr), Status::kOk) << last_error();
}

TILEKIT_INSTANTIATE_PATHS(RopeTest);

}  // namespace
}  // namespace tilekit

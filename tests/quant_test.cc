// Quantized weights (int8, int4) on every path: packing from fp32, bf16 and
// GGUF Q8_0 / Q4_0 sources, the products against an fp64 reference on the
// dequantized weights, tails, epilogues, gate/up and fused QKV, threads, and
// bad input.
//
// The reference quantizes by the documented rule (gemm/packed_weights.h,
// gemm/quant.h): per column and group of g K values, s = max|w| / qmax and
// q = round-to-nearest(w / s), qmax = 127 (int8) or 7 (int4); GGUF sources
// carry q and their fp16 block scale d. The error of a product is bounded from
// the kernels' arithmetic: values are stored with a zero point z (128 or 8),
// so each product's roundings scale with |a| · (|q| + 2z) · s, over K + K/g + 4
// roundings (the group sums, their scaling and the dequantization), not with
// |a · w| over K.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "gemm_reference.h"
#include "quant_reference.h"

namespace tilekit {
namespace {

using testing::ActivationsSeen;
using testing::Dequantized;
using testing::GemmCase;
using testing::GemmReference;
using testing::GroupOf;
using testing::Rng;

// A GGUF tensor written by the test: N rows of K values as Q8_0 or Q4_0
// blocks (llama.cpp's quantizers: Q8_0 d = max|x| / 127, q = round(x / d);
// Q4_0 d = x_max / -8 for the x of largest magnitude, nibble = x / d + 8.5
// truncated and capped at 15), and its dequantized values as [K][N].
struct Gguf {
  SourceType type;
  size_t n, k;
  std::vector<unsigned char> bytes;
  Dequantized deq;
};

// IEEE half, round to nearest even, for normal values (the block scales the
// writer produces lie between 2^-14 and 65504), and its value computed
// arithmetically: independent of the library's bit conversion.
uint16_t F32ToF16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint32_t sign = (u >> 16) & 0x8000u, mant = u & 0x7FFFFFu;
  const int exp = static_cast<int>((u >> 23) & 0xFF) - 127 + 15;
  EXPECT_TRUE(exp >= 1 && exp <= 30) << "scale " << f << " is not a normal half";
  uint32_t h = static_cast<uint32_t>(exp) << 10 | mant >> 13;
  const uint32_t rest = mant & 0x1FFFu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1))) ++h;  // a carry into the exponent is right too
  return static_cast<uint16_t>(sign | h);
}
double F16Value(uint16_t h) {
  const double v = std::ldexp(1.0 + (h & 0x3FF) / 1024.0, ((h >> 10) & 0x1F) - 15);
  return h & 0x8000 ? -v : v;
}

Gguf WriteGguf(SourceType type, size_t n, size_t k, Rng& rng) {
  Gguf t{type, n, k, {}, {}};
  const size_t block = type == SourceType::kGgufQ8_0 ? 34 : 18, blocks = k / 32;
  t.bytes.assign(n * blocks * block, 0);
  t.deq.w.assign(k * n, 0.f);
  t.deq.mag.assign(k * n, 0.f);
  const double z = type == SourceType::kGgufQ8_0 ? 128 : 8;
  for (size_t r = 0; r < n; ++r) {
    for (size_t b = 0; b < blocks; ++b) {
      float x[32], amax = 0.f, xmax = 0.f;
      for (float& v : x) {
        v = rng.uniform();
        if (std::fabs(v) > amax) amax = std::fabs(v), xmax = v;
      }
      unsigned char* out = &t.bytes[(r * blocks + b) * block];
      int q[32];
      float d;
      if (type == SourceType::kGgufQ8_0) {
        d = amax / 127.f;
        for (int j = 0; j < 32; ++j) q[j] = static_cast<int>(std::nearbyint(x[j] / d));
        for (int j = 0; j < 32; ++j) out[2 + j] = static_cast<unsigned char>(static_cast<int8_t>(q[j]));
      } else {
        d = xmax / -8.f;
        for (int j = 0; j < 32; ++j) q[j] = std::min(15, static_cast<int>(x[j] / d + 8.5f)) - 8;
        for (int j = 0; j < 16; ++j) out[2 + j] = static_cast<unsigned char>((q[j] + 8) | (q[j + 16] + 8) << 4);
      }
      const uint16_t h = F32ToF16(d);
      std::memcpy(out, &h, 2);
      const float dh = static_cast<float>(F16Value(h));  // exact: a half is an fp32
      for (int j = 0; j < 32; ++j) {
        const size_t kk = b * 32 + j;
        t.deq.w[kk * n + r] = static_cast<float>(q[j]) * dh;
        t.deq.mag[kk * n + r] = static_cast<float>((std::abs(q[j]) + 2 * z) * std::fabs(dh));
      }
    }
  }
  return t;
}

// One case: A (M × K, fp32 or bf16), weights quantized from a source the
// case picks, C through an epilogue, checked against the fp64 reference on
// the dequantized weights.
struct QuantProblem {
  GemmCase g;
  WeightType type;
  size_t group;
  size_t lda, ldc, wn;
  std::vector<float> a, src, bias, residual, c_old;
  std::vector<bf16> a_bf16, src_bf16;
  Dequantized deq;

  QuantProblem(const GemmCase& gc, WeightType t, size_t grp, bool bf16_source, Rng& rng)
      : g(gc), type(t), group(grp) {
    lda = g.k + 3;
    ldc = g.n + 2;
    wn = g.gate_up ? 2 * g.n : g.n;
    a.resize(g.m * lda + 1);
    src.resize(g.k * wn + 1);
    c_old.assign(g.m * ldc + 1, 0.f);
    rng.fill(a.data(), a.size());
    rng.fill(src.data(), src.size());
    if (g.a_bf16) for (float& x : a) x = bf16_to_f32(f32_to_bf16(x));
    if (bf16_source) for (float& x : src) x = bf16_to_f32(f32_to_bf16(x));
    for (float x : a) a_bf16.push_back(f32_to_bf16(x));
    for (float x : src) src_bf16.push_back(f32_to_bf16(x));
    if (g.ep.bias) {
      bias.resize(g.n + 1);
      rng.fill(bias.data(), bias.size());
      g.ep.bias = bias.data();
    }
    if (g.ep.residual) {
      residual.resize(g.m * ldc + 1);
      rng.fill(residual.data(), residual.size());
      g.ep.residual = residual.data();
      g.ep.ld_residual = ldc;
    }
    deq = testing::Quantize(src.data(), g.k, wn, SourceLayout::kKN, t, grp);
    g.sum_terms = testing::QuantSumTerms(g.k, grp);
  }

  // The source in [K][N] (kn) or PyTorch's [N][K] (nk, a transposed copy).
  Status pack(PackedWeights* pw, bool nk, bool bf16_source) {
    PackOptions opt;
    opt.group = group;
    auto view = [&](size_t col0, size_t cols) {
      if (!nk) {
        return bf16_source ? weights_kn(src_bf16.data() + col0, g.k, cols, wn)
                           : weights_kn(src.data() + col0, g.k, cols, wn);
      }
      // [N][K] copies: one per view, kept alive in nk_copies.
      nk_copies.emplace_back(cols * g.k);
      std::vector<float>& t = nk_copies.back();
      for (size_t c = 0; c < cols; ++c) {
        for (size_t kk = 0; kk < g.k; ++kk) t[c * g.k + kk] = src[kk * wn + col0 + c];
      }
      if (bf16_source) {
        nk_bf16.emplace_back(t.size());
        for (size_t i = 0; i < t.size(); ++i) nk_bf16.back()[i] = f32_to_bf16(t[i]);
        return weights_nk(nk_bf16.back().data(), cols, g.k);
      }
      return weights_nk(t.data(), cols, g.k);
    };
    if (!g.gate_up) return pack_weights(view(0, g.n), type, pw, opt);
    return pack_weights_gate_up(view(0, g.n), view(g.n, g.n), type, pw, opt);
  }

  template <typename TA, typename TC>
  Status run_typed(const PackedWeights& pw, std::vector<float>& out, Executor* ex) const {
    std::vector<TC> c(g.m * ldc + 1);
    for (TC& v : c) v = testing::Poison<TC>();
    const TA* a_ptr;
    if constexpr (kIsBf16<TA>) a_ptr = a_bf16.data(); else a_ptr = a.data();
    GemmOptions opt;
    opt.executor = ex;
    const Status s = gemm(matrix(a_ptr, g.m, g.k, lda), pw, matrix(c.data(), g.m, g.n, ldc), g.ep, opt);
    out.resize(c.size());
    for (size_t i = 0; i < c.size(); ++i) out[i] = testing::ToF32(c[i]);
    return s;
  }
  Status run(const PackedWeights& pw, std::vector<float>& out, Executor* ex = nullptr) const {
    if (g.a_bf16) return g.c_bf16 ? run_typed<bf16, bf16>(pw, out, ex) : run_typed<bf16, float>(pw, out, ex);
    return g.c_bf16 ? run_typed<float, bf16>(pw, out, ex) : run_typed<float, float>(pw, out, ex);
  }

  std::string describe() const {
    char buf[200];
    std::snprintf(buf, sizeof(buf), "%s group %zu M=%zu N=%zu K=%zu A=%s C=%s act=%s bias=%d res=%d%s",
                  weight_type_name(type), group, g.m, g.n, g.k, g.a_bf16 ? "bf16" : "f32", g.c_bf16 ? "bf16" : "f32",
                  activation_name(g.ep.activation), g.ep.bias != nullptr, g.ep.residual != nullptr,
                  g.gate_up ? " gate_up" : "");
    return buf;
  }

  ::testing::AssertionResult check(const std::vector<float>& out, const PackedWeights& pw) const {
    GemmReference ref;
    const std::vector<float> a_seen = ActivationsSeen(a, g.m, g.k, lda, pw.layout());
    ref.compute(g, a_seen.data(), lda, deq.w.data(), c_old.data(), ldc, deq.mag.data());
    for (size_t i = 0; i < g.m; ++i) {
      for (size_t j = 0; j < ldc; ++j) {
        const float got = out[i * ldc + j];
        if (j >= g.n) {
          if (testing::Bits(got) != testing::Bits(testing::PoisonF32()) &&
              !(g.c_bf16 && testing::Bits(got) == testing::Bits(bf16_to_f32(bf16{testing::kPoisonBf16})))) {
            return ::testing::AssertionFailure() << describe() << ": padding (" << i << ", " << j << ") written";
          }
          continue;
        }
        const double want = ref.out[i * g.n + j], err = std::fabs(got - want);
        if (!(err <= ref.bound[i * g.n + j])) {
          return ::testing::AssertionFailure() << describe() << ": C(" << i << ", " << j << ") = " << got << ", want "
                                               << want << " within " << ref.bound[i * g.n + j];
        }
      }
    }
    return ::testing::AssertionSuccess();
  }

  std::vector<std::vector<float>> nk_copies;
  std::vector<std::vector<bf16>> nk_bf16;
};

class QuantTest : public testing::PathTest {};

// fp32 and bf16 sources in both orientations, every group size, shapes with
// tails in M, N and K (K short of a group, across groups, not a multiple).
TEST_P(QuantTest, ShapesGroupsAndSources) {
  TILEKIT_SEED_TRACE();
  Rng rng(1);
  const size_t lanes = active_panel_layout(WeightType::kF32).lanes;
  const size_t ns[] = {1, 7, 2 * lanes - 1, 2 * lanes + 1, 5 * lanes + 3};
  const size_t ks[] = {1, 8, 31, 33, 100, 257};
  const size_t ms[] = {1, 2, 5, 13, 17};
  int cases = 0;
  for (WeightType t : {WeightType::kInt8, WeightType::kInt4}) {
    for (size_t group : {size_t{32}, size_t{64}, size_t{128}, size_t{0}}) {
      if (t == WeightType::kInt4 && group == 0) continue;
      for (int source = 0; source < 3; ++source) {  // f32 [K][N], f32 [N][K], bf16 [N][K]
        const size_t n = ns[rng.below(std::size(ns))], k = ks[rng.below(std::size(ks))];
        const size_t m = ms[rng.below(std::size(ms))];
        GemmCase gc;
        gc.m = m, gc.n = n, gc.k = k;
        QuantProblem prob(gc, t, group, source == 2, rng);
        PackedWeights pw;
        ASSERT_EQ(prob.pack(&pw, source != 0, source == 2), Status::kOk) << prob.describe() << ": " << last_error();
        EXPECT_EQ(pw.layout().kind, PanelKind::kQuant);
        EXPECT_EQ(pw.type(), t);
        EXPECT_EQ(pw.group(), GroupOf(group, k));
        std::vector<float> out;
        ASSERT_EQ(prob.run(pw, out), Status::kOk) << last_error();
        EXPECT_TRUE(prob.check(out, pw));
        // The quantization itself: within half a step of every source value.
        EXPECT_LE(prob.deq.max_error, prob.deq.max_scale * (0.5 + 1e-6)) << prob.describe();
        ++cases;
      }
    }
  }
  EXPECT_EQ(cases, 21);
}

// Every row count from 1 to 17 (the GEMV, one tile, tile tails, two tiles).
TEST_P(QuantTest, RowTails) {
  TILEKIT_SEED_TRACE();
  Rng rng(2);
  for (WeightType t : {WeightType::kInt8, WeightType::kInt4}) {
    for (size_t m = 1; m <= 17; ++m) {
      GemmCase gc;
      gc.m = m, gc.n = 37, gc.k = 200;
      QuantProblem prob(gc, t, 64, false, rng);
      PackedWeights pw;
      ASSERT_EQ(prob.pack(&pw, true, false), Status::kOk) << last_error();
      std::vector<float> out;
      ASSERT_EQ(prob.run(pw, out), Status::kOk) << last_error();
      EXPECT_TRUE(prob.check(out, pw));
    }
  }
}

// The paths of an integer dot-product kernel quantize A from 8 rows: x86
// AVX-512 paths whose CPU has VNNI (quant_vnni), Arm NEON paths whose CPU has
// FEAT_DotProd and every SVE path (quant_sdot; SVE's SDOT is base SVE). The
// layout says so, with the sub-group of the rule: the weights' group, or for
// int8 per column the largest multiple of 4 up to 256 dividing the padded K.
TEST_P(QuantTest, IntegerKernelOnPathsWithDotProducts) {
  const Isa isa = GetParam();
  const cpu::Features& f = cpu::features();
  const bool vnni = (isa == Isa::kAvx512 || isa == Isa::kAvx512Bf16 || isa == Isa::kAmx) && f.avx512_vnni;
  const bool sdot = isa == Isa::kSve || isa == Isa::kSveBf16 || ((isa == Isa::kNeon || isa == Isa::kNeonBf16) && f.dotprod);
  struct Want {
    WeightType type;
    size_t group, k, sub_group;
  };
  const Want wants[] = {{WeightType::kInt8, 32, 100, 32},  {WeightType::kInt4, 64, 64, 64},
                        {WeightType::kInt8, 128, 129, 128}, {WeightType::kInt8, 0, 100, 104},
                        {WeightType::kInt8, 0, 300, 152},  {WeightType::kInt8, 0, 2100, 8},
                        {WeightType::kInt8, 0, 4096, 256}};
  const PanelLayout vector = active_panel_layout(WeightType::kF32);
  for (const Want& w : wants) {
    std::vector<float> src(3 * w.k, 1.f);
    const WeightSource part = weights_nk(src.data(), 3, w.k);
    PackOptions opt;
    opt.group = w.group;
    PanelLayout l;
    ASSERT_EQ(packing_layout(&part, 1, w.type, PackKind::kSeparate, opt, &l), Status::kOk) << last_error();
    EXPECT_EQ(l.kind, PanelKind::kQuant);
    EXPECT_EQ(l.nr, 2 * vector.lanes);
    EXPECT_EQ(l.a_int8_min_rows, vnni || sdot ? 8u : 0u) << weight_type_name(w.type) << " group " << w.group;
    if (vnni || sdot) {
      EXPECT_EQ(l.a_group, w.sub_group) << weight_type_name(w.type) << " group " << w.group << " K " << w.k;
    }
  }
}

// The loops of the integer kernels at their edges, each case against the
// reference: per-column int8 (group 0) whose sub-groups are not whole 16-byte
// loads (K = 300: 152) or only 8 values (K = 2100); K short of a group (K =
// 100 in groups of 32); several K blocks (K from 2100: blocks of 512 on x86,
// half of L1 on Arm, 1024 to 4096 K on NEON, fewer on wide SVE panels); two
// row blocks where L2 is 1 MiB or less, as cpuinfo reports under qemu (M =
// 130 at K = 4100); row counts on both sides of the 4-row tile and the 8-row
// threshold; N tails of one column, one short of a panel and one past it.
TEST_P(QuantTest, IntegerKernelEdges) {
  TILEKIT_SEED_TRACE();
  Rng rng(11);
  const size_t nr = 2 * active_panel_layout(WeightType::kF32).lanes;
  struct Shape {
    WeightType type;
    size_t group, m, n, k;
  };
  const Shape shapes[] = {
      {WeightType::kInt8, 0, 9, nr + 1, 300},    {WeightType::kInt8, 0, 13, 2 * nr - 1, 2100},
      {WeightType::kInt8, 0, 8, 1, 600},         {WeightType::kInt8, 32, 8, 1, 100},
      {WeightType::kInt4, 32, 11, nr + 1, 100},  {WeightType::kInt8, 128, 12, 3, 2200},
      {WeightType::kInt4, 32, 130, 3, 4100}, {WeightType::kInt4, 64, 7, nr + 1, 2100},
  };
  for (const Shape& sh : shapes) {
    GemmCase gc;
    gc.m = sh.m, gc.n = sh.n, gc.k = sh.k;
    gc.a_bf16 = rng.below(2);
    QuantProblem prob(gc, sh.type, sh.group, false, rng);
    PackedWeights pw;
    ASSERT_EQ(prob.pack(&pw, true, false), Status::kOk) << prob.describe() << ": " << last_error();
    std::vector<float> out;
    ASSERT_EQ(prob.run(pw, out), Status::kOk) << last_error();
    EXPECT_TRUE(prob.check(out, pw));
  }
}

// Each row's result depends on that row alone, whatever the blocking: the
// first rows of a call are the same bits as a call of those rows alone (in
// other tiles, of other heights), from the threshold up.
TEST_P(QuantTest, RowsDoNotDependOnTheirNeighbours) {
  TILEKIT_SEED_TRACE();
  Rng rng(12);
  const size_t k = 1000, n = 2 * active_panel_layout(WeightType::kF32).lanes + 3;
  std::vector<float> w(n * k), a(70 * k);
  rng.fill(w.data(), w.size());
  rng.fill(a.data(), a.size());
  for (WeightType t : {WeightType::kInt8, WeightType::kInt4}) {
    PackedWeights pw;
    ASSERT_EQ(pack_weights(weights_nk(w.data(), n, k), t, &pw), Status::kOk) << last_error();
    std::vector<float> all(70 * n);
    ASSERT_EQ(gemm(matrix(a.data(), 70, k), pw, matrix(all.data(), 70, n)), Status::kOk);
    for (size_t m : {size_t{8}, size_t{9}, size_t{13}}) {
      std::vector<float> some(m * n);
      ASSERT_EQ(gemm(matrix(a.data(), m, k), pw, matrix(some.data(), m, n)), Status::kOk);
      for (size_t i = 0; i < m * n; ++i) {
        ASSERT_EQ(testing::Bits(some[i]), testing::Bits(all[i])) << weight_type_name(t) << " M=" << m << " at " << i;
      }
    }
  }
}

// Below the integer kernels' rows (kQuantGemvMaxRows), the weight-only GEMV
// runs rows in tiles of up to 4 that share each widened weight: a row's
// outputs are the same bits whichever call and tile it is in (M = 1 to 7, the
// row alone), over N of 8 panel blocks and a tail (several tiles of panels
// per block) and K of several groups with a short last one.
TEST_P(QuantTest, GemvRowsIndependentOfTheirTile) {
  TILEKIT_SEED_TRACE();
  Rng rng(13);
  const size_t lanes = active_panel_layout(WeightType::kF32).lanes;
  const size_t k = 300, n = 9 * 2 * lanes - 5, rows = 7;
  std::vector<float> w(n * k), a(rows * k);
  rng.fill(w.data(), w.size());
  rng.fill(a.data(), a.size());
  for (WeightType t : {WeightType::kInt8, WeightType::kInt4}) {
    PackedWeights pw;
    PackOptions opt;
    opt.group = 64;
    ASSERT_EQ(pack_weights(weights_nk(w.data(), n, k), t, &pw, opt), Status::kOk) << last_error();
    std::vector<std::vector<float>> alone(rows, std::vector<float>(n, testing::PoisonF32()));
    for (size_t i = 0; i < rows; ++i) {
      ASSERT_EQ(gemm(matrix(a.data() + i * k, 1, k), pw, matrix(alone[i].data(), 1, n)), Status::kOk);
    }
    for (size_t m = 2; m <= rows; ++m) {
      std::vector<float> c(m * n, testing::PoisonF32());
      ASSERT_EQ(gemm(matrix(a.data(), m, k), pw, matrix(c.data(), m, n)), Status::kOk);
      for (size_t i = 0; i < m; ++i) {
        for (size_t j = 0; j < n; ++j) {
          ASSERT_EQ(testing::Bits(c[i * n + j]), testing::Bits(alone[i][j]))
              << weight_type_name(t) << " M=" << m << " at (" << i << ", " << j << ")";
        }
      }
    }
  }
}

// Rows of A that are unit vectors read the packed weights one by one: on the
// GEMV (M = 1) every product but one is 0 · w, so C = fl(q · s) exactly, the
// weight the reference computed (a zero of either sign: compared as values). A
// differently rounded q would be off by a whole step.
TEST_P(QuantTest, UnitRowsReadTheQuantizedWeightsExactly) {
  TILEKIT_SEED_TRACE();
  Rng rng(3);
  for (WeightType t : {WeightType::kInt8, WeightType::kInt4}) {
    GemmCase gc;
    gc.m = 1, gc.n = 19, gc.k = 70;
    QuantProblem prob(gc, t, 32, false, rng);
    PackedWeights pw;
    ASSERT_EQ(prob.pack(&pw, false, false), Status::kOk) << last_error();
    std::vector<float> a(gc.k, 0.f), c(gc.n);
    for (size_t kk = 0; kk < gc.k; ++kk) {
      a[kk] = 1.f;
      ASSERT_EQ(gemm(matrix(a.data(), 1, gc.k), pw, matrix(c.data(), 1, gc.n)), Status::kOk);
      for (size_t j = 0; j < gc.n; ++j) {
        ASSERT_EQ(c[j], prob.deq.w[kk * gc.n + j]) << weight_type_name(t) << " k=" << kk << " c=" << j;
      }
      a[kk] = 0.f;
    }
  }
}

// GGUF Q8_0 and Q4_0 tensors from the test's own writer: packed from their
// bytes, they multiply as their dequantized values d · q do (exactly, read one
// by one; within the bound in a product).
TEST_P(QuantTest, GgufBlocksPackAsTheirValues) {
  TILEKIT_SEED_TRACE();
  Rng rng(4);
  for (SourceType st : {SourceType::kGgufQ8_0, SourceType::kGgufQ4_0}) {
    const WeightType t = st == SourceType::kGgufQ8_0 ? WeightType::kInt8 : WeightType::kInt4;
    const size_t n = 2 * active_panel_layout(WeightType::kF32).lanes + 3, k = 96;
    const Gguf file = WriteGguf(st, n, k, rng);
    PackedWeights pw;
    ASSERT_EQ(pack_weights(weights_gguf(file.bytes.data(), st, n, k), t, &pw), Status::kOk) << last_error();
    EXPECT_EQ(pw.group(), 32u);
    std::vector<float> a(k, 0.f), c(n);
    for (size_t kk = 0; kk < k; ++kk) {
      a[kk] = 1.f;
      ASSERT_EQ(gemm(matrix(a.data(), 1, k), pw, matrix(c.data(), 1, n)), Status::kOk);
      for (size_t j = 0; j < n; ++j) {
        ASSERT_EQ(c[j], file.deq.w[kk * n + j]) << source_type_name(st) << " k=" << kk << " row " << j;
      }
      a[kk] = 0.f;
    }
    for (size_t m : {size_t{1}, size_t{3}, size_t{16}}) {
      GemmCase gc;
      gc.m = m, gc.n = n, gc.k = k;
      gc.sum_terms = k + k / 32 + 4;
      std::vector<float> am(m * k);
      rng.fill(am.data(), am.size());
      std::vector<float> cm(m * n, testing::PoisonF32()), zero(m * n, 0.f);
      ASSERT_EQ(gemm(matrix(am.data(), m, k), pw, matrix(cm.data(), m, n)), Status::kOk);
      GemmReference ref;
      const std::vector<float> a_seen = ActivationsSeen(am, m, k, k, pw.layout());
      ref.compute(gc, a_seen.data(), k, file.deq.w.data(), zero.data(), n, file.deq.mag.data());
      for (size_t i = 0; i < m * n; ++i) {
        ASSERT_LE(std::fabs(cm[i] - ref.out[i]), ref.bound[i]) << source_type_name(st) << " M=" << m << " at " << i;
      }
    }
    // Rows stored further apart than their blocks (a tensor inside a file).
    const size_t row = k / 32 * gguf_block_bytes(st), ld = row + 7;
    std::vector<unsigned char> spaced(n * ld, 0xEE);
    for (size_t r = 0; r < n; ++r) std::memcpy(&spaced[r * ld], &file.bytes[r * row], row);
    PackedWeights spaced_pw;
    ASSERT_EQ(pack_weights(weights_gguf(spaced.data(), st, n, k, ld), t, &spaced_pw), Status::kOk) << last_error();
    ASSERT_EQ(spaced_pw.bytes(), pw.bytes());
    EXPECT_EQ(std::memcmp(spaced_pw.panel(0), pw.panel(0), pw.bytes()), 0);
  }
}

// Every epilogue op, bf16 A and C, SwiGLU over a quantized gate/up pair.
TEST_P(QuantTest, EpiloguesDtypesAndGateUp) {
  TILEKIT_SEED_TRACE();
  Rng rng(5);
  std::vector<float> bias_slot(1), res_slot(1);
  int cases = 0;
  for (WeightType t : {WeightType::kInt8, WeightType::kInt4}) {
    for (Activation act : testing::kActivations) {
      for (size_t m : {size_t{1}, size_t{9}}) {
        GemmCase gc;
        gc.m = m, gc.n = 23, gc.k = 130;
        gc.a_bf16 = rng.below(2), gc.c_bf16 = rng.below(2);
        gc.ep.activation = act;
        if (rng.below(2)) gc.ep.bias = bias_slot.data();
        if (rng.below(2)) gc.ep.residual = res_slot.data();
        QuantProblem prob(gc, t, 32, false, rng);
        PackedWeights pw;
        ASSERT_EQ(prob.pack(&pw, true, false), Status::kOk) << last_error();
        std::vector<float> out;
        ASSERT_EQ(prob.run(pw, out), Status::kOk) << last_error();
        EXPECT_TRUE(prob.check(out, pw));
        ++cases;
      }
    }
    for (size_t m : {size_t{1}, size_t{14}}) {
      GemmCase gc;
      gc.m = m, gc.n = 21, gc.k = 96;
      gc.gate_up = true;
      gc.ep.activation = m == 1 ? Activation::kSwiGlu : Activation::kGeGlu;
      QuantProblem prob(gc, t, 32, false, rng);
      PackedWeights pw;
      ASSERT_EQ(prob.pack(&pw, rng.below(2), false), Status::kOk) << last_error();
      EXPECT_TRUE(pw.has_gate_up());
      std::vector<float> out;
      ASSERT_EQ(prob.run(pw, out), Status::kOk) << last_error();
      EXPECT_TRUE(prob.check(out, pw));
      ++cases;
    }
  }
  EXPECT_EQ(cases, 24);
}

// Q, K and V packed as one quantized object and run as one gemm_fused, each
// with its own epilogue, equal bit for bit to three separate GEMMs.
TEST_P(QuantTest, FusedQkvEqualsSeparateGemms) {
  TILEKIT_SEED_TRACE();
  Rng rng(6);
  const size_t k = 160, ns[3] = {40, 17, 17};
  for (WeightType t : {WeightType::kInt8, WeightType::kInt4}) {
    for (size_t m : {size_t{1}, size_t{11}}) {
      std::vector<std::vector<float>> w(3);
      WeightSource parts[3];
      for (int s = 0; s < 3; ++s) {
        w[s].resize(ns[s] * k);
        rng.fill(w[s].data(), w[s].size());
        parts[s] = weights_nk(w[s].data(), ns[s], k);
      }
      PackedWeights fused;
      ASSERT_EQ(pack_weights(parts, 3, t, PackKind::kSeparate, &fused), Status::kOk) << last_error();
      std::vector<float> a(m * k), bias(40);
      rng.fill(a.data(), a.size());
      rng.fill(bias.data(), bias.size());
      std::vector<std::vector<float>> c(3), want(3);
      FusedOutput<float> outs[3];
      for (int s = 0; s < 3; ++s) {
        c[s].assign(m * ns[s], testing::PoisonF32());
        want[s].assign(m * ns[s], testing::PoisonF32());
        outs[s].c = matrix(c[s].data(), m, ns[s]);
        if (s == 0) outs[s].epilogue.with_bias(bias.data());
        if (s == 1) outs[s].epilogue.with(Activation::kSilu);
      }
      ASSERT_EQ(gemm_fused(matrix(a.data(), m, k), fused, outs, 3), Status::kOk) << last_error();
      for (int s = 0; s < 3; ++s) {
        PackedWeights alone;
        ASSERT_EQ(pack_weights(parts[s], t, &alone), Status::kOk);
        ASSERT_EQ(gemm(matrix(a.data(), m, k), alone, matrix(want[s].data(), m, ns[s]), outs[s].epilogue), Status::kOk);
        for (size_t i = 0; i < c[s].size(); ++i) {
          ASSERT_EQ(testing::Bits(c[s][i]), testing::Bits(want[s][i])) << weight_type_name(t) << " M=" << m << " segment " << s;
        }
      }
    }
  }
}

// A NaN or infinite activation makes its row's outputs non-finite on every
// path (the weight-only kernels multiply it; the int8 kernels give its
// sub-group a NaN scale): never a finite number made up from it. Other rows
// are unaffected.
TEST_P(QuantTest, NonFiniteActivationsPropagate) {
  TILEKIT_SEED_TRACE();
  Rng rng(10);
  for (WeightType t : {WeightType::kInt8, WeightType::kInt4}) {
    for (size_t m : {size_t{1}, size_t{3}, size_t{12}}) {
      GemmCase gc;
      gc.m = m, gc.n = 20, gc.k = 64;
      QuantProblem prob(gc, t, 32, false, rng);
      PackedWeights pw;
      ASSERT_EQ(prob.pack(&pw, true, false), Status::kOk);
      for (float bad : {NAN, INFINITY, -INFINITY}) {
        std::vector<float> a = prob.a;
        const size_t row = m - 1;
        a[row * prob.lda + 40] = bad;
        std::vector<float> c(m * gc.n);
        ASSERT_EQ(gemm(matrix(a.data(), m, gc.k, prob.lda), pw, matrix(c.data(), m, gc.n)), Status::kOk);
        for (size_t i = 0; i < m; ++i) {
          for (size_t j = 0; j < gc.n; ++j) {
            if (i == row) {
              EXPECT_FALSE(std::isfinite(c[i * gc.n + j])) << weight_type_name(t) << " M=" << m << " " << bad;
            } else {
              EXPECT_TRUE(std::isfinite(c[i * gc.n + j])) << weight_type_name(t) << " M=" << m;
            }
          }
        }
      }
    }
  }
}

// Counts the calls an executor was asked to split.
class CountingPool final : public Executor {
 public:
  explicit CountingPool(size_t threads) : pool_(threads) {}
  size_t num_threads() const override { return pool_.num_threads(); }
  void run(size_t tasks, TaskFn fn, void* context) override {
    if (tasks > 1) split_.fetch_add(1);
    pool_.run(tasks, fn, context);
  }
  size_t split() const { return split_.load(); }

 private:
  ThreadPool pool_;
  std::atomic<size_t> split_{0};
};

// The same bits on one thread and on two, for the GEMV and the tiled loops,
// with shapes large enough to be split (the counting pool checks they were):
// panels split (N = 1000), and rows (one panel: the second share starts
// mid-matrix, and under qemu, L2 unknown, each share is two row blocks).
TEST_P(QuantTest, OneAndTwoThreadsAreBitwiseEqual) {
  TILEKIT_SEED_TRACE();
  Rng rng(7);
  CountingPool pool(2);
  struct Shape {
    size_t m, n, k;
  };
  // The GEMV, the integer kernels' row blocks and a split by rows of a narrow
  // output. Emulated, smaller shapes that still split (the check below).
  const std::vector<Shape> shapes = testing::Emulated()
                                        ? std::vector<Shape>{{1, 1000, 1024}, {24, 300, 1024}, {100, 3, 4100}}
                                        : std::vector<Shape>{{1, 1000, 1024}, {40, 1000, 1024}, {260, 3, 4100}};
  for (WeightType t : {WeightType::kInt8, WeightType::kInt4}) {
    for (const Shape& sh : shapes) {
      GemmCase gc;
      gc.m = sh.m, gc.n = sh.n, gc.k = sh.k;
      QuantProblem prob(gc, t, 128, false, rng);
      PackedWeights pw;
      ASSERT_EQ(prob.pack(&pw, true, false), Status::kOk) << last_error();
      std::vector<float> one, two;
      const size_t before = pool.split();
      ASSERT_EQ(prob.run(pw, one), Status::kOk);
      ASSERT_EQ(prob.run(pw, two, &pool), Status::kOk);
      EXPECT_GT(pool.split(), before) << "the call ran on one thread: make the shape larger";
      for (size_t i = 0; i < one.size(); ++i) ASSERT_EQ(testing::Bits(one[i]), testing::Bits(two[i])) << i;
    }
  }
}

// Packing on two threads writes the same bytes as on one.
TEST_P(QuantTest, PackingOnThreadsWritesTheSameBytes) {
  TILEKIT_SEED_TRACE();
  Rng rng(8);
  ThreadPool pool(2);
  std::vector<float> w(300 * 99);
  rng.fill(w.data(), w.size());
  for (WeightType t : {WeightType::kInt8, WeightType::kInt4}) {
    PackedWeights one, two;
    PackOptions opt;
    ASSERT_EQ(pack_weights(weights_nk(w.data(), 300, 99), t, &one, opt), Status::kOk);
    opt.executor = &pool;
    ASSERT_EQ(pack_weights(weights_nk(w.data(), 300, 99), t, &two, opt), Status::kOk);
    ASSERT_EQ(one.bytes(), two.bytes());
    EXPECT_EQ(std::memcmp(one.panel(0), two.panel(0), one.bytes()), 0);
  }
}

// Refused packing leaves the weights as they were; each message says why.
TEST_P(QuantTest, BadInputIsReportedAndWeightsUntouched) {
  TILEKIT_SEED_TRACE();
  Rng rng(9);
  const size_t n = 10, k = 64;
  std::vector<float> w(n * k);
  rng.fill(w.data(), w.size());
  PackedWeights pw;
  ASSERT_EQ(pack_weights(weights_nk(w.data(), n, k), WeightType::kInt8, &pw), Status::kOk);
  const std::vector<unsigned char> before(pw.panel(0), pw.panel(0) + pw.bytes());
  auto untouched = [&] {
    return pw.bytes() == before.size() && std::memcmp(pw.panel(0), before.data(), before.size()) == 0 &&
           pw.type() == WeightType::kInt8;
  };
  PackOptions opt;
  opt.group = 48;
  EXPECT_TRUE(testing::FailsWith(pack_weights(weights_nk(w.data(), n, k), WeightType::kInt8, &pw, opt),
                                 Status::kInvalidArgument, "group size 48"));
  opt.group = 0;
  EXPECT_TRUE(testing::FailsWith(pack_weights(weights_nk(w.data(), n, k), WeightType::kInt4, &pw, opt),
                                 Status::kInvalidArgument, "int4 weights need a group size"));
  std::vector<float> bad = w;
  bad[17] = NAN;
  EXPECT_TRUE(testing::FailsWith(pack_weights(weights_nk(bad.data(), n, k), WeightType::kInt4, &pw),
                                 Status::kInvalidArgument, "NaN or infinite weight"));
  bad[17] = INFINITY;
  EXPECT_TRUE(testing::FailsWith(pack_weights(weights_nk(bad.data(), n, k), WeightType::kInt8, &pw),
                                 Status::kInvalidArgument, "NaN or infinite weight"));
  std::vector<bf16> wb(w.size());
  for (size_t i = 0; i < w.size(); ++i) wb[i] = f32_to_bf16(w[i]);
  // fp32 and bf16 sources in one call: the quantized packer reads each as
  // its own type; fp32 and bf16 weights take one element type per call.
  const WeightSource mixed[2] = {weights_nk(w.data(), n, k), weights_nk(wb.data(), n, k)};
  PackedWeights fp_weights;
  EXPECT_TRUE(testing::FailsWith(pack_weights(mixed, 2, WeightType::kBf16, PackKind::kSeparate, &fp_weights),
                                 Status::kInvalidArgument, "pack bf16 and f32 apart"));
  PackedWeights both;
  EXPECT_EQ(pack_weights(mixed, 2, WeightType::kInt8, PackKind::kSeparate, &both), Status::kOk) << last_error();

  const Gguf q8 = WriteGguf(SourceType::kGgufQ8_0, n, k, rng);
  EXPECT_TRUE(testing::FailsWith(pack_weights(weights_gguf(q8.bytes.data(), SourceType::kGgufQ8_0, n, k),
                                              WeightType::kInt4, &pw),
                                 Status::kInvalidArgument, "packs as int8 weights, not int4"));
  EXPECT_TRUE(testing::FailsWith(pack_weights(weights_gguf(q8.bytes.data(), SourceType::kGgufQ8_0, n, k),
                                              WeightType::kF32, &pw),
                                 Status::kInvalidArgument, "packs as int8 weights, not f32"));
  opt.group = 64;
  EXPECT_TRUE(testing::FailsWith(pack_weights(weights_gguf(q8.bytes.data(), SourceType::kGgufQ8_0, n, k),
                                              WeightType::kInt8, &pw, opt),
                                 Status::kInvalidArgument, "group size must be 32"));
  EXPECT_TRUE(testing::FailsWith(pack_weights(weights_gguf(q8.bytes.data(), SourceType::kGgufQ8_0, n, k - 8),
                                              WeightType::kInt8, &pw),
                                 Status::kShapeMismatch, "not a multiple of 32"));
  EXPECT_TRUE(testing::FailsWith(pack_weights(weights_gguf(q8.bytes.data(), SourceType::kGgufQ8_0, n, k, 40),
                                              WeightType::kInt8, &pw),
                                 Status::kBadLeadingDim, "rows of 40 bytes < 68"));
  WeightSource along_n = weights_gguf(q8.bytes.data(), SourceType::kGgufQ8_0, n, k);
  along_n.layout = SourceLayout::kKN;
  EXPECT_TRUE(testing::FailsWith(pack_weights(along_n, WeightType::kInt8, &pw), Status::kInvalidArgument,
                                 "GGUF rows run along K"));
  for (uint16_t scale : {uint16_t{0x7C00}, uint16_t{0xFC00}, uint16_t{0x7E01}}) {  // +Inf, -Inf, NaN
    std::vector<unsigned char> broken = q8.bytes;
    std::memcpy(&broken[3 * 34 * (k / 32) + 34], &scale, 2);  // row 3, block 1
    EXPECT_TRUE(testing::FailsWith(pack_weights(weights_gguf(broken.data(), SourceType::kGgufQ8_0, n, k),
                                                WeightType::kInt8, &pw),
                                   Status::kInvalidArgument, "row 3, block 1 has a"));
  }
  // A K whose packed size overflows is refused before any block is read (the
  // scales were once scanned first: a read far past the caller's rows).
  EXPECT_TRUE(testing::FailsWith(pack_weights(weights_gguf(q8.bytes.data(), SourceType::kGgufQ8_0, 1, size_t{1} << 62),
                                              WeightType::kInt8, &pw),
                                 Status::kOverflow, "overflows"));
  WeightSource unknown = weights_nk(w.data(), n, k);
  unknown.type = static_cast<SourceType>(9);
  EXPECT_TRUE(testing::FailsWith(pack_weights(unknown, WeightType::kInt8, &pw), Status::kInvalidArgument,
                                 "unknown type 9"));
  EXPECT_TRUE(untouched());
  // Quantized weights report their layout and size before packing.
  size_t bytes = 0;
  ASSERT_EQ(packed_weights_size(&mixed[0], 1, WeightType::kInt4, PackKind::kSeparate, &bytes), Status::kOk);
  PackedWeights p4;
  ASSERT_EQ(pack_weights(mixed[0], WeightType::kInt4, &p4), Status::kOk);
  EXPECT_EQ(bytes, p4.bytes());
  PanelLayout l;
  ASSERT_EQ(packing_layout(&mixed[0], 1, WeightType::kInt4, PackKind::kSeparate, {}, &l), Status::kOk);
  EXPECT_TRUE(l == p4.layout());
}

TILEKIT_INSTANTIATE_PATHS(QuantTest);

}  // namespace
}  // namespace tilekit

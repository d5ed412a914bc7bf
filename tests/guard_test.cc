// Every kernel's tails against guard pages, on every path, in the build users
// get (Release; ASan's redzones are not in it, and its 8-byte granularity can
// miss a masked store that spills a few lanes): each operand is placed flush
// against a PROT_NONE page, once after its end and once before its start, so a
// tail that reads or writes one element too far faults (tests/guarded_buffer.h).
// Results are checked too (fp64 reference or the scalar conversion), so a
// kernel that stops short fails as well.
//
// A new kernel: one TEST_P that allocates its operands with GuardedBuffer and
// loops over GuardSweep (sizes × both guard sides).
#include <cmath>
#include <cstring>
#include <functional>
#include <vector>

#include "gemm_reference.h"
#include "guarded_buffer.h"
#include "harness.h"
#include "ops_reference.h"
#include "quant_reference.h"

namespace tilekit {
namespace {

using testing::Guard;
using testing::GuardedBuffer;

// Tails: 1, primes, multiples of 16 (every vector length here is a divisor)
// ± 1, up to `max`. O(n) kernels also get the 4 KiB-page neighbours.
std::vector<size_t> GuardTails(size_t max) {
  std::vector<size_t> sizes;
  for (size_t s : {1, 2, 3, 5, 7, 13, 15, 16, 17, 31, 32, 33, 47, 63, 64, 65, 127, 129, 1023, 1025, 4095, 4096,
                   4097}) {
    if (s <= max) sizes.push_back(s);
  }
  return sizes;
}

// Runs body(n, guard) for every size and both guard sides, tracing both.
void GuardSweep(const std::vector<size_t>& sizes, const std::function<void(size_t, Guard)>& body) {
  for (size_t n : sizes) {
    for (Guard g : {Guard::kAfter, Guard::kBefore}) {
      SCOPED_TRACE(::testing::Message() << "n=" << n << " guard " << testing::GuardName(g));
      body(n, g);
      if (::testing::Test::HasFatalFailure()) return;
    }
  }
}

uint32_t Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// Copies of a guarded operand in ordinary memory, for the same call twice.
template <typename T>
std::vector<T> Plain(const GuardedBuffer<T>& b) {
  return std::vector<T>(b.data(), b.data() + b.size());
}

class GuardTest : public testing::PathTest {};

TEST_P(GuardTest, ConvertF32ToBf16) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(1);
  GuardSweep(GuardTails(4097), [&](size_t n, Guard g) {
    GuardedBuffer<float> in(n, g);
    GuardedBuffer<bf16> out(n, g);
    rng.fill(in.data(), n, -100.f, 100.f);
    ASSERT_EQ(convert_f32_to_bf16(in.data(), out.data(), n), Status::kOk) << last_error();
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(out[i].bits, f32_to_bf16(in[i]).bits) << i;
  });
}

TEST_P(GuardTest, ConvertBf16ToF32) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(2);
  GuardSweep(GuardTails(4097), [&](size_t n, Guard g) {
    GuardedBuffer<bf16> in(n, g);
    GuardedBuffer<float> out(n, g);
    for (size_t i = 0; i < n; ++i) in[i] = f32_to_bf16(rng.uniform(-100.f, 100.f));
    ASSERT_EQ(convert_bf16_to_f32(in.data(), out.data(), n), Status::kOk) << last_error();
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(Bits(out[i]), Bits(bf16_to_f32(in[i]))) << i;
  });
}

using testing::kActivations;

// C (rows × cols, ld = cols or cols + 1), bias and residual each against a guard.
TEST_P(GuardTest, ApplyEpilogue) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(3);
  GuardSweep(GuardTails(129), [&](size_t n, Guard g) {
    for (size_t rows : {1, 3}) {
      const size_t ld = n + rng.below(2);
      const size_t span = testing::SpanElements(rows, n, ld);
      GuardedBuffer<float> c(span, g), bias(n, g), res(span, g);
      rng.fill(c.data(), span, -3.f, 3.f);
      rng.fill(bias.data(), n);
      rng.fill(res.data(), span);
      const std::vector<float> before(c.data(), c.data() + span);
      Epilogue ep = Epilogue().with_scale(0.75f).with_bias(bias.data()).with_residual(res.data(), ld);
      ep.activation = kActivations[rng.below(5)];
      if (rng.below(2)) ep.with_clamp(-1.f, 1.5f);
      ASSERT_EQ(apply_epilogue(matrix(c.data(), rows, n, ld), ep), Status::kOk) << last_error();
      for (size_t i = 0; i < rows; ++i) {
        for (size_t j = 0; j < ld && i * ld + j < span; ++j) {
          const size_t at = i * ld + j;
          if (j >= n) {
            ASSERT_EQ(Bits(c[at]), Bits(before[at])) << "padding written at " << i << "," << j;
            continue;
          }
          double want, bound;
          testing::EpilogueRef(ep, before[at], 0, 0, bias[j], res[at], false, &want, &bound);
          ASSERT_TRUE(testing::WithinBound(std::fabs(c[at] - want), bound + 1e-30, activation_name(ep.activation)))
              << i << "," << j;
        }
      }
    }
  });
}

// A (fp32 or bf16), C (fp32 or bf16), bias and residual each against a guard,
// for N across the tails (narrow dot-product columns up to 16, the path's
// panels above), M = 1 (the GEMV kernels), 2 and 13 (row tiles and their
// tail), K across a vector's width. Packed weights are tilekit's own buffer:
// fp32, bf16, or int8 / int4 quantized from fp32 in groups of `group` (the
// reference then multiplies the dequantized weights, tests/quant_reference.h).
template <typename TA, typename TC>
void GemmAgainstGuards(size_t m, size_t n, size_t k, Guard g, WeightType type, bool gate_up, testing::Rng& rng,
                       size_t group = 32) {
  const bool w_bf16 = type == WeightType::kBf16;
  testing::GemmCase gc;
  gc.m = m, gc.n = n, gc.k = k;
  gc.a_bf16 = kIsBf16<TA>, gc.c_bf16 = kIsBf16<TC>, gc.w_bf16 = w_bf16, gc.gate_up = gate_up;
  const size_t lda = k + rng.below(2), ldc = n + rng.below(2), wn = gate_up ? 2 * n : n;
  const auto round = [&](float v) { return gc.a_bf16 ? bf16_to_f32(f32_to_bf16(v)) : v; };
  std::vector<float> a(m * lda), w(k * wn), c_old(m * ldc);
  for (float& v : a) v = round(rng.uniform());
  for (float& v : w) v = w_bf16 ? bf16_to_f32(f32_to_bf16(rng.uniform())) : rng.uniform();
  for (float& v : c_old) v = gc.c_bf16 ? bf16_to_f32(f32_to_bf16(rng.uniform())) : rng.uniform();
  GuardedBuffer<TA> ga(testing::SpanElements(m, k, lda), g);
  GuardedBuffer<TC> gcm(testing::SpanElements(m, n, ldc), g);
  GuardedBuffer<float> bias(n, g), res(testing::SpanElements(m, n, ldc), g);
  for (size_t i = 0; i < ga.size(); ++i) {
    if constexpr (kIsBf16<TA>) ga[i] = f32_to_bf16(a[i]); else ga[i] = a[i];
  }
  for (size_t i = 0; i < gcm.size(); ++i) {
    if constexpr (kIsBf16<TC>) gcm[i] = f32_to_bf16(c_old[i]); else gcm[i] = c_old[i];
  }
  rng.fill(bias.data(), n);
  rng.fill(res.data(), res.size());
  gc.ep.residual = res.data();
  gc.ep.ld_residual = ldc;
  gc.ep.beta = rng.below(2) ? 0.5f : 0.f;  // beta reads C: its tail too
  if (gate_up) {
    gc.ep.activation = rng.below(2) ? Activation::kSwiGlu : Activation::kGeGlu;
  } else {
    gc.ep.bias = bias.data();
    gc.ep.activation = kActivations[rng.below(5)];
  }
  PackOptions po;
  po.group = group;
  PackedWeights pw;
  if (gate_up) {
    ASSERT_EQ(pack_weights_gate_up(weights_kn(w.data(), k, n, wn), weights_kn(w.data() + n, k, n, wn), type, &pw, po),
              Status::kOk);
  } else {
    ASSERT_EQ(pack_weights(weights_kn(w.data(), k, n), type, &pw, po), Status::kOk);
  }
  ASSERT_EQ(gemm(MatrixView<const TA>{ga.data(), m, k, lda}, pw, MatrixView<TC>{gcm.data(), m, n, ldc}, gc.ep),
            Status::kOk)
      << last_error();
  gc.a_rounded = !gc.a_bf16 && pw.layout().rounds_a_to_bf16();
  gc.odd_rounded_sums = pw.layout().kind == PanelKind::kArmBfmmla;
  testing::Dequantized deq;
  if (is_quantized(type)) {
    deq = testing::Quantize(w.data(), k, wn, SourceLayout::kKN, type, group);
    gc.sum_terms = testing::QuantSumTerms(k, group);
  }
  // Kernels that multiply in integers quantize A for enough rows.
  const std::vector<float> a_seen = testing::ActivationsSeen(a, m, k, lda, pw.layout());
  testing::GemmReference ref;
  ref.compute(gc, a_seen.data(), lda, is_quantized(type) ? deq.w.data() : w.data(), c_old.data(), ldc,
              is_quantized(type) ? deq.mag.data() : nullptr);
  for (size_t i = 0; i < m; ++i) {
    for (size_t j = 0; j < n; ++j) {
      float got;
      if constexpr (kIsBf16<TC>) got = bf16_to_f32(gcm[i * ldc + j]); else got = gcm[i * ldc + j];
      ASSERT_TRUE(testing::WithinBound(std::fabs(got - ref.out[i * n + j]), ref.bound[i * n + j]))
          << "C[" << i << "][" << j << "] m=" << m << " k=" << k << " A " << (gc.a_bf16 ? "bf16" : "f32") << " C "
          << (gc.c_bf16 ? "bf16" : "f32") << " W " << weight_type_name(type) << " group " << group
          << (gate_up ? " gate_up" : "");
    }
  }
}

// The GEMM sweep: N across the tails, M = 1, 2 and 13, each K of `ks`, every
// dtype mix of A and C; `weights` picks each case's weight type, group and
// whether it is a gate/up pair, from a running count of cases.
struct WeightsCase {
  WeightType type;
  size_t group;
  bool gate_up;
};
void GemmGuardSweep(testing::Rng& rng, std::initializer_list<size_t> ks,
                    const std::function<WeightsCase(int)>& weights) {
  int variant = 0;
  GuardSweep(GuardTails(65), [&](size_t n, Guard g) {
    for (size_t m : {1, 2, 13}) {
      for (size_t k : ks) {
        const WeightsCase w = weights(variant++);
        GemmAgainstGuards<float, float>(m, n, k, g, w.type, w.gate_up, rng, w.group);
        GemmAgainstGuards<float, bf16>(m, n, k, g, w.type, w.gate_up, rng, w.group);
        GemmAgainstGuards<bf16, float>(m, n, k, g, w.type, w.gate_up, rng, w.group);
        GemmAgainstGuards<bf16, bf16>(m, n, k, g, w.type, w.gate_up, rng, w.group);
        if (::testing::Test::HasFatalFailure()) return;
      }
    }
  });
}

// fp32 and bf16 weights in turn, a gate/up pair every fifth case.
TEST_P(GuardTest, Gemm) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(4);
  GemmGuardSweep(rng, {1, 17, 33}, [](int v) {
    return WeightsCase{v & 1 ? WeightType::kBf16 : WeightType::kF32, 32, v % 5 == 0};
  });
}

// The quantized GEMM (int8 and int4 weights): M = 1 (the GEMV) and M > 1 (the
// dequantized K blocks under the vector tile), K short of a group, across
// groups and past one, every group size in turn, gate/up every fifth case.
TEST_P(GuardTest, QuantGemm) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(9);
  GemmGuardSweep(rng, {1, 33, 70}, [](int v) {
    const WeightType type = v & 1 ? WeightType::kInt4 : WeightType::kInt8;
    return WeightsCase{type, type == WeightType::kInt8 && v % 3 == 2 ? 0 : size_t{32} << (v / 2 % 3), v % 5 == 0};
  });
}

// GGUF Q8_0 / Q4_0 tensors packed from guarded memory: the last block of the
// last row ends at the guard page (after), or the first block starts right
// past it (before); rows packed or a few bytes apart (blocks then start at
// odd addresses). Packed bytes equal those packed from ordinary memory, and
// the weights multiply as the blocks' values d · q (a unit row of A reads
// each one exactly on the GEMV).
TEST_P(GuardTest, GgufSources) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(10);
  GuardSweep(GuardTails(65), [&](size_t n, Guard g) {
    for (SourceType st : {SourceType::kGgufQ8_0, SourceType::kGgufQ4_0}) {
      const WeightType type = st == SourceType::kGgufQ8_0 ? WeightType::kInt8 : WeightType::kInt4;
      for (size_t k : {32, 96}) {
        const size_t row = k / 32 * gguf_block_bytes(st), ld = row + rng.below(2) * 3;
        GuardedBuffer<unsigned char> bytes(testing::SpanElements(n, row, ld), g);
        for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<unsigned char>(rng.below(256));
        for (size_t r = 0; r < n; ++r) {
          for (size_t b = 0; b < k / 32; ++b) {  // finite half scales: exponents 1 to 30
            unsigned char* d = &bytes[r * ld + b * gguf_block_bytes(st)];
            d[1] = static_cast<unsigned char>((d[1] & 0x83) | (1 + rng.below(30)) << 2);
          }
        }
        const std::vector<unsigned char> plain = Plain(bytes);
        PackedWeights pw, pw_plain;
        ASSERT_EQ(pack_weights(weights_gguf(bytes.data(), st, n, k, ld), type, &pw), Status::kOk) << last_error();
        ASSERT_EQ(pack_weights(weights_gguf(plain.data(), st, n, k, ld), type, &pw_plain), Status::kOk);
        ASSERT_EQ(pw.bytes(), pw_plain.bytes());
        ASSERT_EQ(std::memcmp(pw.panel(0), pw_plain.panel(0), pw.bytes()), 0) << source_type_name(st) << " k=" << k;
        std::vector<float> a(k, 0.f), c(n);
        for (size_t kk : {size_t{0}, k - 1}) {
          a[kk] = 1.f;
          ASSERT_EQ(gemm(matrix<const float>(a.data(), 1, k), pw, matrix(c.data(), 1, n)), Status::kOk);
          for (size_t r = 0; r < n; ++r) {
            uint16_t d;
            int q;
            testing::GgufBlockValue(plain.data(), st, ld, r, kk, &d, &q);
            ASSERT_EQ(c[r], static_cast<float>(testing::HalfValue(d) * q))
                << source_type_name(st) << " row " << r << " k " << kk;
          }
          a[kk] = 0.f;
        }
      }
    }
  });
}

// Rows of one op against the guard pages: two rows of width n with ld = n + 3
// (the second row's tail touches the guard when it is after the end), every
// operand guarded on the same side. Checked against the same call on ordinary
// buffers, bitwise (same path, same data), and for poison left unwritten.
template <typename X, typename Y>
void RmsNormAgainstGuards(size_t n, Guard g, testing::Rng& rng, bool fused) {
  const size_t rows = 2, ld = n + 3, span = testing::SpanElements(rows, n, ld);
  GuardedBuffer<X> x(span, g), residual(span, g);
  GuardedBuffer<Y> y(span, g);
  GuardedBuffer<float> w(n, g);
  std::vector<X> x_plain(span), residual_plain(span);
  std::vector<Y> y_plain(span);
  for (size_t i = 0; i < span; ++i) {
    x[i] = x_plain[i] = testing::FromF32<X>(rng.uniform());
    residual[i] = residual_plain[i] = testing::FromF32<X>(rng.uniform());
    y[i] = y_plain[i] = testing::Poison<Y>();
  }
  for (size_t j = 0; j < n; ++j) w[j] = rng.uniform();
  const auto view = [&](auto* p) { return heads_view(p, rows, 1, n, ld); };
  if (fused) {
    ASSERT_EQ(add_rms_norm(view(static_cast<const X*>(x.data())), view(residual.data()), w.data(), view(y.data())),
              Status::kOk);
    ASSERT_EQ(add_rms_norm(view(static_cast<const X*>(x_plain.data())), view(residual_plain.data()), w.data(),
                           view(y_plain.data())),
              Status::kOk);
  } else {
    ASSERT_EQ(rms_norm(view(static_cast<const X*>(x.data())), w.data(), view(y.data())), Status::kOk);
    ASSERT_EQ(rms_norm(view(static_cast<const X*>(x_plain.data())), w.data(), view(y_plain.data())), Status::kOk);
  }
  for (size_t r = 0; r < rows; ++r) {
    for (size_t j = 0; j < n; ++j) {
      const size_t i = r * ld + j;
      ASSERT_EQ(testing::Bits(y[i]), testing::Bits(y_plain[i])) << "row " << r << " col " << j;
      ASSERT_NE(testing::Bits(y[i]), testing::Bits(testing::Poison<Y>())) << "row " << r << " col " << j;
      if (fused) ASSERT_EQ(testing::Bits(residual[i]), testing::Bits(residual_plain[i]));
    }
  }
}

TEST_P(GuardTest, RmsNorm) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(5);
  GuardSweep(GuardTails(4097), [&](size_t n, Guard g) {
    RmsNormAgainstGuards<float, float>(n, g, rng, false);
    RmsNormAgainstGuards<bf16, bf16>(n, g, rng, false);
    RmsNormAgainstGuards<float, bf16>(n, g, rng, true);
    RmsNormAgainstGuards<bf16, float>(n, g, rng, true);
  });
}

// RoPE in place on Q (two heads with a gap between them) and K (one head),
// each in its own guarded buffer, and the positions guarded too: head_dim n,
// every element rotating when n is even, all but the last when it is odd
// (partial rotary), both pairings. Bitwise equal to the same call on ordinary
// buffers, and within the fp64 bound, so a kernel that stops short fails too.
template <typename T>
void RopeAgainstGuards(size_t n, Guard g, RopePairing pairing, testing::Rng& rng) {
  RopeConfig c;
  c.head_dim = n;
  c.rotary_dim = n % 2 ? n - 1 : n;
  c.pairing = pairing;
  if (c.rotary_dim == 0) return;  // head_dim 1: nothing can rotate
  const size_t max_positions = 64, tokens = 2, q_head_stride = n + 1, q_token_stride = 2 * q_head_stride + 2,
               k_token_stride = n + 3;
  RopeTable table;
  ASSERT_EQ(make_rope_table(c, max_positions, &table), Status::kOk) << last_error();
  const size_t q_span = q_token_stride + q_head_stride + n, k_span = k_token_stride + n;
  GuardedBuffer<T> q(q_span, g), k(k_span, g);
  GuardedBuffer<int32_t> pos(tokens, g);
  std::vector<T> q_plain(q_span), k_plain(k_span);
  for (size_t i = 0; i < q_span; ++i) q[i] = q_plain[i] = testing::FromF32<T>(rng.uniform());
  for (size_t i = 0; i < k_span; ++i) k[i] = k_plain[i] = testing::FromF32<T>(rng.uniform());
  pos[0] = static_cast<int32_t>(max_positions - 1);
  pos[1] = static_cast<int32_t>(1 + rng.below(max_positions - 2));
  const std::vector<T> q_before = q_plain, k_before = k_plain;
  const auto q_view = [&](T* p) { return heads_view(p, tokens, 2, n, q_token_stride, q_head_stride); };
  const auto k_view = [&](T* p) { return heads_view(p, tokens, 1, n, k_token_stride); };
  ASSERT_EQ(rope(q_view(q.data()), k_view(k.data()), pos.data(), table), Status::kOk) << last_error();
  ASSERT_EQ(rope(q_view(q_plain.data()), k_view(k_plain.data()), pos.data(), table), Status::kOk);
  for (size_t i = 0; i < q_span; ++i) ASSERT_EQ(testing::Bits(q[i]), testing::Bits(q_plain[i])) << "q " << i;
  for (size_t i = 0; i < k_span; ++i) ASSERT_EQ(testing::Bits(k[i]), testing::Bits(k_plain[i])) << "k " << i;
  double attention;
  const std::vector<double> inv = testing::RopeReferenceInvFreq(c, max_positions, &attention);
  const size_t rot = c.rotary_dim, half = rot / 2;
  const bool interleaved = pairing == RopePairing::kInterleaved;
  const auto check = [&](const HeadsView<T>& after, const T* before, const char* name) {
    for (size_t t = 0; t < tokens; ++t) {
      for (size_t h = 0; h < after.heads; ++h) {
        const size_t row = t * after.token_stride + h * after.head_stride;
        for (size_t e = 0; e < rot; ++e) {
          const bool first = interleaved ? e % 2 == 0 : e < half;
          const size_t partner = interleaved ? (first ? e + 1 : e - 1) : (first ? e + half : e - half);
          const double angle = pos[t] * inv[interleaved ? e / 2 : e % half];
          const testing::RopeElement want =
              testing::RopeElementRef(testing::ToF32(before[row + e]), testing::ToF32(before[row + partner]),
                                      std::cos(angle), std::sin(angle), first, kIsBf16<T>);
          ASSERT_TRUE(testing::WithinBound(std::fabs(testing::ToF32(after.data[row + e]) - want.ref), want.bound))
              << name << " token " << t << " head " << h << " element " << e;
        }
        if (rot < n) {  // the pass-through element
          ASSERT_EQ(testing::Bits(after.data[row + n - 1]), testing::Bits(before[row + n - 1]));
        }
      }
    }
  };
  check(q_view(q.data()), q_before.data(), "q");
  check(k_view(k.data()), k_before.data(), "k");
}

// Emulated, head dims stop at 1025: 4095 to 4097 are the same tails (every
// vector length divides 1024 and 4096) against the same guard page, with four
// times the elements, and emulated SVE at 256 bits and more made them four
// fifths of this test's cost; the O(n) kernels above keep the page neighbours.
TEST_P(GuardTest, Rope) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(7);
  GuardSweep(GuardTails(testing::Emulated() ? 1025 : 4097), [&](size_t n, Guard g) {
    for (RopePairing pairing : {RopePairing::kHalfSplit, RopePairing::kInterleaved}) {
      RopeAgainstGuards<float>(n, g, pairing, rng);
      RopeAgainstGuards<bf16>(n, g, pairing, rng);
    }
  });
}

TEST_P(GuardTest, Softmax) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(6);
  GuardSweep(GuardTails(4097), [&](size_t n, Guard g) {
    const size_t rows = 2, ld = n + 3, span = testing::SpanElements(rows, n, ld);
    GuardedBuffer<float> x(span, g), mask(span, g), y(span, g);
    std::vector<float> y_plain(span, testing::PoisonF32()), x_plain(span), mask_plain(span);
    for (size_t i = 0; i < span; ++i) {
      x[i] = x_plain[i] = rng.uniform(-4.f, 4.f);
      mask[i] = mask_plain[i] = rng.uniform();
      y[i] = testing::PoisonF32();
    }
    SoftmaxOptions opt, opt_plain;
    opt.mask = matrix<const float>(mask.data(), rows, n, ld);
    opt_plain.mask = matrix<const float>(mask_plain.data(), rows, n, ld);
    ASSERT_EQ(softmax(matrix<const float>(x.data(), rows, n, ld), matrix(y.data(), rows, n, ld), opt), Status::kOk);
    ASSERT_EQ(softmax(matrix<const float>(x_plain.data(), rows, n, ld), matrix(y_plain.data(), rows, n, ld), opt_plain),
              Status::kOk);
    for (size_t r = 0; r < rows; ++r) {
      for (size_t j = 0; j < n; ++j) {
        ASSERT_EQ(Bits(y[r * ld + j]), Bits(y_plain[r * ld + j])) << "row " << r << " col " << j;
        ASSERT_FALSE(std::isnan(y[r * ld + j])) << "row " << r << " col " << j;
      }
    }
  });
}

template <typename T>
void FillGuarded(GuardedBuffer<T>& b, testing::Rng& rng) {
  for (size_t i = 0; i < b.size(); ++i) b[i] = testing::FromF32<T>(rng.uniform());
}

// An output written by both calls: bitwise equal, and written (no poison) in
// every row element; the padding between tokens left as it was.
template <typename T>
void ExpectSameOutput(const GuardedBuffer<T>& got, const std::vector<T>& want, size_t row, size_t stride) {
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(testing::Bits(got[i]), testing::Bits(want[i])) << "element " << i;
    const bool in_row = i % stride < row;
    ASSERT_EQ(testing::Bits(got[i]) == testing::Bits(testing::Poison<T>()), !in_row) << "element " << i;
  }
}

// Attention's operands against the guard pages: Q [T][Hq][d], K and V
// [S][Hkv][d | dv] (fp32 or bf16), out [T][Hq][dv] (fp32 or bf16) and lse
// [T·Hq], each exactly its span, token strides one wider than the rows (the
// last token's tail touches the guard when it is after the end). S across the
// tails (key tiles of 64 and their tail), d and dv across a vector's width,
// T = 1 (the row-by-row kernel) and up to 9 (the tiled one). Bitwise against
// the same call on ordinary buffers; every output element written.
template <typename TKV, typename TO>
void AttentionAgainstGuards(size_t t, size_t s, size_t d, size_t dv, Guard g, testing::Rng& rng) {
  const size_t hq = 4, hkv = 2, qs = hq * d + 1, ks = hkv * d + 1, vs = hkv * dv + 1, os = hq * dv + 1;
  GuardedBuffer<float> q(testing::SpanElements(t, hq * d, qs), g), lse(t * hq, g);
  GuardedBuffer<TKV> k(testing::SpanElements(s, hkv * d, ks), g), v(testing::SpanElements(s, hkv * dv, vs), g);
  GuardedBuffer<TO> out(testing::SpanElements(t, hq * dv, os), g);
  FillGuarded(q, rng);
  FillGuarded(k, rng);
  FillGuarded(v, rng);
  for (size_t i = 0; i < out.size(); ++i) out[i] = testing::Poison<TO>();
  for (size_t i = 0; i < lse.size(); ++i) lse[i] = testing::PoisonF32();
  const std::vector<float> q_plain = Plain(q);
  const std::vector<TKV> k_plain = Plain(k), v_plain = Plain(v);
  std::vector<TO> out_plain = Plain(out);
  std::vector<float> lse_plain = Plain(lse);
  AttentionParams p;
  p.mask.causal = true;
  const auto qv = [&](const float* x) { return heads_view(x, t, hq, d, qs); };
  const auto kv = [&](const TKV* x, size_t dim, size_t stride) { return heads_view(x, s, hkv, dim, stride); };
  ASSERT_EQ(attention(qv(q.data()), kv(k.data(), d, ks), kv(v.data(), dv, vs), heads_view(out.data(), t, hq, dv, os),
                      p, lse.data()),
            Status::kOk)
      << last_error();
  ASSERT_EQ(attention(qv(q_plain.data()), kv(k_plain.data(), d, ks), kv(v_plain.data(), dv, vs),
                      heads_view(out_plain.data(), t, hq, dv, os), p, lse_plain.data()),
            Status::kOk);
  ExpectSameOutput(out, out_plain, hq * dv, os);
  ExpectSameOutput(lse, lse_plain, lse.size(), lse.size());
}

TEST_P(GuardTest, Attention) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(7);
  const size_t dims[] = {1, 7, 16, 17, 33};
  size_t variant = 0;
  GuardSweep(GuardTails(129), [&](size_t n, Guard g) {
    for (size_t t : {size_t{1}, std::min<size_t>(n, 9)}) {
      const size_t d = dims[variant++ % 5], dv = dims[variant % 5];
      AttentionAgainstGuards<float, float>(t, n, d, dv, g, rng);
      AttentionAgainstGuards<float, bf16>(t, n, d, dv, g, rng);
      AttentionAgainstGuards<bf16, float>(t, n, d, dv, g, rng);
      AttentionAgainstGuards<bf16, bf16>(t, n, d, dv, g, rng);
      if (::testing::Test::HasFatalFailure()) return;
    }
  });
}

// kv_cache_write from guarded K and V (fp32 or bf16, into an fp32 or bf16
// cache), then attention on the cache with Q, out and lse guarded. The pool
// and the output bitwise against the same calls from ordinary buffers (the
// pool is tilekit's own buffer; its bytes around the written rows are NaN in
// both caches, so a write past a row shows up as a difference).
template <typename TSRC>
void CachedAgainstGuards(size_t t, size_t s, size_t d, size_t dv, KvDtype dtype, Guard g, testing::Rng& rng) {
  const size_t hq = 4, hkv = 2, qs = hq * d + 1, ks = hkv * d + 1, vs = hkv * dv + 1, os = hq * dv + 1;
  KvCacheConfig cfg;
  cfg.layers = 2;
  cfg.kv_heads = hkv;
  cfg.head_dim = d;
  cfg.v_head_dim = dv;
  cfg.block_tokens = 16;
  const size_t used = (s + 15) / 16;
  cfg.num_blocks = used + 1;
  cfg.dtype = dtype;
  KvCache guarded, plain;
  ASSERT_EQ(guarded.init(cfg), Status::kOk);
  ASSERT_EQ(plain.init(cfg), Status::kOk);
  std::memset(guarded.key_rows(0, 0), 0xFF, guarded.bytes());
  std::memset(plain.key_rows(0, 0), 0xFF, plain.bytes());
  for (size_t b = 0; b <= used; ++b) {  // ids 0, 1, ... in both (a table may name only allocated blocks)
    uint32_t id;
    ASSERT_EQ(guarded.allocate_block(&id), Status::kOk);
    ASSERT_EQ(plain.allocate_block(&id), Status::kOk);
  }
  std::vector<uint32_t> table(used);
  for (size_t b = 0; b < used; ++b) table[b] = static_cast<uint32_t>(used - b);  // block 0 unused, reversed order
  const KvSequence seq{table.data(), used, s};
  GuardedBuffer<TSRC> k(testing::SpanElements(s, hkv * d, ks), g), v(testing::SpanElements(s, hkv * dv, vs), g);
  FillGuarded(k, rng);
  FillGuarded(v, rng);
  const std::vector<TSRC> k_plain = Plain(k), v_plain = Plain(v);
  const auto kv = [&](const TSRC* x, size_t dim, size_t stride) { return heads_view(x, s, hkv, dim, stride); };
  ASSERT_EQ(kv_cache_write(guarded, 1, seq, 0, kv(k.data(), d, ks), kv(v.data(), dv, vs)), Status::kOk)
      << last_error();
  ASSERT_EQ(kv_cache_write(plain, 1, seq, 0, kv(k_plain.data(), d, ks), kv(v_plain.data(), dv, vs)), Status::kOk);
  ASSERT_EQ(std::memcmp(guarded.key_rows(0, 0), plain.key_rows(0, 0), plain.bytes()), 0);

  GuardedBuffer<float> q(testing::SpanElements(t, hq * d, qs), g), out(testing::SpanElements(t, hq * dv, os), g),
      lse(t * hq, g);
  FillGuarded(q, rng);
  for (size_t i = 0; i < out.size(); ++i) out[i] = testing::PoisonF32();
  for (size_t i = 0; i < lse.size(); ++i) lse[i] = testing::PoisonF32();
  const std::vector<float> q_plain = Plain(q);
  std::vector<float> out_plain = Plain(out), lse_plain = Plain(lse);
  AttentionParams p;
  p.mask.causal = true;
  ASSERT_EQ(attention(heads_view<const float>(q.data(), t, hq, d, qs), guarded, 1, seq,
                      heads_view(out.data(), t, hq, dv, os), p, lse.data()),
            Status::kOk)
      << last_error();
  ASSERT_EQ(attention(heads_view<const float>(q_plain.data(), t, hq, d, qs), plain, 1, seq,
                      heads_view(out_plain.data(), t, hq, dv, os), p, lse_plain.data()),
            Status::kOk);
  ExpectSameOutput(out, out_plain, hq * dv, os);
  ExpectSameOutput(lse, lse_plain, lse.size(), lse.size());
}

TEST_P(GuardTest, KvCacheWriteAndCachedAttention) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(8);
  const size_t dims[] = {1, 7, 16, 17, 33};
  size_t variant = 0;
  GuardSweep(GuardTails(129), [&](size_t n, Guard g) {
    for (size_t t : {size_t{1}, std::min<size_t>(n, 9)}) {
      const size_t d = dims[variant++ % 5], dv = dims[variant % 5];
      CachedAgainstGuards<float>(t, n, d, dv, KvDtype::kF32, g, rng);
      CachedAgainstGuards<float>(t, n, d, dv, KvDtype::kBf16, g, rng);
      CachedAgainstGuards<bf16>(t, n, d, dv, KvDtype::kF32, g, rng);
      CachedAgainstGuards<bf16>(t, n, d, dv, KvDtype::kBf16, g, rng);
      if (::testing::Test::HasFatalFailure()) return;
    }
  });
}

// The allocator itself: one element past either end is on the guard page.
TEST(GuardedBuffer, OnePastTheGuardedEndFaults) {
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  EXPECT_DEATH(
      {
        GuardedBuffer<float> b(5, Guard::kAfter);
        static_cast<volatile float*>(b.data())[5] = 1.f;
      },
      "");
  EXPECT_DEATH(
      {
        GuardedBuffer<float> b(5, Guard::kBefore);
        static_cast<volatile float*>(b.data())[-1] = 1.f;
      },
      "");
  GuardedBuffer<float> after(5, Guard::kAfter), before(5, Guard::kBefore);
  after[0] = after[4] = before[0] = before[4] = 1.f;  // the elements themselves are writable
}

TILEKIT_INSTANTIATE_PATHS(GuardTest);

}  // namespace
}  // namespace tilekit

// The bf16 store's rounding in one instruction against the bit rounding, call
// by call in one process: each case runs on the best path (where
// cpu::isa_converts_bf16 holds) and on the path below it (the same Highway code
// rounding on the bit pattern), alternating, ROUNDS rounds (default 15) of the
// faster of two calls each; printed: the median and quartiles of the per-round
// time ratio (below ÷ best: > 1 means the instruction is faster). Cases: GEMMs
// with a bf16 C (M = 512, N = 4096, K = 64-256, plain store and bias + SiLU;
// the M = 1 decode shapes) and attention with a bf16 output (bf16 K/V, Hq 32,
// Hkv 8, d 128, 1 thread; prefill T = S = 512, decode S = 4096). 1 thread.
//   interleaved_bf16_store            (ROUNDS=15)
#include "tilekit/tilekit.h"

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "interleaved_stats.h"

namespace {

using tilekit::bf16;
using tilekit::Isa;
using tilekit::Status;

void Check(Status s) {
  if (s != Status::kOk) {
    std::fprintf(stderr, "%s\n", tilekit::last_error());
    std::exit(1);
  }
}

std::vector<float> Random(size_t n, uint32_t seed) {
  std::vector<float> v(n);
  for (float& x : v) {
    seed = seed * 1664525u + 1013904223u;
    x = static_cast<float>(seed >> 8) / 16777216.f - 0.5f;
  }
  return v;
}

std::vector<bf16> ToBf16(const std::vector<float>& v) {
  std::vector<bf16> out(v.size());
  Check(tilekit::convert_f32_to_bf16(v.data(), out.data(), v.size()));
  return out;
}

// One call of the case on path `isa` (set_max_isa around it).
struct Case {
  std::string name;
  std::function<void()> call;
};

struct Timed {
  std::function<void()> call;
  void Run(size_t) { call(); }
};

}  // namespace

int main() {
  const Isa best = tilekit::cpu::active_isa();
  if (!tilekit::cpu::isa_converts_bf16(best)) {
    std::printf("path %s has no bf16 conversion instruction: nothing to compare\n", tilekit::isa_name(best));
    return 0;
  }
  const Isa below = best == Isa::kNeonBf16 ? Isa::kNeon : best == Isa::kSveBf16 ? Isa::kSve : Isa::kAvx512;
  const size_t rounds = tilekit_bench::EnvSize("ROUNDS", 15);

  std::vector<Case> cases;
  // GEMMs: weights packed once (both paths read the same layout).
  struct Gemm {
    size_t m, n, k;
    bool a_bf16, w_bf16, epilogue;
  };
  std::vector<Gemm> gemms;
  for (bool bf : {false, true}) {
    for (size_t k : {64, 128, 256}) {
      for (bool ep : {false, true}) gemms.push_back({512, 4096, k, bf, bf, ep});
    }
  }
  for (bool bf : {false, true}) {
    for (size_t n : {4096, 11008}) gemms.push_back({1, n, 4096, bf, true, false});
  }
  std::vector<std::vector<float>> keep_f;
  std::vector<std::vector<bf16>> keep_b;
  std::vector<tilekit::PackedWeights> packed(gemms.size());
  for (size_t i = 0; i < gemms.size(); ++i) {
    const Gemm g = gemms[i];
    keep_f.push_back(Random(g.m * g.k, 1 + i));
    keep_b.push_back(ToBf16(keep_f.back()));
    const std::vector<float> w = Random(g.k * g.n, 100 + i);
    Check(tilekit::pack_weights(tilekit::weights_kn(w.data(), g.k, g.n),
                                g.w_bf16 ? tilekit::WeightType::kBf16 : tilekit::WeightType::kF32, &packed[i]));
    keep_f.push_back(Random(g.n, 200 + i));  // bias
    const float* a = keep_f[keep_f.size() - 2].data();
    const bf16* ab = keep_b.back().data();
    const float* bias = keep_f.back().data();
    keep_b.emplace_back(g.m * g.n);
    bf16* c = keep_b.back().data();
    const tilekit::PackedWeights* pw = &packed[i];
    const tilekit::Epilogue ep =
        g.epilogue ? tilekit::Epilogue().with_bias(bias).with(tilekit::Activation::kSilu) : tilekit::Epilogue();
    cases.push_back({std::string("gemm ") + (g.a_bf16 ? "bf16" : "f32") + " A, " + (g.w_bf16 ? "bf16" : "f32") +
                         " W, bf16 C, " + std::to_string(g.m) + "x" + std::to_string(g.n) + "x" +
                         std::to_string(g.k) + (g.epilogue ? " bias+silu" : " plain"),
                     [=] {
                       if (g.a_bf16) {
                         Check(tilekit::gemm(tilekit::matrix(ab, g.m, g.k), *pw, tilekit::matrix(c, g.m, g.n), ep));
                       } else {
                         Check(tilekit::gemm(tilekit::matrix(a, g.m, g.k), *pw, tilekit::matrix(c, g.m, g.n), ep));
                       }
                     }});
  }
  // Attention, bf16 K/V and output, causal prefill and one decode token.
  const size_t hq = 32, hkv = 8, d = 128;
  for (const auto& [t, s] : {std::pair<size_t, size_t>{512, 512}, std::pair<size_t, size_t>{1, 4096}}) {
    keep_f.push_back(Random(t * hq * d, 7));
    const float* q = keep_f.back().data();
    keep_b.push_back(ToBf16(Random(s * hkv * d, 8)));
    const bf16* k = keep_b.back().data();
    keep_b.push_back(ToBf16(Random(s * hkv * d, 9)));
    const bf16* v = keep_b.back().data();
    keep_b.emplace_back(t * hq * d);
    bf16* o = keep_b.back().data();
    const size_t tt = t, ss = s;
    cases.push_back({"attention bf16 K/V and output, T=" + std::to_string(t) + " S=" + std::to_string(s),
                     [=] {
                       tilekit::AttentionParams p;
                       p.mask.causal = tt > 1;
                       Check(tilekit::attention(tilekit::heads_view<const float>(q, tt, hq, d),
                                                tilekit::heads_view<const bf16>(k, ss, hkv, d),
                                                tilekit::heads_view<const bf16>(v, ss, hkv, d),
                                                tilekit::heads_view(o, tt, hq, d), p));
                     }});
  }

  std::printf("%s (instruction) against %s (bit rounding), %zu rounds, 1 thread\n", tilekit::isa_name(best),
              tilekit::isa_name(below), rounds);
  std::printf("%-62s %10s %10s %8s %17s\n", "case", "best ms", "below ms", "ratio", "quartiles");
  for (Case& c : cases) {
    Timed native{[&] {
      Check(tilekit::set_max_isa(best));
      c.call();
    }};
    Timed bits{[&] {
      Check(tilekit::set_max_isa(below));
      c.call();
    }};
    tilekit_bench::CallTimer timer(1);
    std::vector<double> tn, tb, ratio;
    for (size_t r = 0; r < rounds; ++r) {
      // Alternate which side goes first, so neither always follows the other.
      const double a = r % 2 ? timer.BestOf2(bits) : timer.BestOf2(native);
      const double b = r % 2 ? timer.BestOf2(native) : timer.BestOf2(bits);
      tn.push_back(r % 2 ? b : a);
      tb.push_back(r % 2 ? a : b);
      ratio.push_back(tb.back() / tn.back());
    }
    std::printf("%-62s %10.3f %10.3f %8.3f   [%.3f, %.3f]\n", c.name.c_str(), 1e3 * tilekit_bench::Quantile(tn, 0.5),
                1e3 * tilekit_bench::Quantile(tb, 0.5), tilekit_bench::Quantile(ratio, 0.5),
                tilekit_bench::Quantile(ratio, 0.25), tilekit_bench::Quantile(ratio, 0.75));
    std::fflush(stdout);
  }
  tilekit::clear_max_isa();
  return 0;
}

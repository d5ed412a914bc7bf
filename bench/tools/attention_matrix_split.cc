// The matrix flow's per-tile steps other than its tile products
// (attention/tiled_brgemm-inl.h), timed on this CPU's AVX3 target: what the
// AMX backend runs around its products, where no AMX is at hand to time the
// whole (an x86 CPU with AVX-512 BF16 is enough). Also checks the vector P
// transpose, Qᵀ and V panels (AMX's instantiation of the shared packers; the
// Arm tests run BFMMLA's) against the scalar rounding and the panel layout. A task of 128 rows
// (Hq 32 / Hkv 8: 32 tokens × 4), a tile of 64 keys, d = dv = 128, AMX's
// layout (nr 32, VNNI pairs). Medians of 15 rounds.
//
// Not built by CMake (it compiles the kernels for the static target only, in
// its own translation unit); by hand, from the repository root:
//   g++ -O2 -std=c++17 -march=skylake-avx512 -mavx512bf16 -DHWY_COMPILE_ONLY_STATIC -Iinclude \
//     bench/tools/attention_matrix_split.cc -o /tmp/attention_matrix_split -lhwy -lcpuinfo -lpthread
#define HWY_TARGET_INCLUDE "tilekit/implementation-inl.h"
#include "tilekit/implementation.h"
#include <chrono>
#include <cstdio>
#include <vector>
#include <algorithm>
using namespace tilekit;
using namespace tilekit::detail;
using namespace tilekit::detail::HWY_NAMESPACE;
namespace hn = hwy::HWY_NAMESPACE;
template <class F> double Median(F f, int reps = 2000) {
  std::vector<double> t;
  for (int k = 0; k < 15; ++k) {
    auto a = std::chrono::steady_clock::now();
    for (int i = 0; i < reps; ++i) f();
    auto b = std::chrono::steady_clock::now();
    t.push_back(std::chrono::duration<double, std::micro>(b - a).count() / reps);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}
int main() {
  const hn::ScalableTag<float> df;
  const size_t rows = 128, d = 128, dv = 128, n = 64, G = 4, hkv = 8, nr = 32, KR = 2;
  const AttnMatrixWs w = AttnMatrixLayout(rows, d, dv, nr, 32);
  std::vector<float> wsv(w.total + 64);
  float* ws = wsv.data();
  std::vector<float> q(32 * hkv * G * d);
  for (size_t i = 0; i < q.size(); ++i) q[i] = (i % 17) * 0.1f - 0.8f;
  std::vector<uint16_t> kv(1024 * hkv * d);
  for (size_t i = 0; i < kv.size(); ++i) kv[i] = f32_to_bf16((i % 13) * 0.1f - 0.6f).bits;
  AttnShape sh; sh.group = G; sh.hq = G * hkv; sh.hkv = hkv; sh.d = d; sh.dv = dv; sh.scale = 0.088f; sh.isa = Isa::kAmx;
  AttnSeq sq; sq.q = q.data(); sq.q_stride = hkv * G * d; sq.t = 32; sq.s = 1024;
  uint16_t* qp = reinterpret_cast<uint16_t*>(ws + w.qpanels);
  float* st = ws + w.st; float* m = ws + w.m; float* l = ws + w.l; float* alpha = ws + w.alpha; float* lo = ws + w.lo; float* hi = ws + w.hi;
  uint16_t* pt = reinterpret_cast<uint16_t*>(ws + w.pt); uint16_t* p = reinterpret_cast<uint16_t*>(ws + w.p);
  uint16_t* vp = reinterpret_cast<uint16_t*>(ws + w.vpanels); float* o = ws + w.o; uint32_t* sp = reinterpret_cast<uint32_t*>(ws + w.special);
  for (size_t r = 0; r < w.R; ++r) { m[r] = -1e30f; l[r] = 0; lo[r] = 0; hi[r] = 1024; }
  for (size_t i = 0; i < n * w.R; ++i) st[i] = (i % 29) * 0.05f - 0.7f;
  const double tq = Median([&] { PackQPanels<2>(df, sh, sq, 1, 0, rows, w.R, w.dp, nr, reinterpret_cast<uint16_t*>(ws + w.kop), qp); }, 500);
  const double tsm = Median([&] {
    for (size_t r = 0; r < w.R; ++r) m[r] = 3.f;
    SoftmaxTile(df, sh, sq, 0, rows, w.R, 0, n, lo, hi, st, m, l, alpha);
  });
  for (size_t i = 0; i < n * w.R; ++i) st[i] = (i % 29) * 0.01f;
  const double tp = Median([&] { PRowsBf16(df, st, w.R, rows, n, n, pt, p); });
  for (size_t nn : {64, 63, 33, 1}) {  // the transposed rows against scalar rounding
    PRowsBf16(df, st, w.R, rows, nn, (nn + 31) / 32 * 32, pt, p);
    for (size_t r = 0; r < rows; ++r)
      for (size_t j = 0; j < (nn + 31) / 32 * 32; ++j) {
        const uint16_t want = j < nn ? f32_to_bf16(st[j * w.R + r]).bits : 0;
        if (p[r * 64 + j] != want) { std::printf("P mismatch n=%zu r=%zu j=%zu\n", nn, r, j); return 1; }
      }
  }
  {  // Q panels against the element formula
    PackQPanels<2>(df, sh, sq, 1, 0, 100, w.R, w.dp, nr, reinterpret_cast<uint16_t*>(ws + w.kop), qp);
    for (size_t r = 0; r < w.R; ++r)
      for (size_t c = 0; c < w.dp; ++c) {
        const float* src = sq.q + (r / G) * sq.q_stride + (1 * G + r % G) * d;
        const uint16_t want = r < 100 && c < d ? f32_to_bf16(src[c] * sh.scale).bits : 0;
        const uint16_t got = qp[(r / nr) * w.dp * nr + (c / 2) * nr * 2 + (r % nr) * 2 + c % 2];
        if (got != want) { std::printf("Q mismatch r=%zu c=%zu\n", r, c); return 1; }
      }
  }
  {  // V panels (VNNI pairs) against the element formula, a non-finite row included
    std::vector<uint16_t> v2(kv.begin(), kv.begin() + 64 * hkv * dv);
    v2[5 * hkv * dv + 7] = 0x7FC0;  // key 5: a NaN
    for (size_t nn : {64, 37, 1}) {
      const size_t kp = (nn + 31) / 32 * 32;
      const size_t count = PackVPanels<2>(df, v2.data(), hkv * dv, nn, kp, 100, w.dvp, nr, vp, sp);
      if (count != (nn > 5 ? 1u : 0u) || (count && sp[0] != 5)) { std::printf("V special keys wrong n=%zu\n", nn); return 1; }
      for (size_t j = 0; j < kp; ++j)
        for (size_t c = 0; c < w.dvp; ++c) {
          const uint16_t want = j < nn && j != 5 && c < 100 ? v2[j * hkv * dv + c] : 0;
          const uint16_t got = vp[(c / nr) * kp * nr + (j / 2) * nr * 2 + (c % nr) * 2 + j % 2];
          if (got != want) { std::printf("V mismatch n=%zu j=%zu c=%zu\n", nn, j, c); return 1; }
        }
    }
  }
  std::printf("P rows, Qᵀ and V panels match the scalar rounding and the panel layout\n");
  const double tv = Median([&] { PackVPanels<2>(df, kv.data() + 128, hkv * dv, n, n, dv, w.dvp, nr, vp, sp); });
  const double ta = Median([&] {
    for (size_t r = 0; r < rows; ++r) {
      const auto va = hn::Set(df, 0.99f);
      float* orow = o + r * w.dvp;
      for (size_t c = 0; c < w.dvp; c += hn::Lanes(df)) hn::StoreU(hn::Mul(hn::LoadU(df, orow + c), va), df, orow + c);
    }
  });
  // The peer in the same run: the fp32 tiled kernel (what bf16 K/V run on
  // avx512_bf16, and on amx before this flow) over the same task, S = 1024.
  sq.kv.k = reinterpret_cast<const unsigned char*>(kv.data());
  sq.kv.v = sq.kv.k;
  sq.kv.k_stride = sq.kv.v_stride = hkv * d * sizeof(uint16_t);
  sq.kv.bf16 = true;
  std::vector<float> ws2(AttnWorkspaceFloats(rows, d, dv)), acc(rows * dv), mo(rows), lo2(rows);
  const double tf = Median([&] { AttendTiled<decltype(df), uint16_t>(df, sh, sq, 1, 0, 32, 0, 1024, acc.data(), mo.data(), lo2.data(), ws2.data()); }, 20) / 16;
  std::printf("fp32 tiled kernel on the same task: %.2f us per tile\n", tf);
  const double flops = 2.0 * 2 * rows * n * d;
  std::printf("per tile (rows %zu, keys %zu, d = dv = %zu), us: softmax %.2f, P round+transpose %.2f, V pack %.2f, alpha %.2f; Q pack per task %.2f (%.3f per tile at S = 1024)\n",
              rows, n, d, tsm, tp, tv, ta, tq, tq / 16);
  std::printf("tile products: %.1f MFLOP = %.2f us at 1.6 TFLOP/s\n", flops / 1e6, flops / 1.6e12 * 1e6);
  return 0;
}

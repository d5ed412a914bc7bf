// What the GEMM's inner loops reach on this machine outside the library: the
// BLIS loops of a 256 × 4096 × 4096 GEMM written out with plain intrinsics,
// with no planner, threads, tails or epilogue, timed against the compute
// ceiling of compute_peak.h measured in the same round. They bound what any
// change to tilekit's blocking or tile shape can gain here, so the goals the
// GEMM issues state against the peak can be read against them.
//
//   loop_ceilings [rounds]        (default 15; x86-64 with AVX-512, AMX if granted)
//
// fp32 (one thread; A packed per tile as [K][mr], B in 32-column panels
// [panel][K][32], kc × nr slices in L1, partial sums in L2, as gemm/loops-inl.h):
//   12x32  the library's tile: 12 rows × 2 vectors, A broadcast by each FMA
//          from memory ({1to16}), kc 192 (a slice fills half of L1)
//   6x64   a wider tile: 6 rows × 4 vectors over two adjacent panels, one
//          broadcast per row feeding 4 FMAs; half the A traffic per FMA, kc 96
// AMX (one thread; the 2 × 2 micro-tile of arch/amx_brgemm.h, K blocks of 8
// steps = 256, 8 micro-tiles of 32 rows, 16 panels, B slices 16 KiB each):
//   gemm      the GEMM's loop: C loaded from and stored to the partial sums
//             (in L2) around each K block, A from L2, each panel's B slice
//             read by 8 micro-tiles
//   no-C      the same without the partial sums (C stays in tiles): the bound
//             of the loop's operand traffic alone
//   L1        one micro-tile over one slice: A and B both in L1, no C traffic
// Each line prints the median and quartiles over rounds of (loop GFLOP/s) /
// (the ceiling measured just before that loop).
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "compute_peak.h"
#include "interleaved_stats.h"
#include "timed_ceiling.h"
#include "tilekit/arch/amx.h"
#include "tilekit/arch/amx_brgemm.h"
#include "tilekit/cpu/features.h"

namespace {

using tilekit_bench::Quantile;
using tilekit_bench::TimedCeiling;

template <typename Fn>
double Seconds(const Fn& fn) {
  const double t0 = tilekit_bench::Now();
  fn();
  return tilekit_bench::Now() - t0;
}

// --- fp32 --------------------------------------------------------------------

constexpr size_t kM = 256, kN = 4096, kK = 4096, kPanels = kN / 32;

// c0 += a[0] · b0, c1 += a[0] · b1 with a broadcast from memory, as
// MulAddBroadcast in gemm-inl.h.
#define LC_FMA2(AP, B0, B1, C0, C1)                                              \
  asm("vfmadd231ps %[a]%{1to16%}, %[b0], %[c0]\n\tvfmadd231ps %[a]%{1to16%}, %[b1], %[c1]" \
      : [c0] "+v"(C0), [c1] "+v"(C1)                                             \
      : [b0] "v"(B0), [b1] "v"(B1), [a] "m"(*(AP)))
#define LC_ROWS12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

// 12 × 32 over kc steps (named accumulators: arrays bound to asm operands spill).
__attribute__((target("avx512f"), noinline)) void Tile12x32(size_t kc, const float* a, const float* b,
                                                            float* partial, bool first) {
#define LC_DECL(R) __m512 c##R##0, c##R##1;
#define LC_LOAD(R)                                                        \
  c##R##0 = first ? _mm512_setzero_ps() : _mm512_loadu_ps(partial + R * 32); \
  c##R##1 = first ? _mm512_setzero_ps() : _mm512_loadu_ps(partial + R * 32 + 16);
#define LC_STEP(R) LC_FMA2(a + k * 12 + R, b0, b1, c##R##0, c##R##1);
#define LC_SAVE(R)                                \
  _mm512_storeu_ps(partial + R * 32, c##R##0);    \
  _mm512_storeu_ps(partial + R * 32 + 16, c##R##1);
  LC_ROWS12(LC_DECL)
  LC_ROWS12(LC_LOAD)
  for (size_t k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_loadu_ps(b + k * 32), b1 = _mm512_loadu_ps(b + k * 32 + 16);
    LC_ROWS12(LC_STEP)
  }
  LC_ROWS12(LC_SAVE)
#undef LC_DECL
#undef LC_LOAD
#undef LC_STEP
#undef LC_SAVE
}

// 6 × 64: panels p and p + 1 (kK · 32 floats apart) at once.
__attribute__((target("avx512f"), noinline)) void Tile6x64(size_t kc, const float* a, const float* b,
                                                           float* partial, bool first) {
  __m512 c[6][4];
  for (int r = 0; r < 6; ++r) {
    for (int j = 0; j < 4; ++j) c[r][j] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(partial + r * 64 + j * 16);
  }
  for (size_t k = 0; k < kc; ++k) {
    __m512 bv[4];
    for (int j = 0; j < 4; ++j) bv[j] = _mm512_loadu_ps(b + (j / 2) * kK * 32 + k * 32 + (j % 2) * 16);
#pragma GCC unroll 6
    for (int r = 0; r < 6; ++r) {
      const __m512 av = _mm512_set1_ps(a[k * 6 + r]);
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) c[r][j] = _mm512_fmadd_ps(av, bv[j], c[r][j]);
    }
  }
  for (int r = 0; r < 6; ++r) {
    for (int j = 0; j < 4; ++j) _mm512_storeu_ps(partial + r * 64 + j * 16, c[r][j]);
  }
}

struct Fp32Operands {
  std::vector<float> a, b, packed_a, partials;
  Fp32Operands() : a(kM * kK), b(kPanels * kK * 32), packed_a((kM + 12) * kK), partials(size_t{8} << 20) {
    for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<float>(i % 7) * 0.125f;
    for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<float>(i % 5) * 0.25f;
  }
  // Tiles of mr rows, tile t at t · kK · mr, [K][mr].
  void PackA(size_t mr) {
    for (size_t t = 0; t * mr < kM; ++t) {
      for (size_t k = 0; k < kK; ++k) {
        for (size_t r = 0; r < mr; ++r) packed_a[(t * kK + k) * mr + r] = a[std::min(kM - 1, t * mr + r) * kK + k];
      }
    }
  }
};

// The loops of gemm-inl.h (blocked order: nc panels per group, K blocks of kc,
// panels, tiles); `width` panels per tile call.
template <size_t kMR>
double Fp32Gemm(Fp32Operands& o, size_t kc, size_t nc, size_t width,
                void (*tile)(size_t, const float*, const float*, float*, bool)) {
  o.PackA(kMR);
  const size_t tiles = (kM + kMR - 1) / kMR;
  const double s = Seconds([&] {
    for (size_t jc = 0; jc < kPanels; jc += nc) {
      const size_t jc_end = std::min(kPanels, jc + nc);
      for (size_t pc = 0; pc < kK; pc += kc) {
        for (size_t pb = jc; pb < jc_end; pb += width) {
          const float* b = o.b.data() + (pb * kK + pc) * 32;
          for (size_t t = 0; t < tiles; ++t) {
            float* partial = o.partials.data() + ((pb - jc) / width * tiles + t) * kMR * 32 * width;
            tile(std::min(kc, kK - pc), o.packed_a.data() + (t * kK + pc) * kMR, b, partial, pc == 0);
          }
        }
      }
    }
  });
  return 2.0 * kM * kN * kK / s / 1e9;
}

// --- AMX ---------------------------------------------------------------------

constexpr size_t kAmxSteps = 8, kAmxKSteps = 64, kAmxTiles = 8, kAmxPanels = 16;
constexpr size_t kStepBytes = tilekit::arch::kBStepBytes;  // one K step of a micro-tile's A (two tiles) or of B
constexpr size_t kCTileStride = 32 * sizeof(float);  // the GEMM's partial sums: 32 fp32 per row (gemm/amx_gemm.h)

struct AmxOperands {
  unsigned char* a;  // per K block, per micro-tile: 8 steps × two 1 KiB A tiles
  unsigned char* b;  // per panel, per step: 16 pair rows of 128 bytes
  float* partials;   // per panel, per micro-tile: 32 × 32 fp32
  AmxOperands()
      : a(Alloc(kAmxKSteps * kAmxTiles * kStepBytes)),
        b(Alloc(kAmxPanels * kAmxKSteps * kStepBytes)),
        partials(reinterpret_cast<float*>(Alloc(kAmxPanels * kAmxTiles * 4096))) {}
  ~AmxOperands() {
    std::free(a);
    std::free(b);
    std::free(partials);
  }
  static unsigned char* Alloc(size_t bytes) {
    auto* p = static_cast<unsigned char*>(std::aligned_alloc(4096, bytes));
    std::memset(p, 0x3C, bytes);  // bf16 pairs of ~0.01: no overflow, no denormals
    return p;
  }
};

enum class AmxLoop { kGemm, kNoC, kL1 };

// The library's own micro-tile (arch/amx_brgemm.h) in the loops of
// gemm/amx_gemm.h, without its packing, prefetch, tails or epilogue.
TILEKIT_AMX_TARGET double AmxGemm(AmxOperands& o, AmxLoop loop, int reps) {
  using namespace tilekit::arch;
  TileConfig cfg;
  for (int t = 0; t < 8; ++t) cfg.set(t, 16, 64);
  load_tile_config(cfg);
  const bool c_traffic = loop == AmxLoop::kGemm, l1 = loop == AmxLoop::kL1;
  ZeroCTiles<2, 2>();  // the no-C loops accumulate over every call
  double flops = 0;
  const double s = Seconds([&] {
    for (int r = 0; r < reps; ++r) {
      for (size_t pc = 0; pc < kAmxKSteps; pc += kAmxSteps) {
        for (size_t p = 0; p < kAmxPanels; ++p) {
          const unsigned char* b = o.b + (l1 ? 0 : (p * kAmxKSteps + pc) * kStepBytes);
          for (size_t it = 0; it < kAmxTiles; ++it) {
            float* c = o.partials + (p * kAmxTiles + it) * 32 * 32;
            if (c_traffic) LoadCTiles<2, 2>(c, kCTileStride);
            const unsigned char* a = o.a + (l1 ? 0 : (pc * kAmxTiles + it * kAmxSteps) * kStepBytes);
            TileKLoop<2, 2>(ATiles{a, kTileBytes, kTileRows * kTileBytes, kStepBytes}, b, kAmxSteps, L2Prefetch());
            if (c_traffic) StoreCTiles<2, 2>(c, kCTileStride);
            flops += 32.0 * 32 * 32 * kAmxSteps * 2;
          }
        }
      }
    }
  });
  _tile_release();
  return flops / s / 1e9;
}

void Print(const char* name, const std::vector<double>& shares) {
  std::printf("  %-28s median %.2f  [%.2f, %.2f] of the same-round peak\n", name, Quantile(shares, 0.5),
              Quantile(shares, 0.25), Quantile(shares, 0.75));
}

}  // namespace

int main(int argc, char** argv) {
  const tilekit::cpu::Features& f = tilekit::cpu::features();
  if (!f.avx512f) {
    std::fprintf(stderr, "loop_ceilings: needs AVX-512\n");
    return 1;
  }
  const int rounds = argc > 1 ? std::max(1, std::atoi(argv[1])) : 15;
  std::printf("loop_ceilings: %d rounds, 1 thread\n", rounds);

  // Each loop against the ceiling measured just before it (~10 ms: half the
  // ceiling's own iterations): the machine's phases last from milliseconds to
  // minutes.
  const std::vector<tilekit_bench::ComputePeak> peaks = tilekit_bench::ComputePeaks();
  TimedCeiling fma_ceiling(*tilekit_bench::FindPeak(peaks, "fma_avx512"), 1, int64_t{1} << 22);
  Fp32Operands fp32;
  std::vector<double> fma, tile12, tile6;
  for (int r = 0; r < rounds; ++r) {
    fma.push_back(fma_ceiling.Gflops());
    tile12.push_back(Fp32Gemm<12>(fp32, 192, 15, 1, &Tile12x32) / fma.back());
    fma.push_back(fma_ceiling.Gflops());
    tile6.push_back(Fp32Gemm<6>(fp32, 96, 16, 2, &Tile6x64) / fma.back());
  }
  std::printf("fp32 %zu x %zu x %zu, FMA peak %.1f GFLOP/s (median)\n", kM, kN, kK, Quantile(fma, 0.5));
  Print("12x32 (tilekit's tile)", tile12);
  Print("6x64 (two panels)", tile6);

  if (!f.amx()) {
    std::printf("AMX: not available or not granted by the OS; skipped\n");
    return 0;
  }
  TimedCeiling amx_ceiling(*tilekit_bench::FindPeak(peaks, "amx_tdpbf16ps"), 1, int64_t{1} << 18);
  AmxOperands amx;
  std::vector<double> amx_peak, gemm, no_c, l1;
  const auto share = [&](AmxLoop loop) {
    amx_peak.push_back(amx_ceiling.Gflops());
    return AmxGemm(amx, loop, 40) / amx_peak.back();
  };
  for (int r = 0; r < rounds; ++r) {
    gemm.push_back(share(AmxLoop::kGemm));
    no_c.push_back(share(AmxLoop::kNoC));
    l1.push_back(share(AmxLoop::kL1));
  }
  std::printf("AMX 2x2 micro-tile loop, peak %.1f GFLOP/s (median)\n", Quantile(amx_peak, 0.5));
  Print("gemm (C partial sums)", gemm);
  Print("no-C (C stays in tiles)", no_c);
  Print("L1 (A and B in L1, no C)", l1);
  return 0;
}

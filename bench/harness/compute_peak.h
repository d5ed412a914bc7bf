// Compute-ceiling kernels: the "measured peak" the GEMM goals are stated
// against (fp32 FMA, AVX512-BF16 dot products, AMX tiles), registers or tiles
// only, no memory. bench_ceilings runs them as benchmarks; interleaved_onednn
// runs the one matching its dtype in every round beside the GEMMs, so "percent
// of peak" is a per-round ratio that survives this machine's slow phases.
// Kernels carry their own target attributes: include anywhere, call only what
// ComputePeaks() lists for this CPU.
#ifndef TILEKIT_BENCH_COMPUTE_PEAK_H_
#define TILEKIT_BENCH_COMPUTE_PEAK_H_

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "tilekit/arch/amx.h"
#include "tilekit/cpu/features.h"

#if TILEKIT_ARCH_X86
#include <immintrin.h>
#endif

namespace tilekit_bench {

#if TILEKIT_ARCH_X86
// FMA: 2 ports × 4 cycles latency = 8 FMAs in flight per core; 16 independent
// accumulators cover that with margin (and fit in the 32 zmm registers).
constexpr int kFmaAccumulators = 16;

__attribute__((target("avx512f"))) inline float FmaAvx512(int64_t iters) {
  __m512 acc[kFmaAccumulators];
  for (int j = 0; j < kFmaAccumulators; ++j) acc[j] = _mm512_set1_ps(1.0f + j);
  // acc = acc·(1-1e-7) + 1e-7 converges to 1: no overflow, no denormals.
  const __m512 mul = _mm512_set1_ps(0.9999999f), add = _mm512_set1_ps(1e-7f);
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 16
    for (int j = 0; j < kFmaAccumulators; ++j) acc[j] = _mm512_fmadd_ps(acc[j], mul, add);
  }
  for (int j = 1; j < kFmaAccumulators; ++j) acc[0] = _mm512_add_ps(acc[0], acc[j]);
  return _mm512_reduce_add_ps(acc[0]);
}
constexpr double kFmaAvx512Flops = kFmaAccumulators * 16 * 2;  // per iteration

// AVX2: 16 ymm registers; 12 accumulators cover 2 ports × up to 5 cycles.
constexpr int kFmaAvx2Accumulators = 12;

__attribute__((target("avx2,fma"))) inline float FmaAvx2(int64_t iters) {
  __m256 acc[kFmaAvx2Accumulators];
  for (int j = 0; j < kFmaAvx2Accumulators; ++j) acc[j] = _mm256_set1_ps(1.0f + j);
  const __m256 mul = _mm256_set1_ps(0.9999999f), add = _mm256_set1_ps(1e-7f);
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 12
    for (int j = 0; j < kFmaAvx2Accumulators; ++j) acc[j] = _mm256_fmadd_ps(acc[j], mul, add);
  }
  for (int j = 1; j < kFmaAvx2Accumulators; ++j) acc[0] = _mm256_add_ps(acc[0], acc[j]);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, acc[0]);
  return lanes[0] + lanes[7];
}
constexpr double kFmaAvx2Flops = kFmaAvx2Accumulators * 8 * 2;

// vdpbf16ps: each lane adds two bf16 products, 16 lanes → 64 FLOP. Same
// accumulator budget as FMA (it issues on the FMA ports).
__attribute__((target("avx512f,avx512bf16"))) inline float DotBf16(int64_t iters) {
  __m512 acc[kFmaAccumulators];
  for (int j = 0; j < kFmaAccumulators; ++j) acc[j] = _mm512_setzero_ps();
  // 2^-10 × 2^-10 per product: acc grows by 2^-19 per instruction, exactly
  // representable for the ~2^21 iterations a benchmark iteration runs.
  const __m512bh x = (__m512bh)_mm512_set1_epi16(0x3A80);
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 16
    for (int j = 0; j < kFmaAccumulators; ++j) acc[j] = _mm512_dpbf16_ps(acc[j], x, x);
  }
  for (int j = 1; j < kFmaAccumulators; ++j) acc[0] = _mm512_add_ps(acc[0], acc[j]);
  return _mm512_reduce_add_ps(acc[0]);
}
constexpr double kDotBf16Flops = kFmaAccumulators * 16 * 2 * 2;

// AMX: the 2×2 register blocking a GEMM micro-kernel uses (tmm0-3 accumulate
// C, tmm4-5 hold A rows, tmm6-7 hold B columns), so four independent
// tdpbf16ps are in flight. Each is 16×16 outputs × 32 bf16 products. The
// configuration goes through tilekit's own load_tile_config (arch/amx.h):
// GCC 12's _tile_loadconfig may drop the stores that build it, and its
// _tile_loadd does not order the operand's fill before the loads.
TILEKIT_AMX_TARGET inline float AmxBf16(int64_t iters) {
  tilekit::arch::TileConfig cfg;
  for (int t = 0; t < 8; ++t) cfg.set(t, 16, 64);  // 16 fp32 (C) or 32 bf16 (A, B in VNNI pairs) per row
  alignas(64) uint16_t operand[16 * 32];
  std::fill_n(operand, 16 * 32, uint16_t{0x3A80});  // 2^-10: C grows slowly, never overflows
  alignas(64) float c[16 * 16];
  tilekit::arch::load_tile_config(cfg);
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  _tile_loadd(4, operand, 64);
  _tile_loadd(5, operand, 64);
  _tile_loadd(6, operand, 64);
  _tile_loadd(7, operand, 64);
  for (int64_t i = 0; i < iters; ++i) {
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  _tile_stored(0, c, 64);
  _tile_release();
  return c[0];
}
constexpr double kAmxFlops = 4 * 16 * 16 * 32 * 2;

// vpdpbusd: each lane adds four u8 × s8 products into int32, 16 lanes → 128
// integer ops. Same accumulator budget as FMA.
__attribute__((target("avx512f,avx512vnni"))) inline float DotVnni(int64_t iters) {
  __m512i acc[kFmaAccumulators];
  for (int j = 0; j < kFmaAccumulators; ++j) acc[j] = _mm512_setzero_si512();
  const __m512i x = _mm512_set1_epi8(1);  // each instruction adds 4 per lane: no overflow for 2^28 iterations
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 16
    for (int j = 0; j < kFmaAccumulators; ++j) acc[j] = _mm512_dpbusd_epi32(acc[j], x, x);
  }
  for (int j = 1; j < kFmaAccumulators; ++j) acc[0] = _mm512_add_epi32(acc[0], acc[j]);
  return static_cast<float>(_mm512_reduce_add_epi32(acc[0]));
}
constexpr double kDotVnniOps = kFmaAccumulators * 16 * 4 * 2;

// AMX-INT8: the 2×2 tile blocking of AmxBf16 with tdpbssd, 16×16 outputs ×
// 64 int8 products each.
__attribute__((target("amx-tile,amx-int8,avx512f"))) inline float AmxInt8(int64_t iters) {
  tilekit::arch::TileConfig cfg;
  for (int t = 0; t < 8; ++t) cfg.set(t, 16, 64);  // 16 int32 (C) or 64 int8 (A, B in quadruples) per row
  alignas(64) int8_t operand[16 * 64];
  std::fill_n(operand, 16 * 64, int8_t{1});
  alignas(64) int32_t c[16 * 16];
  tilekit::arch::load_tile_config(cfg);
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  _tile_loadd(4, operand, 64);
  _tile_loadd(5, operand, 64);
  _tile_loadd(6, operand, 64);
  _tile_loadd(7, operand, 64);
  for (int64_t i = 0; i < iters; ++i) {
    _tile_dpbssd(0, 4, 6);
    _tile_dpbssd(1, 4, 7);
    _tile_dpbssd(2, 5, 6);
    _tile_dpbssd(3, 5, 7);
  }
  _tile_stored(0, c, 64);
  _tile_release();
  return static_cast<float>(c[0]);
}
constexpr double kAmxInt8Ops = 4 * 16 * 16 * 64 * 2;

#endif  // TILEKIT_ARCH_X86

using ComputeFn = float (*)(int64_t iters);
struct ComputePeak {
  std::string name;
  const char* dtype;  // "f32", "bf16" or "int8": the GEMM dtype family it bounds
  std::string what;
  ComputeFn fn;
  int64_t iters;  // ~20 ms per call on this machine
  double flops_per_iter;
};

// The compute ceilings this CPU (and, for AMX, the OS) allows, widest FMA
// first; features() has already asked Linux for the AMX tile state.
inline std::vector<ComputePeak> ComputePeaks() {
  std::vector<ComputePeak> peaks;
#if TILEKIT_ARCH_X86
  const tilekit::cpu::Features& f = tilekit::cpu::features();
  if (f.avx512f) {
    peaks.push_back({"fma_avx512", "f32", "vfmadd zmm x16 accumulators", &FmaAvx512, int64_t{1} << 23,
                     kFmaAvx512Flops});
  } else if (f.avx2 && f.fma) {
    peaks.push_back({"fma_avx2", "f32", "vfmadd ymm x12 accumulators", &FmaAvx2, int64_t{1} << 23, kFmaAvx2Flops});
  }
  if (f.avx512f && f.avx512_bf16) {
    peaks.push_back({"vdpbf16ps", "bf16", "vdpbf16ps zmm x16 accumulators", &DotBf16, int64_t{1} << 21,
                     kDotBf16Flops});
  }
  if (f.amx()) {
    peaks.push_back({"amx_tdpbf16ps", "bf16", "tdpbf16ps 2x2 tiles (4 accumulators)", &AmxBf16, int64_t{1} << 19,
                     kAmxFlops});
  }
  if (f.avx512f && f.avx512_vnni) {
    peaks.push_back({"vpdpbusd", "int8", "vpdpbusd zmm x16 accumulators", &DotVnni, int64_t{1} << 21, kDotVnniOps});
  }
  if (f.amx() && f.amx_int8) {
    peaks.push_back({"amx_tdpbssd", "int8", "tdpbssd 2x2 tiles (4 accumulators)", &AmxInt8, int64_t{1} << 19,
                     kAmxInt8Ops});
  }
#endif
  return peaks;
}

// The ceiling a GEMM of `dtype` (f32, bf16, f32_bf16w, int8, int4) is
// measured against: the FMA peak for f32; for bf16 dtypes AMX where granted,
// else the FMA peak too (vdpbf16ps measured at half of it here, and tilekit's
// dispatcher takes the faster unit); for int8 / int4 the widest int8 unit
// (AMX-INT8, else VNNI), else FMA. nullptr where this CPU has no kernel here
// (Arm: none yet).
inline const ComputePeak* PeakFor(const std::vector<ComputePeak>& peaks, const std::string& dtype) {
  const bool quantized = dtype == "int8" || dtype == "int4";
  const ComputePeak *fma = nullptr, *int8 = nullptr;
  for (const ComputePeak& p : peaks) {
    if (!quantized && dtype != "f32" && p.name == "amx_tdpbf16ps") return &p;
    if (std::string(p.dtype) == "f32") fma = &p;
    if (std::string(p.dtype) == "int8" && (!int8 || p.name == "amx_tdpbssd")) int8 = &p;
  }
  return quantized && int8 ? int8 : fma;
}

}  // namespace tilekit_bench

#endif  // TILEKIT_BENCH_COMPUTE_PEAK_H_

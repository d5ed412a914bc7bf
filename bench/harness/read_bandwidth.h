// Read-bandwidth kernels: the "measured read bandwidth" the GEMV and small-M
// goals are stated against. bench_ceilings runs them over a buffer far larger
// than the LLC; interleaved_onednn runs the best of them over the same weight
// copies the GEMMs rotate through, call by call with them.
//
// One sequential stream per core tops out well below what the memory system
// gives (the L2 streamer tracks a limited distance ahead), and a GEMM reads
// several weight panels at once, so each thread reads kReadStreams interleaved
// sub-ranges. Plain loads alone came in below what the GEMMs, which also
// prefetch in software, reached (16 GB/s for AMX at M = 16 against a 12 GB/s
// "ceiling"), so each reader also runs with prefetches kReadAhead bytes down
// each stream; the ceiling is the faster of the two.
#ifndef TILEKIT_BENCH_READ_BANDWIDTH_H_
#define TILEKIT_BENCH_READ_BANDWIDTH_H_

#include <cstddef>
#include <string>
#include <vector>

#include "tilekit/cpu/features.h"

#if TILEKIT_ARCH_X86
#include <immintrin.h>
#endif

namespace tilekit_bench {

constexpr int kReadStreams = 8;
constexpr size_t kReadAhead = 4096;  // bytes, as the GEMV's kStreamAhead

#if TILEKIT_ARCH_X86
// n must be a multiple of kReadGranule floats.
constexpr size_t kReadGranule = kReadStreams * 64;

template <bool kPrefetch>
__attribute__((target("avx512f"))) float ReadAvx512(const float* p, size_t n) {
  __m512 acc[kReadStreams];
  for (auto& a : acc) a = _mm512_setzero_ps();
  const size_t per_stream = n / kReadStreams;
  for (size_t i = 0; i < per_stream; i += 64) {
#pragma GCC unroll 8
    for (int j = 0; j < kReadStreams; ++j) {
      const float* q = p + j * per_stream + i;  // one 256-byte step of stream j
      if constexpr (kPrefetch) {
        const char* ahead = reinterpret_cast<const char*>(q) + kReadAhead;
        for (int l = 0; l < 256; l += 64) _mm_prefetch(ahead + l, _MM_HINT_T0);
      }
      const __m512 sum = _mm512_add_ps(_mm512_add_ps(_mm512_load_ps(q), _mm512_load_ps(q + 16)),
                                       _mm512_add_ps(_mm512_load_ps(q + 32), _mm512_load_ps(q + 48)));
      acc[j] = _mm512_add_ps(acc[j], sum);
    }
  }
  for (int j = 1; j < kReadStreams; ++j) acc[0] = _mm512_add_ps(acc[0], acc[j]);
  return _mm512_reduce_add_ps(acc[0]);
}

template <bool kPrefetch>
__attribute__((target("avx2"))) float ReadAvx2(const float* p, size_t n) {
  __m256 acc[kReadStreams];
  for (auto& a : acc) a = _mm256_setzero_ps();
  const size_t per_stream = n / kReadStreams;
  for (size_t i = 0; i < per_stream; i += 64) {
#pragma GCC unroll 8
    for (int j = 0; j < kReadStreams; ++j) {
      const float* q = p + j * per_stream + i;
      if constexpr (kPrefetch) {
        const char* ahead = reinterpret_cast<const char*>(q) + kReadAhead;
        for (int l = 0; l < 256; l += 64) _mm_prefetch(ahead + l, _MM_HINT_T0);
      }
      __m256 sum = _mm256_load_ps(q);
      for (int v = 8; v < 64; v += 8) sum = _mm256_add_ps(sum, _mm256_load_ps(q + v));
      acc[j] = _mm256_add_ps(acc[j], sum);
    }
  }
  for (int j = 1; j < kReadStreams; ++j) acc[0] = _mm256_add_ps(acc[0], acc[j]);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, acc[0]);
  return lanes[0];
}
#else
constexpr size_t kReadGranule = 512;
#endif  // TILEKIT_ARCH_X86

inline float ReadPortable(const float* p, size_t n) {
  float acc[16] = {};
  for (size_t i = 0; i + 16 <= n; i += 16) {
    for (int j = 0; j < 16; ++j) acc[j] += p[i + j];
  }
  return acc[0] + acc[15];
}

using ReadFn = float (*)(const float*, size_t);
struct Reader {
  std::string name;
  ReadFn fn;
};

// The readers for the widest vector unit this CPU has: plain, then prefetching.
inline std::vector<Reader> Readers() {
#if TILEKIT_ARCH_X86
  const tilekit::cpu::Features& f = tilekit::cpu::features();
  if (f.avx512f) return {{"read_avx512", &ReadAvx512<false>}, {"read_avx512_prefetch", &ReadAvx512<true>}};
  if (f.avx2 && f.fma) return {{"read_avx2", &ReadAvx2<false>}, {"read_avx2_prefetch", &ReadAvx2<true>}};
#endif
  return {{"read_scalar", &ReadPortable}};
}

}  // namespace tilekit_bench

#endif  // TILEKIT_BENCH_READ_BANDWIDTH_H_

// The command line both GEMM interleaved tools take, M N K [...] dtype, and
// what follows from it: the weights' bytes, cold or warm, the weight copies a
// cold case rotates through (TILEKIT_BENCH_COPIES overrides) and the rounds
// (ROUNDS, default 15).
#ifndef TILEKIT_BENCH_INTERLEAVED_CASE_H_
#define TILEKIT_BENCH_INTERLEAVED_CASE_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "gemm_cases.h"
#include "interleaved_stats.h"

namespace tilekit_bench {

struct InterleavedCase {
  GemmShape shape;
  std::string dtype;
  bool cold = false;
  size_t weight_bytes = 0, copies = 1, rounds = 15;

  // False for a non-positive size or an unknown dtype.
  bool Parse(const char* m, const char* n, const char* k, const char* type) {
    const int64_t M = std::atoll(m), N = std::atoll(n), K = std::atoll(k);
    dtype = type ? type : "f32";
    if (M <= 0 || N <= 0 || K <= 0 ||
        (dtype != "f32" && dtype != "bf16" && dtype != "f32_bf16w" && dtype != "int8" && dtype != "int4")) {
      return false;
    }
    shape = GemmShape{M, N, K, "cli"};
    cold = M <= kColdMaxM;
    weight_bytes = static_cast<size_t>(static_cast<double>(N * K) * WeightElementBytes(dtype));
    copies = std::max<size_t>(1, EnvSize("TILEKIT_BENCH_COPIES", cold ? ColdCopies(weight_bytes) : 1));
    rounds = std::max<size_t>(3, EnvSize("ROUNDS", 15));
    return true;
  }
  double flops() const { return 2.0 * shape.m * shape.n * shape.k; }
};

}  // namespace tilekit_bench

#endif  // TILEKIT_BENCH_INTERLEAVED_CASE_H_

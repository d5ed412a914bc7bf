// Shared by tilekit's libFuzzer targets (tests/fuzz/*_fuzz.cc): decoding the
// fuzzer's bytes into calls, the checks that turn a wrong answer into a crash
// libFuzzer records, and the "rejected means untouched" rule.
//
// A new target: tests/fuzz/<name>_fuzz.cc ending in TILEKIT_FUZZ_ENTRY(Run)
// (or defining LLVMFuzzerTestOneInput itself), a line tilekit_fuzz(<name>_fuzz)
// in tests/fuzz/CMakeLists.txt, and a seed or two in
// tests/fuzz/corpus/<name>_fuzz/. scripts/fuzz runs every target.
#ifndef TILEKIT_TESTS_FUZZ_FUZZ_H_
#define TILEKIT_TESTS_FUZZ_FUZZ_H_

#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "../harness.h"  // AvailablePaths, eps constants (gtest headers only; nothing of gtest is linked)

namespace tilekit {
namespace fuzz {

// Fails the run (abort: libFuzzer saves the input as a crash) with a message.
#define TILEKIT_FUZZ_CHECK(cond, ...)                                                           \
  do {                                                                                          \
    if (!(cond)) {                                                                              \
      std::fprintf(stderr, "\ntilekit fuzz check failed at %s:%d: %s\n  ", __FILE__, __LINE__, #cond); \
      std::fprintf(stderr, __VA_ARGS__);                                                        \
      std::fprintf(stderr, "\n  path %s, last_error: %s\n", isa_name(cpu::active_isa()), last_error()); \
      std::abort();                                                                             \
    }                                                                                           \
  } while (0)

// Every path this machine can take, weakest first (read once: AvailablePaths
// clears the cap).
inline const std::vector<Isa>& Paths() {
  static const std::vector<Isa> paths = testing::AvailablePaths();
  return paths;
}

inline Isa PickPath(FuzzedDataProvider& in) {
  return Paths()[in.ConsumeIntegralInRange<size_t>(0, Paths().size() - 1)];
}

// Forces `isa` (a cap equal to a supported path).
inline void Force(Isa isa) {
  TILEKIT_FUZZ_CHECK(set_max_isa(isa) == Status::kOk, "set_max_isa(%s)", isa_name(isa));
  TILEKIT_FUZZ_CHECK(cpu::active_isa() == isa, "forced %s", isa_name(isa));
}

// A dimension: mostly small (the differential check is O(M·N·K) in fp64),
// often an edge (0, 1, a vector width ± 1).
inline size_t Dim(FuzzedDataProvider& in, size_t max) {
  static const size_t kEdges[] = {0, 1, 2, 3, 7, 8, 15, 16, 17, 31, 32, 33, 47, 48, 63, 64, 65};
  if (in.ConsumeBool()) {
    const size_t e = kEdges[in.ConsumeIntegralInRange<size_t>(0, sizeof(kEdges) / sizeof(kEdges[0]) - 1)];
    return e <= max ? e : max;
  }
  return in.ConsumeIntegralInRange<size_t>(0, max);
}

// A dimension whose byte count overflows size_t: above SIZE_MAX / 4, so times
// 4 bytes (an fp32 row or count), or times a packed panel's 2·nr bytes or more,
// it wraps. (A large size that still fits, such as 2^32 rows, is a valid call
// no fuzz input can back with memory: not one of these.)
inline size_t HugeDim(FuzzedDataProvider& in) {
  static const size_t kHuge[] = {SIZE_MAX, SIZE_MAX - 1, SIZE_MAX / 2, SIZE_MAX / 2 + 1, SIZE_MAX / 4 + 1};
  return kHuge[in.ConsumeIntegralInRange<size_t>(0, sizeof(kHuge) / sizeof(kHuge[0]) - 1)];
}

template <typename T>
T Pick(FuzzedDataProvider& in, std::initializer_list<T> values) {
  return values.begin()[in.ConsumeIntegralInRange<size_t>(0, values.size() - 1)];
}

// Random data from a seed the input chooses: the fuzzer steers shapes and
// options; values are uniform in [-1, 1), never zero, so every product counts.
class Values {
 public:
  explicit Values(uint64_t seed) : engine_(seed) {}
  float next() {
    for (;;) {
      const float v = std::uniform_real_distribution<float>(-1.f, 1.f)(engine_);
      if (v != 0.f) return v;
    }
  }
  void fill(std::vector<float>& v, bool bf16_exact = false) {
    for (float& x : v) x = bf16_exact ? bf16_to_f32(f32_to_bf16(next())) : next();
  }

 private:
  std::mt19937_64 engine_;
};

// A byte snapshot of a buffer: a call that fails must leave it as it was.
class Snapshot {
 public:
  Snapshot(const void* p, size_t bytes) : p_(p), bytes_(static_cast<const unsigned char*>(p), static_cast<const unsigned char*>(p) + bytes) {}
  bool unchanged() const { return bytes_.empty() || std::memcmp(p_, bytes_.data(), bytes_.size()) == 0; }

 private:
  const void* p_;
  std::vector<unsigned char> bytes_;
};

// Poison: a NaN no kernel computes from finite inputs.
template <typename T>
void Poison(std::vector<T>& v) {
  std::memset(v.data(), 0xA5, v.size() * sizeof(T));
}

}  // namespace fuzz
}  // namespace tilekit

// The libFuzzer entry point of a target whose `run(FuzzedDataProvider&)`
// decodes and checks one input; the cap an input may set on the dispatched
// path (set_max_isa) is cleared before the next.
#define TILEKIT_FUZZ_ENTRY(run)                                            \
  extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) { \
    FuzzedDataProvider in(data, size);                                     \
    run(in);                                                               \
    tilekit::clear_max_isa();                                              \
    return 0;                                                              \
  }

#endif  // TILEKIT_TESTS_FUZZ_FUZZ_H_

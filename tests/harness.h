// Test harness shared by every tilekit test: run a body once per path the
// machine can take (each forced in turn), random data with a printed seed, fp64
// references, poisoned outputs, tail sizes and error bounds.
#ifndef TILEKIT_TESTS_HARNESS_H_
#define TILEKIT_TESTS_HARNESS_H_

#include <gtest/gtest.h>

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "tilekit/tilekit.h"

namespace tilekit {
namespace testing {

// Every path this CPU (and TILEKIT_MAX_ISA) allows, weakest first. Highway
// targets and matrix-instruction paths are both paths: forcing `avx512` runs the
// AVX3 Highway code, forcing `amx` adds the tile kernels on top of it.
inline std::vector<Isa> AvailablePaths() {
  clear_max_isa();
  const Isa best = cpu::active_isa();
  std::vector<Isa> paths;
  for (int i = 0; i < kNumIsa; ++i) {
    const Isa isa = static_cast<Isa>(i);
    // A path whose Highway target this build did not compile (a dev build with
    // TILEKIT_ONLY_STATIC_TARGET) cannot be forced: it would run another target.
    if (isa_on_this_arch(isa) && static_cast<int>(isa) <= static_cast<int>(best) &&
        cpu::cpu_supports(cpu::features(), isa) && cpu::path_compiled(isa)) {
      paths.push_back(isa);
    }
  }
  return paths;
}

// The paths the parameterised tests run: AvailablePaths() from
// TILEKIT_TEST_MIN_PATH up. The qemu SVE legs set it to `sve`: the weaker paths
// (scalar, neon, neon_bf16) run the same code whatever the SVE vector length,
// and the a72 and nosve legs already run them; emulated SVE is slow (minutes
// per leg), so each leg runs only what it alone can test.
inline std::vector<Isa> TestedPaths() {
  std::vector<Isa> paths = AvailablePaths();
  const char* min = std::getenv("TILEKIT_TEST_MIN_PATH");
  Isa floor = Isa::kScalar;
  if (min && *min && parse_isa(min, &floor) != Status::kOk) {
    // Runs while tests are registered, before any test can fail: stop here.
    std::fprintf(stderr, "TILEKIT_TEST_MIN_PATH: %s\n", last_error());
    std::exit(1);
  }
  paths.erase(std::remove_if(paths.begin(), paths.end(),
                             [floor](Isa isa) { return static_cast<int>(isa) < static_cast<int>(floor); }),
              paths.end());
  return paths;
}

// Whether the tests run emulated: the qemu legs set TILEKIT_TEST_EMULATED=1
// (tests/CMakeLists.txt), and with it TILEKIT_TEST_CACHE_KIB, small caches
// that make the cache blocking (cpu/features.h) cut small shapes into blocks.
// qemu costs tens of times a native run per element, and emulated SVE at 256
// bits and more several times that, so tests size their shapes and random
// repetitions for it: a smaller shape still crosses the same boundaries (the
// blocks shrink with the caches; thread splits depend on the work alone) and
// every category of a random draw is still drawn. Native runs keep their shapes.
inline bool Emulated() {
  static const bool emulated = [] {
    const char* env = std::getenv("TILEKIT_TEST_EMULATED");
    return env && *env && std::strcmp(env, "0") != 0;
  }();
  return emulated;
}

// Forces a path for the lifetime of the object (a cap equal to the path: the
// CPU supports it, so it is what gets chosen).
class ScopedPath {
 public:
  explicit ScopedPath(Isa isa) {
    EXPECT_EQ(set_max_isa(isa), Status::kOk);
    EXPECT_EQ(cpu::active_isa(), isa) << "could not force " << isa_name(isa);
  }
  ~ScopedPath() { clear_max_isa(); }
};

// A fixture whose tests run once per path; the path is part of the test name
// (Convert/PathTest.RoundTrip/avx512) and is recorded in the XML output.
class PathTest : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    scoped_ = new ScopedPath(GetParam());
    RecordProperty("path", isa_name(GetParam()));
  }
  void TearDown() override { delete scoped_; }

 private:
  ScopedPath* scoped_ = nullptr;
};

inline std::string PathName(const ::testing::TestParamInfo<Isa>& info) {
  return isa_name(info.param);
}

#define TILEKIT_INSTANTIATE_PATHS(Fixture) \
  INSTANTIATE_TEST_SUITE_P(Paths, Fixture, ::testing::ValuesIn(::tilekit::testing::TestedPaths()), \
                           ::tilekit::testing::PathName)

// The tested paths whose bf16 stores use the CPU's conversion instruction,
// each with the tested path below it that runs the same Highway code but
// rounds on the bit pattern (cpu::isa_converts_bf16): their bf16 outputs must
// agree bit for bit.
inline std::vector<std::pair<Isa, Isa>> Bf16StorePairs() {
  const std::vector<Isa> paths = TestedPaths();
  const auto tested = [&](Isa isa) { return std::find(paths.begin(), paths.end(), isa) != paths.end(); };
  std::vector<std::pair<Isa, Isa>> pairs;
  for (Isa isa : paths) {
    if (!cpu::isa_converts_bf16(isa)) continue;
    const Isa below = isa == Isa::kNeonBf16 ? Isa::kNeon : isa == Isa::kSveBf16 ? Isa::kSve : Isa::kAvx512;
    if (tested(below)) pairs.emplace_back(isa, below);
  }
  return pairs;
}

// The seed for random data: TILEKIT_TEST_SEED replays a failure; otherwise a
// fresh one per process. Every test that uses random data prints it on failure.
inline uint64_t TestSeed() {
  static const uint64_t seed = [] {
    const char* env = std::getenv("TILEKIT_TEST_SEED");
    if (env && *env) return static_cast<uint64_t>(std::strtoull(env, nullptr, 0));
    return (static_cast<uint64_t>(std::random_device{}()) << 32) | std::random_device{}();
  }();
  return seed;
}

// Per-test generator: the process seed mixed with a caller-chosen stream id, so
// a test's data does not depend on which tests ran before it.
class Rng {
 public:
  explicit Rng(uint64_t stream = 0) : engine_(TestSeed() ^ (stream * 0x9E3779B97F4A7C15ull)) {}
  // Uniform in [lo, hi), never exactly zero.
  float uniform(float lo = -1.f, float hi = 1.f) {
    for (;;) {
      const float v = std::uniform_real_distribution<float>(lo, hi)(engine_);
      if (v != 0.f) return v;
    }
  }
  size_t below(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(engine_); }
  void fill(float* p, size_t n, float lo = -1.f, float hi = 1.f) {
    for (size_t i = 0; i < n; ++i) p[i] = uniform(lo, hi);
  }
  std::mt19937_64& engine() { return engine_; }

 private:
  std::mt19937_64 engine_;
};

inline std::string SeedNote() {
  char buf[96];
  std::snprintf(buf, sizeof(buf), "replay with TILEKIT_TEST_SEED=0x%" PRIx64, TestSeed());
  return buf;
}
#define TILEKIT_SEED_TRACE() SCOPED_TRACE(::tilekit::testing::SeedNote())

// A value no kernel computes from finite random inputs: a signalling-looking
// NaN payload, so an unwritten output element fails every comparison.
inline float PoisonF32() {
  const uint32_t bits = 0x7FA5A5A5u;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
constexpr uint16_t kPoisonBf16 = 0x7FA5;

// fp32 and bf16 elements alike: widen, round, poison, raw bits.
inline float ToF32(float v) { return v; }
inline float ToF32(bf16 v) { return bf16_to_f32(v); }
template <typename T>
T FromF32(float v) {
  if constexpr (kIsBf16<T>) {
    return f32_to_bf16(v);
  } else {
    return v;
  }
}
template <typename T>
T Poison() {
  if constexpr (kIsBf16<T>) {
    return bf16{kPoisonBf16};
  } else {
    return PoisonF32();
  }
}
template <typename T>
uint32_t Bits(T v) {
  if constexpr (kIsBf16<T>) {
    return v.bits;
  } else {
    uint32_t u;
    std::memcpy(&u, &v, 4);
    return u;
  }
}

// A call that must fail with `want` and a last_error() containing `detail`.
inline ::testing::AssertionResult FailsWith(Status got, Status want, const char* detail) {
  const std::string error = last_error();
  if (got == want && error.find(detail) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "got \"" << status_name(got) << "\" (" << error << "), want \""
                                       << status_name(want) << "\" with \"" << detail << "\"";
}

// Sizes that exercise tails: 1, primes, powers of two and their neighbours,
// multiples of common vector lengths ±1.
inline std::vector<size_t> TailSizes(size_t max = 300) {
  std::vector<size_t> sizes;
  for (size_t s : {1, 2, 3, 5, 7, 8, 13, 15, 16, 17, 31, 32, 33, 47, 63, 64, 65, 100, 127, 128,
                   129, 255, 256, 257, 1023, 1024, 1025}) {
    if (s <= max) sizes.push_back(s);
  }
  return sizes;
}

// Reports |err| against an error bound as a ratio, so a failure says how far
// out it is, not only that it is.
inline ::testing::AssertionResult WithinBound(double err, double bound, const char* what = "") {
  if (std::isfinite(err) && err <= bound) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << what << " error " << err << " > bound " << bound
                                       << " (error/bound = " << err / bound << ")";
}

// Unit roundoff of bf16 (8 significant bits, round to nearest): 2^-8.
constexpr double kBf16Eps = 1.0 / 256;
// Unit roundoff of fp32: 2^-24.
constexpr double kF32Eps = 1.0 / (1 << 24);

}  // namespace testing
}  // namespace tilekit

#endif  // TILEKIT_TESTS_HARNESS_H_

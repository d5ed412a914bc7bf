// The AMX building blocks beyond what the GEMM suite covers: the batch-reduce
// micro-kernel (amx_brgemm) against an fp64 reference, and the per-thread tile
// state (reconfigured by someone else, released at thread exit, several threads
// with different tile shapes at once). x86-64 only; skipped without AMX.
// arch/ holds tile primitives that include nothing above cpu/, so this test
// includes them directly and links tilekit::kernels for the GEMM.
#include <cpuid.h>

#include <atomic>
#include <thread>

#include "gemm_reference.h"
#include "tilekit/arch/amx.h"
#include "tilekit/arch/amx_brgemm.h"

namespace tilekit {
namespace {

using arch::BrgemmItem;

class AmxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    clear_max_isa();
    if (cpu::active_isa() != Isa::kAmx) GTEST_SKIP() << "amx is not the active path: " << cpu::choice().reason;
  }
};

// Element (kk, j) of a B block in the kAmx panel layout (32 columns per pair row).
size_t BOffset(size_t kk, size_t j) { return (kk / 2) * 64 + 2 * j + kk % 2; }

// A brgemm problem: `count` blocks of A (m × k, ld lda, NaN in the padding
// columns) and B (kAmx layout, NaN in the columns >= n), C (m × n in ld ldc,
// NaN in the padding columns), all inputs bf16-exact.
struct Brgemm {
  size_t m, n, k, count, lda, ldc;
  std::vector<std::vector<bf16>> a, b;
  std::vector<float> c;

  Brgemm(size_t m_, size_t n_, size_t k_, size_t count_, testing::Rng& rng)
      : m(m_), n(n_), k(k_), count(count_), lda(k_ + rng.below(5)), ldc(n_ + rng.below(3)) {
    const bf16 nan = f32_to_bf16(NAN);
    for (size_t i = 0; i < count; ++i) {
      a.emplace_back(m * lda, nan);
      b.emplace_back(k / 2 * 64, nan);
      for (size_t r = 0; r < m; ++r) {
        for (size_t kk = 0; kk < k; ++kk) a[i][r * lda + kk] = f32_to_bf16(rng.uniform());
      }
      for (size_t kk = 0; kk < k; ++kk) {
        for (size_t j = 0; j < n; ++j) b[i][BOffset(kk, j)] = f32_to_bf16(rng.uniform());
      }
    }
    c.assign(m * ldc, testing::PoisonF32());
    for (size_t r = 0; r < m; ++r) {
      for (size_t j = 0; j < n; ++j) c[r * ldc + j] = rng.uniform();
    }
  }

  std::vector<BrgemmItem> batch() const {
    std::vector<BrgemmItem> items;
    for (size_t i = 0; i < count; ++i) items.push_back(BrgemmItem{a[i].data(), lda, b[i].data()});
    return items;
  }

  Status run(std::vector<float>& out) const {
    out = c;
    const std::vector<BrgemmItem> items = batch();
    return arch::amx_brgemm(m, n, k, items.data(), items.size(), out.data(), ldc);
  }

  // fp64 reference: C + Σ A·B, within gamma_(terms) · (|C| + Σ|a||b|) (fp32
  // accumulation of exact bf16 products, Higham 3.5); C's padding untouched.
  ::testing::AssertionResult check(const std::vector<float>& out) const {
    const size_t terms = k * count + 2;
    const double gamma = terms * testing::kF32Eps / (1 - terms * testing::kF32Eps);
    for (size_t r = 0; r < m; ++r) {
      for (size_t j = 0; j < ldc; ++j) {
        const float got = out[r * ldc + j];
        if (j >= n) {
          if (!std::isnan(got)) return ::testing::AssertionFailure() << "wrote C's padding at " << r << "," << j;
          continue;
        }
        double want = c[r * ldc + j], mag = std::fabs(want);
        for (size_t i = 0; i < count; ++i) {
          for (size_t kk = 0; kk < k; ++kk) {
            const double p = static_cast<double>(bf16_to_f32(a[i][r * lda + kk])) * bf16_to_f32(b[i][BOffset(kk, j)]);
            want += p;
            mag += std::fabs(p);
          }
        }
        ::testing::AssertionResult within = testing::WithinBound(std::fabs(got - want), gamma * mag + 1e-30, "C");
        if (!within) return within << " at " << r << "," << j << " (m=" << m << " n=" << n << " k=" << k << ")";
      }
    }
    return ::testing::AssertionSuccess();
  }
};

TEST_F(AmxTest, BrgemmMatchesFp64Reference) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(100);
  for (size_t m : {1, 5, 16, 17, 32}) {
    for (size_t n : {1, 15, 16, 17, 32}) {
      for (size_t k : {32, 96}) {
        for (size_t count : {1, 3}) {
          const Brgemm p(m, n, k, count, rng);
          std::vector<float> out;
          ASSERT_EQ(p.run(out), Status::kOk) << last_error();
          ASSERT_TRUE(p.check(out));
        }
      }
    }
  }
}

// A GEMM weight panel is a brgemm B: attention can multiply by packed weights.
TEST_F(AmxTest, BrgemmReadsAGemmWeightPanel) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(101);
  const size_t m = 9, n = 32, k = 64;
  std::vector<float> w(k * n), a(m * k);
  rng.fill(w.data(), w.size());
  rng.fill(a.data(), a.size());
  PackedWeights pw;
  ASSERT_EQ(pack_weights(weights_kn(w.data(), k, n), WeightType::kBf16, &pw), Status::kOk);
  std::vector<bf16> a16(a.size());
  for (size_t i = 0; i < a.size(); ++i) a16[i] = f32_to_bf16(a[i]);
  std::vector<float> via_brgemm(m * n, 0.f), via_gemm(m * n);
  const BrgemmItem item{a16.data(), k, reinterpret_cast<const bf16*>(pw.panel(0))};
  ASSERT_EQ(arch::amx_brgemm(m, n, k, &item, 1, via_brgemm.data(), n), Status::kOk) << last_error();
  ASSERT_EQ(gemm(matrix(static_cast<const bf16*>(a16.data()), m, k), pw, matrix(via_gemm.data(), m, n)), Status::kOk);
  // Same tiles, same K order, starting from zero: bitwise equal.
  EXPECT_EQ(0, std::memcmp(via_brgemm.data(), via_gemm.data(), via_gemm.size() * sizeof(float)));
}

TEST_F(AmxTest, BrgemmRejectsBadArguments) {
  std::vector<bf16> a(32 * 64), b(32 * 64);
  std::vector<float> c(32 * 32, 42.f);
  const BrgemmItem ok{a.data(), 64, b.data()};
  auto expect = [&](Status got, Status want, const char* needle) {
    EXPECT_EQ(got, want) << status_name(got) << " / " << last_error();
    EXPECT_NE(std::string(last_error()).find(needle), std::string::npos) << last_error();
    for (float v : c) ASSERT_EQ(v, 42.f) << "C touched after: " << needle;
  };
  expect(arch::amx_brgemm(0, 8, 64, &ok, 1, c.data(), 32), Status::kInvalidArgument, "1..32");
  expect(arch::amx_brgemm(33, 8, 64, &ok, 1, c.data(), 32), Status::kInvalidArgument, "33 x 8");
  expect(arch::amx_brgemm(8, 33, 64, &ok, 1, c.data(), 33), Status::kInvalidArgument, "8 x 33");
  expect(arch::amx_brgemm(8, 8, 48, &ok, 1, c.data(), 32), Status::kInvalidArgument, "k=48");
  expect(arch::amx_brgemm(8, 8, 64, &ok, 1, nullptr, 32), Status::kNullPointer, "C is null");
  expect(arch::amx_brgemm(8, 8, 64, nullptr, 1, c.data(), 32), Status::kNullPointer, "batch is null");
  expect(arch::amx_brgemm(8, 16, 64, &ok, 1, c.data(), 15), Status::kBadLeadingDim, "ldc=15");
  const BrgemmItem short_lda{a.data(), 32, b.data()}, no_b{a.data(), 64, nullptr};
  expect(arch::amx_brgemm(8, 8, 64, &short_lda, 1, c.data(), 32), Status::kBadLeadingDim, "lda=32");
  expect(arch::amx_brgemm(8, 8, 64, &no_b, 1, c.data(), 32), Status::kNullPointer, "batch[0]");
}

// Off the amx path (no AMX, refused by the OS as amx_test.amx_denied simulates,
// or capped below it) the building block says so instead of faulting.
TEST(AmxPath, BrgemmIsUnsupportedOffTheAmxPath) {
  clear_max_isa();
  if (cpu::active_isa() == Isa::kAmx) {
    ASSERT_EQ(set_max_isa(Isa::kAvx512Bf16), Status::kOk);
  }
  std::vector<bf16> a(16 * 32), b(16 * 64);
  std::vector<float> c(16 * 16, 42.f);
  const BrgemmItem item{a.data(), 32, b.data()};
  EXPECT_EQ(arch::amx_brgemm(16, 16, 32, &item, 1, c.data(), 16), Status::kUnsupported);
  EXPECT_NE(std::string(last_error()).find("not amx"), std::string::npos) << last_error();
  for (float v : c) ASSERT_EQ(v, 42.f);
  clear_max_isa();
}

// One bf16 GEMM to repeat: M = 40 (two tile shapes: 2 × 2 and 1 × 2 tiles).
// The same stream gives the same data.
struct SmallGemm {
  size_t m = 40, n = 50, k = 70;
  std::vector<float> w, a, c;
  PackedWeights pw;
  explicit SmallGemm(uint64_t stream) : w(k * n), a(m * k), c(m * n) {
    testing::Rng rng(stream);
    rng.fill(w.data(), w.size());
    rng.fill(a.data(), a.size());
    EXPECT_EQ(pack_weights(weights_kn(w.data(), k, n), WeightType::kBf16, &pw), Status::kOk);
    EXPECT_EQ(pw.layout().kind, PanelKind::kAmx);
  }
  std::vector<float> run() {
    EXPECT_EQ(gemm(matrix(static_cast<const float*>(a.data()), m, k), pw, matrix(c.data(), m, n)), Status::kOk);
    return c;
  }
};

TILEKIT_AMX_TARGET void LoadForeignTileConfig() {
  arch::TileConfig foreign;  // what another library might leave: other shapes, live data
  for (int t = 0; t < 8; ++t) foreign.set(t, 2, 8);
  arch::load_tile_config(foreign);
  _tile_zero(0);
}

// Another library on this thread reconfigured, or released, the tiles between
// two GEMMs: each call loads its own configuration, so nothing changes.
TEST_F(AmxTest, GemmIgnoresTilesLeftByAnotherLibrary) {
  SmallGemm g(102);
  const std::vector<float> want = g.run();
  LoadForeignTileConfig();
  EXPECT_EQ(0, std::memcmp(g.run().data(), want.data(), want.size() * sizeof(float)));
  arch::detail::release_tiles();
  EXPECT_EQ(0, std::memcmp(g.run().data(), want.data(), want.size() * sizeof(float)));
}

// XINUSE (xgetbv with ecx = 1) bit 18: this thread's tile data is not in its
// initial state. false when the CPU cannot report it.
bool TileDataInUse(bool* known) {
  unsigned eax, ebx, ecx, edx;
  *known = __get_cpuid_count(0xD, 1, &eax, &ebx, &ecx, &edx) && (eax & 4);
  if (!*known) return false;
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(1));
  return (lo >> 18) & 1;
}

// What a thread's exit runs: the per-thread tile owner releases the tiles.
TEST_F(AmxTest, ThreadExitReleasesTheTiles) {
  bool known = false;
  TileDataInUse(&known);
  if (!known) GTEST_SKIP() << "this CPU does not report XINUSE";
  std::thread([&] {
    SmallGemm g(103);
    {
      arch::detail::ThreadTiles owner;  // the same type as the thread_local one
      owner.used = true;
      g.run();
      EXPECT_TRUE(TileDataInUse(&known)) << "a GEMM left the tiles in their initial state";
    }
    EXPECT_FALSE(TileDataInUse(&known)) << "ThreadTiles did not release the tiles";
  }).join();
}

// Threads at once, each alternating GEMMs and brgemms of different tile shapes
// (tile state is per thread: no call may see another's configuration).
TEST_F(AmxTest, ThreadsWithDifferentTileShapesDoNotInterfere) {
  TILEKIT_SEED_TRACE();
  testing::Rng rng(104);
  SmallGemm g(105);
  const std::vector<float> gemm_want = g.run();
  const Brgemm small(5, 7, 64, 2, rng), full(32, 32, 32, 3, rng);
  std::vector<float> small_want, full_want;
  ASSERT_EQ(small.run(small_want), Status::kOk);
  ASSERT_EQ(full.run(full_want), Status::kOk);
  std::atomic<int> mismatches{0};
  auto worker = [&](int seed) {
    SmallGemm mine(105);  // the same problem, its own A, C and packed weights
    for (int r = 0; r < 50; ++r) {
      std::vector<float> out;
      const Brgemm& b = (r + seed) % 2 ? small : full;
      if (b.run(out) != Status::kOk || std::memcmp(out.data(), (&b == &small ? small_want : full_want).data(),
                                                   out.size() * sizeof(float)) != 0) {
        ++mismatches;
      }
      if (std::memcmp(mine.run().data(), gemm_want.data(), gemm_want.size() * sizeof(float)) != 0) ++mismatches;
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) threads.emplace_back(worker, t);
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace
}  // namespace tilekit

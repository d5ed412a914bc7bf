// The dispatcher: names, caps, the chosen path per CPU, and that tilekit's
// dispatch reaches the Highway target the path promises.
#include <cstdlib>
#include <string>

#include "harness.h"
#include "tilekit/cpu/hwy_targets.h"

namespace tilekit {
namespace {

TEST(Dispatch, EveryNameParsesBackOnItsArchitecture) {
  for (int i = 0; i < kNumIsa; ++i) {
    const Isa isa = static_cast<Isa>(i);
    Isa parsed;
    const Status s = parse_isa(isa_name(isa), &parsed);
    if (isa_on_this_arch(isa)) {
      EXPECT_EQ(s, Status::kOk) << isa_name(isa);
      EXPECT_EQ(parsed, isa);
    } else {
      EXPECT_EQ(s, Status::kInvalidArgument) << isa_name(isa);
      EXPECT_NE(std::string(last_error()).find("valid names: scalar"), std::string::npos) << last_error();
    }
  }
}

TEST(Dispatch, UnknownNameListsTheValidOnes) {
  EXPECT_EQ(set_max_isa("avx1024"), Status::kInvalidArgument);
  const std::string msg = last_error();
  EXPECT_NE(msg.find("unknown ISA 'avx1024'"), std::string::npos) << msg;
  EXPECT_NE(msg.find(valid_isa_names()), std::string::npos) << msg;
  EXPECT_EQ(set_max_isa(static_cast<const char*>(nullptr)), Status::kNullPointer);
}

TEST(Dispatch, CapLowersThePathAndACapAboveChangesNothing) {
  const Isa best = cpu::active_isa();
  ASSERT_EQ(set_max_isa(Isa::kScalar), Status::kOk);
  EXPECT_EQ(cpu::active_isa(), Isa::kScalar);
  EXPECT_NE(cpu::choice().reason.find("capped"), std::string::npos) << cpu::choice().reason;
  const Isa top = TILEKIT_ARCH_X86 ? Isa::kAmx : Isa::kSveBf16;
  ASSERT_EQ(set_max_isa(top), Status::kOk);
  EXPECT_EQ(cpu::active_isa(), best);
  clear_max_isa();
  EXPECT_EQ(cpu::active_isa(), best);
}

// The qemu legs and CI set TILEKIT_EXPECT_ISA to the path the emulated (or
// known) CPU must get; elsewhere the test only reports what was chosen.
TEST(Dispatch, ChoosesTheExpectedPath) {
  const std::string report = cpu::path_report();
  std::printf("features: %s\nisa: %s\n", cpu::features().describe().c_str(), report.c_str());
  RecordProperty("isa", isa_name(cpu::active_isa()));
  const char* expect = std::getenv("TILEKIT_EXPECT_ISA");
  if (!expect || !*expect) GTEST_SKIP() << "TILEKIT_EXPECT_ISA not set; chose " << report;
  EXPECT_STREQ(isa_name(cpu::active_isa()), expect) << report;
}

// Highway 1.0.3 dispatches to NEON only when the CPU has AES; every emulated
// CPU has it, so the rule is checked on made-up feature sets.
TEST(Dispatch, NeonPathsNeedAesLikeHighwaysNeonTarget) {
  cpu::Features f;
  f.neon = f.arm_bf16 = f.sve = true;
  EXPECT_FALSE(cpu::cpu_supports(f, Isa::kNeon));
  EXPECT_FALSE(cpu::cpu_supports(f, Isa::kNeonBf16));
  EXPECT_TRUE(cpu::cpu_supports(f, Isa::kSveBf16));
  f.aes = true;
  EXPECT_TRUE(cpu::cpu_supports(f, Isa::kNeon));
  EXPECT_TRUE(cpu::cpu_supports(f, Isa::kNeonBf16));
}

// The qemu legs set the vector length they emulate (0 without SVE): it comes
// from prctl(PR_SVE_GET_VL), which cpuinfo does not report.
TEST(Dispatch, DetectsTheExpectedSveVectorLength) {
  const char* expect = std::getenv("TILEKIT_EXPECT_SVE_BITS");
  if (!expect || !*expect) GTEST_SKIP() << "TILEKIT_EXPECT_SVE_BITS not set";
  EXPECT_EQ(cpu::features().sve_bits, std::strtoul(expect, nullptr, 10)) << cpu::features().describe();
}

TEST(Dispatch, AmxRefusalFallsBackWithAReason) {
  const char* deny = std::getenv("TILEKIT_TEST_DENY_AMX");
  if (!deny || !*deny) GTEST_SKIP() << "run with TILEKIT_TEST_DENY_AMX=1 (a ctest entry does)";
  EXPECT_FALSE(cpu::features().amx_os);
  EXPECT_NE(cpu::active_isa(), Isa::kAmx);
  if (cpu::features().amx_tile) {
    EXPECT_NE(cpu::choice().reason.find("refused"), std::string::npos) << cpu::choice().reason;
  }
}

class DispatchPathTest : public testing::PathTest {};

TEST_P(DispatchPathTest, ReachesTheHighwayTargetOfThePath) {
  const int64_t want = cpu::hwy_target_of(GetParam());
  const int64_t got = cpu::dispatched_hwy_target();
  // scalar may be EMU128 or SCALAR depending on the compiler (GCC < 12.3 lacks EMU128).
  if (GetParam() == Isa::kScalar) {
    EXPECT_TRUE(got == HWY_SCALAR || got == HWY_EMU128) << hwy::TargetName(got);
  } else {
    EXPECT_EQ(got, want) << "dispatched to " << hwy::TargetName(got) << ", wanted " << hwy::TargetName(want);
  }
}

TILEKIT_INSTANTIATE_PATHS(DispatchPathTest);

}  // namespace
}  // namespace tilekit

// What the CPU (and the OS) offer, read once. x86 features come from cpuinfo,
// except AMX: Debian 12's cpuinfo predates it, so CPUID leaf 7 and XCR0 are read
// here and the tile state is requested from Linux with arch_prctl. aarch64
// features come from cpuinfo, plus getauxval for I8MM and prctl for the SVE
// vector length, which that cpuinfo does not report.
#ifndef TILEKIT_CPU_FEATURES_H_
#define TILEKIT_CPU_FEATURES_H_

#include <cpuinfo.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#if defined(__x86_64__) || defined(_M_X64)
#define TILEKIT_ARCH_X86 1
#include <cpuid.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#else
#define TILEKIT_ARCH_X86 0
#endif

#if defined(__aarch64__)
#define TILEKIT_ARCH_ARM64 1
#include <sys/auxv.h>
#include <sys/prctl.h>
#else
#define TILEKIT_ARCH_ARM64 0
#endif

namespace tilekit {
namespace cpu {

struct Features {
  // x86
  bool avx2 = false, fma = false;
  bool avx512f = false, avx512bw = false, avx512dq = false, avx512vl = false;
  bool avx512_bf16 = false;
  bool avx512_vnni = false;  // vpdpbusd: u8 × s8 dot products into int32
  bool amx_tile = false, amx_bf16 = false, amx_int8 = false;  // CPUID says so
  bool amx_os = false;         // XCR0 enables tile state and Linux granted it
  const char* amx_note = "";   // why amx_os is false, when the CPU has AMX
  // aarch64
  bool neon = false, aes = false, sve = false, sve2 = false, arm_bf16 = false, i8mm = false;
  bool dotprod = false;  // SDOT / UDOT (FEAT_DotProd)
  unsigned sve_bits = 0;  // SVE vector length in bits, 0 without SVE
  // caches, bytes (0 when unknown)
  size_t l1d = 0, l2 = 0, llc = 0;
  unsigned cores = 1;

  bool amx() const { return amx_tile && amx_bf16 && amx_os; }
  std::string describe() const;
};

namespace detail {

#if TILEKIT_ARCH_X86
// Linux asks processes to request the 8 KiB tile-data state before using it
// (arch/x86/include/uapi/asm/prctl.h): refused means "no AMX", not a crash.
constexpr int kArchGetXcompPerm = 0x1022;
constexpr int kArchReqXcompPerm = 0x1023;
constexpr int kXfeatureXtiledata = 18;

inline uint64_t read_xcr0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}

inline void detect_amx(Features& f) {
  unsigned eax, ebx, ecx, edx;
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return;
  f.amx_bf16 = (edx >> 22) & 1;
  f.amx_tile = (edx >> 24) & 1;
  f.amx_int8 = (edx >> 25) & 1;
  if (!f.amx_tile) return;
  unsigned l1ecx;
  if (!__get_cpuid(1, &eax, &ebx, &l1ecx, &edx) || !((l1ecx >> 27) & 1)) {
    f.amx_note = "OSXSAVE off";
    return;
  }
  // XCR0 bits 17 (XTILECFG) and 18 (XTILEDATA): the OS saves tile state.
  if ((read_xcr0() & (3ull << 17)) != (3ull << 17)) {
    f.amx_note = "XCR0 lacks tile state";
    return;
  }
  const char* deny = std::getenv("TILEKIT_TEST_DENY_AMX");  // simulates a refusal
  if (deny && *deny && std::strcmp(deny, "0") != 0) {
    f.amx_note = "arch_prctl refused (simulated by TILEKIT_TEST_DENY_AMX)";
    return;
  }
#if defined(__linux__)
  if (syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) != 0) {
    f.amx_note = "arch_prctl(ARCH_REQ_XCOMP_PERM) refused";
    return;
  }
  unsigned long granted = 0;
  if (syscall(SYS_arch_prctl, kArchGetXcompPerm, &granted) != 0 ||
      !((granted >> kXfeatureXtiledata) & 1)) {
    f.amx_note = "ARCH_GET_XCOMP_PERM does not confirm tile data";
    return;
  }
  f.amx_os = true;
#else
  f.amx_note = "not Linux: no way to request tile state";
#endif
}
#endif  // TILEKIT_ARCH_X86

// A test hook, like TILEKIT_TEST_DENY_AMX: TILEKIT_TEST_CACHE_KIB="L1D,L2"
// (KiB, e.g. "4,32") replaces the detected L1 data and L2 sizes, and so the
// cache blocking derived from them (gemm/vector.h, gemm/quant.h). The emulated
// test legs set it so that small shapes cross every block boundary: blocking
// decides which loop runs a product, never its arithmetic (each element sums
// in k order whatever the blocks). Ignored unless both sizes parse.
inline void test_cache_sizes(Features& f) {
  const char* env = std::getenv("TILEKIT_TEST_CACHE_KIB");
  if (!env || !*env) return;
  unsigned long l1 = 0, l2 = 0;
  char tail = 0;
  if (std::sscanf(env, "%lu,%lu%c", &l1, &l2, &tail) != 2 || l1 == 0 || l2 == 0) return;
  f.l1d = static_cast<size_t>(l1) << 10;
  f.l2 = f.llc = static_cast<size_t>(l2) << 10;
}

inline Features detect() {
  Features f;
  if (!cpuinfo_initialize()) return f;  // unknown CPU: everything false -> scalar
#if TILEKIT_ARCH_X86
  f.avx2 = cpuinfo_has_x86_avx2();
  f.fma = cpuinfo_has_x86_fma3();
  f.avx512f = cpuinfo_has_x86_avx512f();
  f.avx512bw = cpuinfo_has_x86_avx512bw();
  f.avx512dq = cpuinfo_has_x86_avx512dq();
  f.avx512vl = cpuinfo_has_x86_avx512vl();
  f.avx512_bf16 = cpuinfo_has_x86_avx512bf16();
  f.avx512_vnni = cpuinfo_has_x86_avx512vnni();
  detect_amx(f);
#endif
#if TILEKIT_ARCH_ARM64
  f.neon = cpuinfo_has_arm_neon();
  f.aes = cpuinfo_has_arm_aes();
  f.sve = cpuinfo_has_arm_sve();
  f.sve2 = cpuinfo_has_arm_sve2();
  f.arm_bf16 = cpuinfo_has_arm_bf16();
  f.dotprod = cpuinfo_has_arm_neon_dot();
  f.i8mm = (getauxval(AT_HWCAP2) >> 13) & 1;  // HWCAP2_I8MM
  if (f.sve) {
    const int vl = prctl(51 /* PR_SVE_GET_VL */);
    if (vl > 0) f.sve_bits = static_cast<unsigned>(vl & 0xFFFF) * 8;
  }
#endif
  if (cpuinfo_get_l1d_caches_count()) f.l1d = cpuinfo_get_l1d_cache(0)->size;
  if (cpuinfo_get_l2_caches_count()) f.l2 = cpuinfo_get_l2_cache(0)->size;
  if (cpuinfo_get_l3_caches_count()) f.llc = cpuinfo_get_l3_cache(0)->size;
  test_cache_sizes(f);
  if (!f.llc) f.llc = f.l2;
  f.cores = cpuinfo_get_cores_count() ? cpuinfo_get_cores_count() : 1;
  return f;
}

}  // namespace detail

// Detected once (thread-safe static initialisation), then a plain load.
inline const Features& features() {
  static const Features f = detail::detect();
  return f;
}

inline std::string Features::describe() const {
  std::string s;
  auto add = [&s](bool on, const char* name) {
    if (on) { s += s.empty() ? "" : " "; s += name; }
  };
#if TILEKIT_ARCH_X86
  add(avx2 && fma, "avx2+fma");
  add(avx512f, "avx512f");
  add(avx512bw, "avx512bw");
  add(avx512dq, "avx512dq");
  add(avx512vl, "avx512vl");
  add(avx512_bf16, "avx512_bf16");
  add(avx512_vnni, "avx512_vnni");
  add(amx_tile, "amx_tile");
  add(amx_bf16, "amx_bf16");
  add(amx_int8, "amx_int8");
  if (amx_tile) s += amx_os ? " (amx granted by OS)" : std::string(" (amx unusable: ") + amx_note + ")";
#endif
#if TILEKIT_ARCH_ARM64
  add(neon, "neon");
  add(aes, "aes");
  add(sve, "sve");
  add(sve2, "sve2");
  add(arm_bf16, "bf16");
  add(dotprod, "dotprod");
  add(i8mm, "i8mm");
  if (sve) s += " sve_bits=" + std::to_string(sve_bits);
#endif
  if (s.empty()) s = "(no SIMD features detected)";
  return s;
}

}  // namespace cpu
}  // namespace tilekit

#endif  // TILEKIT_CPU_FEATURES_H_

// The fixed list of paths tilekit can take, how one is chosen from the CPU's
// features and the user's cap (cpu/hwy_targets.h maps paths to Highway targets).
//
// Paths are ordered per architecture; each level requires the features of the
// levels below it:
//   x86:     scalar < avx2 < avx512 < avx512_bf16 < amx
//   aarch64: scalar < neon < neon_bf16 < sve < sve_bf16
// The chosen path is the highest level the CPU allows, lowered by a cap from
// TILEKIT_MAX_ISA or set_max_isa(). A kernel with nothing written for that
// level runs its best implementation below it (e.g. fp32 GEMM on `amx` runs the
// AVX-512 Highway code).
#ifndef TILEKIT_CPU_ISA_H_
#define TILEKIT_CPU_ISA_H_

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "tilekit/base/status.h"
#include "tilekit/cpu/features.h"

namespace tilekit {

enum class Isa : int {
  kScalar = 0,
  kAvx2,
  kAvx512,
  kAvx512Bf16,
  kAmx,
  kNeon,
  kNeonBf16,
  kSve,
  kSveBf16,
};
constexpr int kNumIsa = 9;

// Any value of the enum is accepted (an int cast to Isa): one that is not a
// path is "unknown", and no path of any architecture.
inline bool isa_is_path(Isa isa) { return static_cast<int>(isa) >= 0 && static_cast<int>(isa) < kNumIsa; }

inline const char* isa_name(Isa isa) {
  static const char* const kNames[kNumIsa] = {
      "scalar", "avx2", "avx512", "avx512_bf16", "amx",
      "neon", "neon_bf16", "sve", "sve_bf16"};
  return isa_is_path(isa) ? kNames[static_cast<int>(isa)] : "unknown";
}

// Whether a path belongs to the architecture this code was compiled for.
inline bool isa_on_this_arch(Isa isa) {
  if (!isa_is_path(isa)) return false;
  if (isa == Isa::kScalar) return true;
  const bool x86 = isa <= Isa::kAmx;
  return x86 ? TILEKIT_ARCH_X86 : TILEKIT_ARCH_ARM64;
}

// "scalar, avx2, avx512, avx512_bf16, amx" on x86.
inline std::string valid_isa_names() {
  std::string s;
  for (int i = 0; i < kNumIsa; ++i) {
    if (!isa_on_this_arch(static_cast<Isa>(i))) continue;
    if (!s.empty()) s += ", ";
    s += isa_name(static_cast<Isa>(i));
  }
  return s;
}

inline Status parse_isa(const char* name, Isa* out) {
  if (!name || !out) return fail(Status::kNullPointer, "parse_isa: null argument");
  for (int i = 0; i < kNumIsa; ++i) {
    if (std::strcmp(name, isa_name(static_cast<Isa>(i))) != 0) continue;
    if (!isa_on_this_arch(static_cast<Isa>(i))) {
      return fail(Status::kInvalidArgument,
                  "ISA '%s' is not a path of this architecture; valid names: %s",
                  name, valid_isa_names().c_str());
    }
    *out = static_cast<Isa>(i);
    return Status::kOk;
  }
  return fail(Status::kInvalidArgument, "unknown ISA '%s'; valid names: %s",
              name, valid_isa_names().c_str());
}

namespace cpu {

// Whether path `isa` rounds fp32 to bf16 in one instruction (vcvtneps2bf16,
// BFCVT): the paths whose CPU has BF16. Their portable kernels (Highway
// targets shared with the paths below) take it as a template flag, so the
// path without BF16 keeps the bit rounding.
inline bool isa_converts_bf16(Isa isa) {
  return isa == Isa::kAvx512Bf16 || isa == Isa::kAmx || isa == Isa::kNeonBf16 || isa == Isa::kSveBf16;
}

// Whether the CPU (and OS) can run a path: its own features and those of every
// level below it on the same architecture.
inline bool cpu_supports(const Features& f, Isa isa) {
  switch (isa) {
    case Isa::kScalar: return true;
    case Isa::kAvx2: return f.avx2 && f.fma;
    case Isa::kAvx512:
      return cpu_supports(f, Isa::kAvx2) && f.avx512f && f.avx512bw && f.avx512dq && f.avx512vl;
    case Isa::kAvx512Bf16: return cpu_supports(f, Isa::kAvx512) && f.avx512_bf16;
    case Isa::kAmx: return cpu_supports(f, Isa::kAvx512Bf16) && f.amx();
    // Highway 1.0.3 counts NEON as supported only with AES (targets.cc): on a
    // CPU without it (e.g. Raspberry Pi 4) `neon` would silently run EMU128.
    case Isa::kNeon: return f.neon && f.aes;
    case Isa::kNeonBf16: return cpu_supports(f, Isa::kNeon) && f.arm_bf16;
    // sve sits above neon_bf16 in the order but needs neither BF16 (A64FX) nor
    // AES (Highway's SVE target does not).
    case Isa::kSve: return f.neon && f.sve;
    case Isa::kSveBf16: return f.neon && f.sve && f.arm_bf16;
  }
  return false;
}

struct Choice {
  Isa isa = Isa::kScalar;
  std::string reason;
};

namespace detail {

constexpr int kNoCap = -1;

// The cap from TILEKIT_MAX_ISA, read once. A bad name is reported on stderr and
// ignored: there is no caller to return an error to at initialisation.
inline int env_cap() {
  static const int cap = [] {
    const char* env = std::getenv("TILEKIT_MAX_ISA");
    if (!env || !*env) return kNoCap;
    Isa isa = Isa::kScalar;
    if (parse_isa(env, &isa) != Status::kOk) {
      std::fprintf(stderr, "tilekit: ignoring TILEKIT_MAX_ISA: %s\n", last_error());
      return kNoCap;
    }
    return static_cast<int>(isa);
  }();
  return cap;
}

inline std::atomic<int>& api_cap() {
  static std::atomic<int> cap{kNoCap};
  return cap;
}

inline Isa best_supported(const Features& f, int cap) {
  Isa best = Isa::kScalar;
  for (int i = 0; i < kNumIsa; ++i) {
    const Isa isa = static_cast<Isa>(i);
    if (!isa_on_this_arch(isa) || !cpu_supports(f, isa)) continue;
    if (cap != kNoCap && i > cap) continue;
    best = isa;
  }
  return best;
}

inline int lower_cap(int env, int api) {
  return api != kNoCap && (env == kNoCap || api < env) ? api : env;
}

inline Choice choose(const Features& f, int env, int api) {
  const Isa cpu_best = best_supported(f, kNoCap);
  const int cap = lower_cap(env, api);
  Choice c;
  c.isa = best_supported(f, cap);
  c.reason = std::string(isa_name(c.isa));
  if (c.isa == cpu_best) {
    c.reason += ": best path this CPU allows";
  } else {
    c.reason += std::string(": capped below ") + isa_name(cpu_best) + " by " +
                (cap == api && api != kNoCap ? "set_max_isa()" : "TILEKIT_MAX_ISA");
  }
  if (f.amx_tile && !f.amx_os) c.reason += std::string(" (AMX present but ") + f.amx_note + ")";
  return c;
}

}  // namespace detail

// The path kernels take now. Cheap: features are cached; this recomputes a few
// comparisons so that a cap set by set_max_isa() applies to the next call.
inline Choice choice() {
  return detail::choose(features(), detail::env_cap(), detail::api_cap().load(std::memory_order_relaxed));
}
inline Isa active_isa() {
  const int api = detail::api_cap().load(std::memory_order_relaxed);
  return detail::best_supported(features(), detail::lower_cap(detail::env_cap(), api));
}

}  // namespace cpu

// Caps the path in code, like TILEKIT_MAX_ISA (the lower of the two wins). A cap
// above what the CPU has changes nothing.
//
// With kernels running on other threads (tests/concurrency_test.cc checks it
// under ThreadSanitizer):
//  - the cap is one atomic; setting it while kernels run is not a data race;
//  - every entry point reads the active path once, when it starts, and runs
//    entirely on that path, its executor's threads included (a GEMM checks the
//    packed layout, picks its tile height, loops and epilogue for that one
//    path). A call that started before set_max_isa() returned may finish on
//    the old path; a call that starts after it (on any thread, once the store
//    is visible there: relaxed order, so "after" means ordered by the caller's
//    own synchronisation) runs on the new one;
//  - weights packed before the change keep their layout: a GEMM on a path
//    whose layout differs refuses them (Status::kWrongPacking) and leaves C
//    untouched.
inline Status set_max_isa(Isa isa) {
  if (!isa_on_this_arch(isa)) {
    return fail(Status::kInvalidArgument, "ISA '%s' (%d) is not a path of this architecture; valid names: %s",
                isa_name(isa), static_cast<int>(isa), valid_isa_names().c_str());
  }
  cpu::detail::api_cap().store(static_cast<int>(isa), std::memory_order_relaxed);
  return Status::kOk;
}
inline Status set_max_isa(const char* name) {
  Isa isa = Isa::kScalar;
  const Status s = parse_isa(name, &isa);
  return s == Status::kOk ? set_max_isa(isa) : s;
}
// Removes the cap set in code (TILEKIT_MAX_ISA still applies).
inline void clear_max_isa() { cpu::detail::api_cap().store(cpu::detail::kNoCap, std::memory_order_relaxed); }

}  // namespace tilekit

#endif  // TILEKIT_CPU_ISA_H_

// set_max_isa, by name (arbitrary strings) and by value (any int cast to Isa),
// then a kernel call on whatever path results.
//
// Checks: a name or value is accepted exactly when it names a path of this
// architecture; an accepted cap gives the highest supported path at or below
// it, and a refused one leaves the previous cap in place; the choice's reason
// is non-empty; a conversion then matches the scalar reference bit for bit.
#include "fuzz.h"

namespace tilekit {
namespace {

void CheckConversion(FuzzedDataProvider& in) {
  const size_t n = in.ConsumeIntegralInRange<size_t>(0, 40);
  std::vector<float> x(n);
  for (float& v : x) {
    const uint32_t u = in.ConsumeIntegral<uint32_t>();
    std::memcpy(&v, &u, 4);
  }
  std::vector<bf16> y(n);
  TILEKIT_FUZZ_CHECK(convert_f32_to_bf16(x.data(), y.data(), n) == Status::kOk, "convert");
  for (size_t i = 0; i < n; ++i) TILEKIT_FUZZ_CHECK(y[i].bits == f32_to_bf16(x[i]).bits, "element %zu", i);
}

void Run(FuzzedDataProvider& in) {
  while (in.remaining_bytes() > 0) {
    const Isa was = cpu::active_isa();
    Isa want = Isa::kScalar;
    bool valid = false;
    Status s;
    if (in.ConsumeBool()) {
      const std::string name = in.ConsumeRandomLengthString(16);  // may hold '\0': the name ends there
      for (int i = 0; i < kNumIsa; ++i) {
        if (std::strcmp(name.c_str(), isa_name(static_cast<Isa>(i))) == 0 && isa_on_this_arch(static_cast<Isa>(i))) {
          valid = true, want = static_cast<Isa>(i);
        }
      }
      s = set_max_isa(name.c_str());
    } else {
      const int v = in.ConsumeIntegral<int>();
      valid = v >= 0 && v < kNumIsa && isa_on_this_arch(static_cast<Isa>(v));
      want = static_cast<Isa>(v);
      s = set_max_isa(static_cast<Isa>(v));
    }
    TILEKIT_FUZZ_CHECK((s == Status::kOk) == valid, "valid %d, status %s", valid, status_name(s));
    const Isa now = cpu::active_isa();
    if (valid) {
      TILEKIT_FUZZ_CHECK(static_cast<int>(now) <= static_cast<int>(want) || now == Isa::kScalar,
                         "cap %s gave %s", isa_name(want), isa_name(now));
      TILEKIT_FUZZ_CHECK(cpu::cpu_supports(cpu::features(), now), "%s not supported", isa_name(now));
      TILEKIT_FUZZ_CHECK(now == cpu::detail::best_supported(cpu::features(), static_cast<int>(want)) ||
                             std::getenv("TILEKIT_MAX_ISA"),
                         "cap %s gave %s", isa_name(want), isa_name(now));
    } else {
      TILEKIT_FUZZ_CHECK(now == was, "refused cap changed the path %s -> %s", isa_name(was), isa_name(now));
      TILEKIT_FUZZ_CHECK(std::string(last_error()).find("valid names") != std::string::npos, "message: %s",
                         last_error());
    }
    TILEKIT_FUZZ_CHECK(!cpu::choice().reason.empty(), "no reason");
    CheckConversion(in);
  }
}

}  // namespace
}  // namespace tilekit

TILEKIT_FUZZ_ENTRY(tilekit::Run)

// Prints what tilekit detected and the path it will take (honours TILEKIT_MAX_ISA).
#include <cstdio>

#include "tilekit/tilekit.h"

int main() {
  const tilekit::cpu::Features& f = tilekit::cpu::features();
  std::printf("features: %s\n", f.describe().c_str());
  std::printf("caches: L1d %zu KiB, L2 %zu KiB, LLC %zu KiB; cores %u\n", f.l1d >> 10, f.l2 >> 10,
              f.llc >> 10, f.cores);
  std::printf("valid paths: %s\n", tilekit::valid_isa_names().c_str());
  std::printf("reason: %s\n", tilekit::cpu::path_report().c_str());
  std::printf("isa: %s\n", tilekit::isa_name(tilekit::cpu::active_isa()));
  return 0;
}

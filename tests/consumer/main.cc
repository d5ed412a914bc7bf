// What an engine embedding tilekit does first: include the umbrella header,
// convert a few weights to bf16, and report the path. Linked with a second
// translation unit that includes tilekit too, so a header defining something
// non-inline fails to link here rather than in the engine.
#include <cstdio>

#include "tilekit/tilekit.h"

float round_trip_through_second_tu(float x);  // second_tu.cc

int main() {
  const float in[5] = {1.0f, -2.5f, 3.14159265f, 65504.0f, 1e-3f};
  tilekit::bf16 out[5];
  if (tilekit::convert_f32_to_bf16(in, out, 5) != tilekit::Status::kOk) {
    std::fprintf(stderr, "convert_f32_to_bf16 failed: %s\n", tilekit::last_error());
    return 1;
  }
  int bad = 0;
  for (int i = 0; i < 5; ++i) {
    const float back = tilekit::bf16_to_f32(out[i]);
    std::printf("%g -> bf16 0x%04x -> %g\n", in[i], out[i].bits, back);
    bad += out[i].bits != tilekit::f32_to_bf16(in[i]).bits;
    bad += round_trip_through_second_tu(in[i]) != back;
  }
  std::printf("isa: %s\n", tilekit::cpu::path_report().c_str());
  return bad ? 1 : 0;
}

// The second translation unit of the consumer test (see main.cc).
#include "tilekit/tilekit.h"

float round_trip_through_second_tu(float x) {
  tilekit::bf16 h;
  float back = 0.f;
  if (tilekit::convert_f32_to_bf16(&x, &h, 1) != tilekit::Status::kOk) return -1.f;
  if (tilekit::convert_bf16_to_f32(&h, &back, 1) != tilekit::Status::kOk) return -1.f;
  return back;
}

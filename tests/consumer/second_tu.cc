// The second translation unit of the consumer test (see main.cc). A host that
// uses Highway itself may include its headers before tilekit.h: the API header
// has no Highway in it. (Not in the all-inline mode, where tilekit.h compiles
// the kernels and Highway's foreach_target must come first.)
#ifndef TILEKIT_ALL_INLINE
#include <hwy/highway.h>
#endif

#include "tilekit/tilekit.h"

float round_trip_through_second_tu(float x) {
  tilekit::bf16 h;
  float back = 0.f;
  if (tilekit::convert_f32_to_bf16(&x, &h, 1) != tilekit::Status::kOk) return -1.f;
  if (tilekit::convert_bf16_to_f32(&h, &back, 1) != tilekit::Status::kOk) return -1.f;
  return back;
}

// A GEMM from this file too, so two files instantiate the same entry points.
bool gemm_in_second_tu(const float* x, const tilekit::PackedWeights& w, float* y, size_t m) {
  return tilekit::gemm(tilekit::matrix(x, m, w.k()), w, tilekit::matrix(y, m, w.n())) == tilekit::Status::kOk;
}

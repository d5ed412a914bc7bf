// apply_epilogue from arbitrary bytes: C's shape and ld (0, 1, tails, and
// sizes whose bytes overflow size_t), alpha, beta (refused: no product), bias,
// each activation (SwiGLU refused: no gate/up pair), residual with its own ld
// or in place, clamp, bias or residual overlapping C, on any path.
//
// Differential: every element against the fp64 epilogue (tests/gemm_reference.h
// EpilogueRef, the GEMM's bound with an exact accumulator); padding between
// rows untouched. A refused call leaves C as it was.
#include "../gemm_reference.h"
#include "../guarded_buffer.h"  // SpanElements
#include "fuzz.h"

namespace tilekit {
namespace {

void Run(FuzzedDataProvider& in) {
  fuzz::Force(fuzz::PickPath(in));
  size_t rows = fuzz::Dim(in, 20), cols = fuzz::Dim(in, 150);
  const size_t ld = cols + in.ConsumeIntegralInRange<size_t>(0, 3);
  Epilogue ep;
  ep.alpha = fuzz::Pick(in, {1.f, 0.5f, -1.5f, 0.f, 3.f});
  ep.beta = in.ConsumeIntegralInRange<int>(0, 15) == 0 ? 1.f : 0.f;
  ep.activation = static_cast<Activation>(in.ConsumeIntegralInRange<int>(0, 6));
  const uint8_t ops = in.ConsumeIntegral<uint8_t>();
  if (ops & 8) ep.clamp_min = fuzz::Pick(in, {-0.5f, -2.f, 0.f}), ep.clamp_max = fuzz::Pick(in, {0.75f, 2.f, 0.f});
  const int corruption = in.ConsumeIntegralInRange<int>(0, 11);  // 0-4: one of these, else none
  fuzz::Values values(in.ConsumeIntegral<uint64_t>());

  std::vector<float> c(rows * ld + 1), bias(cols + 1), res;
  values.fill(c);
  for (float& v : c) v *= 4;  // past the activations' linear parts
  values.fill(bias);
  const bool in_place = (ops & 4) != 0;
  size_t ldr = ld;
  if (ops & 1) ep.bias = bias.data();
  if (ops & 2) {
    if (in_place) {
      ep.residual = c.data();
    } else {
      ldr = cols + in.ConsumeIntegralInRange<size_t>(0, 3);
      res.resize(rows * ldr + 1);
      values.fill(res);
      ep.residual = res.data();
    }
    ep.ld_residual = ldr;
  }
  MatrixView<float> cv{c.data(), rows, cols, ld};
  bool must_fail = ep.beta != 0 || is_gated(ep.activation);
  switch (corruption) {
    case 0: if (cols) cv.ld = cols - 1, must_fail = true; break;
    case 1: if (rows >= 2 && cols) cv.rows = fuzz::HugeDim(in), must_fail = true; break;
    case 2: if (ep.bias && rows && cols) ep.bias = c.data() + (rows - 1) * ld, must_fail = true; break;
    case 3:  // one element along: overlaps C when C spans two or more
      if (ep.residual && testing::SpanElements(rows, cols, ld) >= 2) {
        ep.residual = c.data() + 1, ep.ld_residual = ld, must_fail = true;
      }
      break;
    case 4: if (rows && cols) cv.data = nullptr, must_fail = true; break;
    default: break;
  }
  const std::vector<float> before = c;
  const Status s = apply_epilogue(cv, ep);
  if (must_fail) {
    TILEKIT_FUZZ_CHECK(s != Status::kOk, "corruption %d accepted (beta %g, %s)", corruption, ep.beta,
                       activation_name(ep.activation));
    TILEKIT_FUZZ_CHECK(std::memcmp(c.data(), before.data(), c.size() * 4) == 0, "refused call (%s) wrote C",
                       status_name(s));
    return;
  }
  TILEKIT_FUZZ_CHECK(s == Status::kOk, "valid call refused: %s", status_name(s));
  const std::vector<float>& r = in_place ? before : res;
  for (size_t i = 0; i < rows; ++i) {
    for (size_t j = 0; j < ld; ++j) {
      const size_t at = i * ld + j;
      if (j >= cols) {
        TILEKIT_FUZZ_CHECK(std::memcmp(&c[at], &before[at], 4) == 0, "padding C[%zu][%zu] written", i, j);
        continue;
      }
      double want, bound;
      testing::EpilogueRef(ep, before[at], 0, 0, bias[j], ep.residual ? r[i * ldr + j] : 0.0, false, &want, &bound);
      const double err = std::fabs(c[at] - want);
      TILEKIT_FUZZ_CHECK(err <= bound + 1e-30, "C[%zu][%zu] = %.9g from %.9g, want %.9g, error %.3g > bound %.3g (%s)",
                         i, j, c[at], before[at], want, err, bound, activation_name(ep.activation));
    }
  }
}

}  // namespace
}  // namespace tilekit

TILEKIT_FUZZ_ENTRY(tilekit::Run)

// fp64 references for the row ops (rms_norm, rope, softmax) and the error
// bounds a path must meet, derived from the fp32 arithmetic (not fitted to
// results). Shared by the unit tests and tests/fuzz/ops_fuzz.cc.
#ifndef TILEKIT_TESTS_OPS_REFERENCE_H_
#define TILEKIT_TESTS_OPS_REFERENCE_H_

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "harness.h"

namespace tilekit {
namespace testing {

// RMSNorm's error bound relative to |y| (ops/rms_norm.h's order): the sum of
// D squares (D·u), the mean, the eps add and the sqrt (halved by the square
// root), the reciprocal, x·r, ·w and 1 + w: (D + 2)·u/2 + 4u. A bf16 rounding
// adds 2^-8 wherever the options put one (x·r rounded to x's dtype for
// kBeforeWeight, y stored as bf16), each relative to a value already off by
// the fp32 part: the (1 + 2·2^-8) factor.
inline double RmsNormRelBound(size_t dim, bool x_bf16, bool y_bf16, Bf16Rounding rounding) {
  const double fp32_rel = (dim + 2) * kF32Eps / 2 + 4 * kF32Eps;
  const bool round_before = x_bf16 && rounding == Bf16Rounding::kBeforeWeight;
  return (fp32_rel + (round_before ? kBf16Eps : 0) + (y_bf16 ? kBf16Eps : 0)) * (1 + 2 * kBf16Eps);
}

// HF's inverse frequencies, written as its _compute_*_parameters read
// (arange(0, d, 2) / d exponents, then the scaling's rule), in double.
inline std::vector<double> RopeReferenceInvFreq(const RopeConfig& c, size_t max_positions, double* attention) {
  constexpr double kPi = 3.14159265358979323846;
  const size_t d = c.rotary_dim ? c.rotary_dim : c.head_dim;
  double base = c.theta;
  *attention = 1.0;
  if (c.scaling == RopeScaling::kDynamicNtk) {
    const double mpe = static_cast<double>(c.original_max_positions);
    double seq_len = static_cast<double>(c.dynamic_seq_len ? c.dynamic_seq_len : max_positions);
    if (!(seq_len > mpe)) seq_len = mpe;
    base = base * std::pow((c.factor * seq_len / mpe) - (c.factor - 1), static_cast<double>(d) / (d - 2));
  }
  std::vector<double> inv;
  for (size_t j = 0; j < d; j += 2) inv.push_back(1.0 / std::pow(base, static_cast<double>(j) / d));
  if (c.scaling == RopeScaling::kLinear) {
    for (double& f : inv) f /= c.factor;
  } else if (c.scaling == RopeScaling::kLlama3) {
    const double old_len = static_cast<double>(c.original_max_positions);
    const double low_freq_wavelen = old_len / c.low_freq_factor, high_freq_wavelen = old_len / c.high_freq_factor;
    for (double& f : inv) {
      const double wavelen = 2 * kPi / f;
      const double llama = wavelen > low_freq_wavelen ? f / c.factor : f;
      const double smooth = (old_len / wavelen - c.low_freq_factor) / (c.high_freq_factor - c.low_freq_factor);
      const double smoothed = (1 - smooth) * llama / c.factor + smooth * llama;
      const bool medium = !(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen);
      f = medium ? smoothed : llama;
    }
  } else if (c.scaling == RopeScaling::kYarn) {
    // get_mscale: 1 for factor <= 1 (no interpolation, no temperature).
    *attention = c.attention_factor > 0 ? c.attention_factor : c.factor <= 1 ? 1.0 : 0.1 * std::log(c.factor) + 1.0;
    const double mpe = static_cast<double>(c.original_max_positions);
    auto find_correction_dim = [&](double num_rotations) {
      return (d * std::log(mpe / (num_rotations * 2 * kPi))) / (2 * std::log(base));
    };
    double low = std::floor(find_correction_dim(c.beta_fast)), high = std::ceil(find_correction_dim(c.beta_slow));
    low = std::max(low, 0.0);
    high = std::min(high, static_cast<double>(d - 1));
    if (low == high) high += 0.001;
    for (size_t i = 0; i < inv.size(); ++i) {
      const double pos_freq = std::pow(base, static_cast<double>(2 * i) / d);
      const double extrapolation = 1.0 / pos_freq, interpolation = 1.0 / (c.factor * pos_freq);
      const double ramp = std::clamp((static_cast<double>(i) - low) / (high - low), 0.0, 1.0);
      const double extrapolation_factor = 1 - ramp;
      inv[i] = interpolation * (1 - extrapolation_factor) + extrapolation * extrapolation_factor;
    }
  }
  return inv;
}

// The library's inverse frequencies and the reference's are the same formulas
// in two orders: pow (<= 1 ulp), a reciprocal, a division by the factor and
// the two-term blend of llama3 or YaRN each side, under 16 ulps of double
// (relative); an angle p·inv_freq moves by p·inv_freq times that.
constexpr double kRopeInvFreqRel = 16 * std::numeric_limits<double>::epsilon();

// One rotated element: x and its partner xp (as stored, widened), the fp64
// cos and sin of its angle (times the attention factor), `first` for the
// element that subtracts. Bound: the table's fp32 rounding and up to two
// product roundings per term, one for the sum; then bf16's rounding of the
// result. `angle_err` covers the angle itself: the table's angle and the
// reference's are p·inv_freq in double from two orderings of the same
// formula, apart by a few double roundings (relative, `inv_rel`), which moves
// cos and sin by up to p·inv·inv_rel·attention.
struct RopeElement {
  double ref, bound;
};
inline RopeElement RopeElementRef(double x, double xp, double c, double s, bool first, bool bf16,
                                  double angle_err = 0) {
  RopeElement e;
  e.ref = first ? x * c - xp * s : x * c + xp * s;
  const double f32_err = 2 * kF32Eps * (std::fabs(x * c) + std::fabs(xp * s)) + kF32Eps * std::fabs(e.ref) +
                         angle_err * (std::fabs(x) + std::fabs(xp));
  e.bound = (bf16 ? kBf16Eps * (std::fabs(e.ref) + f32_err) + f32_err : f32_err) * (1 + 1e-6) + 1e-30;
  return e;
}

// softmax(a) of one row in fp64, a_i = x_i·scale + mask_i, and each element's
// bound relative to it: a_i in fp32 (up to two roundings: u·(|x_i·scale| +
// |a_i|)), t_i = a_i - max (u·|t_i|; the computed max shifts every t alike and
// cancels), hn::Exp (1 ULP <= 2u), so each e_i is off by δ_i; the sum of n of
// them adds (n - 1)·u, the reciprocal and the product 2u: δ_i + max_j δ_j +
// (n + 1)·u, with 0.1% for second-order terms.
// The special rows of ops/softmax.h: a NaN or +Inf in a gives a NaN row
// (`nan_row`), every a_i = -Inf a row of zeros; a single -Inf element has
// ref 0 and bound 0 (exactly 0 expected).
struct SoftmaxRow {
  std::vector<double> ref, bound;
  bool nan_row = false;
};
inline SoftmaxRow SoftmaxRowRef(const float* x, const float* mask, float scale, size_t n) {
  SoftmaxRow row;
  row.ref.assign(n, 0.0);
  row.bound.assign(n, 0.0);
  std::vector<double> a(n), delta(n);
  double max = -INFINITY;
  for (size_t i = 0; i < n; ++i) {
    a[i] = static_cast<double>(x[i]) * scale + (mask ? mask[i] : 0.0);
    if (std::isnan(a[i]) || a[i] == INFINITY) row.nan_row = true;
    max = std::max(max, a[i]);
  }
  if (row.nan_row || max == -INFINITY) return row;
  double sum = 0, max_delta = 0;
  for (size_t i = 0; i < n; ++i) {
    const double t = a[i] - max;
    sum += std::exp(t);
    delta[i] = std::isinf(a[i]) ? 0 : kF32Eps * (std::fabs(x[i] * scale) + std::fabs(a[i]) + std::fabs(t) + 2);
    max_delta = std::max(max_delta, delta[i]);
  }
  for (size_t i = 0; i < n; ++i) {
    row.ref[i] = std::exp(a[i] - max) / sum;
    row.bound[i] = row.ref[i] == 0 ? 0 : (delta[i] + max_delta + (n + 1) * kF32Eps) * 1.001 * row.ref[i];
  }
  return row;
}

}  // namespace testing
}  // namespace tilekit

#endif  // TILEKIT_TESTS_OPS_REFERENCE_H_

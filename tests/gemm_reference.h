// fp64 reference for GEMM + epilogue, and the error bound a path must meet,
// derived from the arithmetic (not fitted to results).
#ifndef TILEKIT_TESTS_GEMM_REFERENCE_H_
#define TILEKIT_TESTS_GEMM_REFERENCE_H_

#include <cmath>
#include <vector>

#include "harness.h"

namespace tilekit {
namespace testing {

inline double ActivateRef(Activation a, double x) {
  switch (a) {
    case Activation::kRelu: return x > 0 ? x : 0;
    case Activation::kGeluErf: return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)));
    case Activation::kGeluTanh:
    case Activation::kGeGlu:
      return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
    case Activation::kSilu:
    case Activation::kSwiGlu: return x / (1 + std::exp(-x));
    case Activation::kNone: return x;
  }
  return x;
}

// The activations of one weight matrix (SwiGLU needs a gate/up pair).
constexpr Activation kActivations[] = {Activation::kNone, Activation::kRelu, Activation::kGeluErf,
                                       Activation::kGeluTanh, Activation::kSilu};

// Largest |f'(x)| of each activation (GELU's derivative peaks at ~1.13, SiLU's
// at ~1.1): how an input error grows through it.
inline double ActivationLipschitz(Activation a) {
  return a == Activation::kNone || a == Activation::kRelu ? 1.0 : 1.13;
}

// Error of the vector activation itself, relative to |x|: A&S erf (1.5e-7
// absolute, times |x|/2), Exp/Tanh (<= 4 ulp) and a few roundings around them.
constexpr double kActivationRelError = 4e-7;

// The epilogue of one element (epilogue/epilogue.h's order) in fp64, from an
// accumulator `acc` known within `acc_err`, and the bound on the path's result:
// v = act(alpha·acc + beta·c_old + bias) (+ residual, clamp, output rounding).
// The residual and clamp steps, shared with SwiGLU's pair.
inline void FinishEpilogueRef(const Epilogue& ep, double residual, bool c_bf16, double* v, double* err) {
  if (ep.residual) {
    *err += kF32Eps * (std::fabs(*v) + std::fabs(residual));
    *v += residual;
  }
  if (ep.clamps()) *v = std::min<double>(std::max<double>(*v, ep.clamp_min), ep.clamp_max);
  // Output rounding: half an ulp of the stored type.
  *err += (c_bf16 ? kBf16Eps : kF32Eps) * std::fabs(*v);
}

inline void EpilogueRef(const Epilogue& ep, double acc, double acc_err, double c_old, double bias, double residual,
                        bool c_bf16, double* v, double* err) {
  const double u = kF32Eps;
  const double pre = ep.alpha * acc + ep.beta * c_old + (ep.bias ? bias : 0.0);
  *v = ActivateRef(ep.activation, pre);
  // alpha·acc + beta·C_old + bias: three roundings of terms of this size.
  const double terms = std::fabs(ep.alpha * acc) + std::fabs(ep.beta * c_old) + (ep.bias ? std::fabs(bias) : 0.0);
  *err = ActivationLipschitz(ep.activation) * (acc_err + 3 * u * terms) +
         (ep.activation == Activation::kNone || ep.activation == Activation::kRelu
              ? 0.0
              : kActivationRelError * std::fabs(pre));
  FinishEpilogueRef(ep, residual, c_bf16, v, err);
}

struct GemmCase {
  size_t m = 0, n = 0, k = 0;
  bool a_bf16 = false, w_bf16 = false, c_bf16 = false;
  Epilogue ep;
  bool gate_up = false;  // n output columns from 2n weight columns (gate | up)
  // The path multiplies in bf16 (a matrix-instruction kernel): it rounds an
  // fp32 A to bf16 itself (the reference keeps the exact fp32 A and the bound
  // grows by that rounding), and on Arm BFMMLA also rounds its fp32 sums to odd.
  bool a_rounded = false;
  bool odd_rounded_sums = false;
  // Roundings on the way of one product to the sum, where that is not K: a
  // quantized kernel also rounds per group and per dequantized weight (see
  // tests/quant_test.cc), 0 = K.
  size_t sum_terms = 0;
};

// Holds inputs in fp32 (bf16 inputs are stored already rounded, so the
// reference sees exactly what the kernel sees) and computes the fp64 result and
// a per-element bound.
struct GemmReference {
  std::vector<double> out, bound;

  // a: m×k (lda), w: k×wn row-major (wn = n or 2n for gate/up), c_old: m×n.
  // w_mag (k×wn, optional): the magnitude each product's roundings scale with,
  // per weight, where it is not |w| (a quantized weight stored with a zero
  // point: |q| + 2z steps of its scale).
  void compute(const GemmCase& g, const float* a, size_t lda, const float* w, const float* c_old,
               size_t ldc_old, const float* w_mag = nullptr) {
    const size_t wn = g.gate_up ? 2 * g.n : g.n;
    // fp32 accumulation of K products: |error| <= gamma_K · Σ|a||b| (Higham 3.5);
    // inputs are exact here (rounded before the reference sees them).
    const double u = kF32Eps;
    // Only where the path rounds fp32 A to bf16 itself (g.a_rounded): each â =
    // a(1 + d), |d| <= 2^-8, moves each product by at most 2^-8·|a||b|, and the
    // accumulation bound then applies to Σ|â||b| <= (1 + 2^-8)·Σ|a||b|. BFMMLA
    // without FEAT_EBF16 rounds its fp32 sums to odd: within 1 ulp, not 1/2, so
    // the unit is 2u there. (Matrix instructions also flush denormal products,
    // < 2^-126 each: inside the absolute slack added at the end.)
    const double a_eps = g.a_rounded ? kBf16Eps : 0.0;
    const double u_sum = g.odd_rounded_sums ? 2 * u : u;
    const double terms = static_cast<double>((g.sum_terms ? g.sum_terms : g.k) + 2);
    const double gamma = terms * u_sum / (1 - terms * u_sum);
    const double dot_err = a_eps + gamma * (1 + a_eps);  // times Σ|a||b|
    const Epilogue& ep = g.ep;
    out.assign(g.m * g.n, 0);
    bound.assign(g.m * g.n, 0);
    std::vector<double> dot(wn), mag(wn);
    for (size_t i = 0; i < g.m; ++i) {
      std::fill(dot.begin(), dot.end(), 0.0);
      std::fill(mag.begin(), mag.end(), 0.0);
      for (size_t kk = 0; kk < g.k; ++kk) {
        const double av = a[i * lda + kk];
        const float* wr = w + kk * wn;
        const float* mr = w_mag ? w_mag + kk * wn : wr;
        for (size_t j = 0; j < wn; ++j) {
          dot[j] += av * wr[j];
          mag[j] += std::fabs(av * mr[j]);
        }
      }
      for (size_t j = 0; j < g.n; ++j) {
        const double cold = ep.beta != 0 ? static_cast<double>(c_old[i * ldc_old + j]) : 0.0;
        const double res = ep.residual ? ep.residual[i * ep.ld_residual + j] : 0.0;
        double v, err;
        if (g.gate_up) {
          const double gate = ep.alpha * dot[j], up = ep.alpha * dot[g.n + j];
          const double eg = std::fabs(ep.alpha) * dot_err * mag[j], eu = std::fabs(ep.alpha) * dot_err * mag[g.n + j];
          // The gate's activation: silu (SwiGLU) or gelu_tanh (GeGLU); both
          // have |f'| <= 1.13 and the vector form's kActivationRelError.
          const double sg = ActivateRef(ep.activation, gate);
          v = sg * up + ep.beta * cold;
          err = 1.13 * eg * (std::fabs(up) + eu) + std::fabs(sg) * eu +
                kActivationRelError * std::fabs(gate * up) + 2 * u * std::fabs(sg * up);
          FinishEpilogueRef(ep, res, g.c_bf16, &v, &err);
        } else {
          EpilogueRef(ep, dot[j], std::fabs(ep.alpha) * dot_err * mag[j], cold, ep.bias ? ep.bias[j] : 0.0, res,
                      g.c_bf16, &v, &err);
        }
        out[i * g.n + j] = v;
        bound[i * g.n + j] = err + 1e-30;
      }
    }
  }
};

}  // namespace testing
}  // namespace tilekit

#endif  // TILEKIT_TESTS_GEMM_REFERENCE_H_

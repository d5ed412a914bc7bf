// Per-target application of an Epilogue to one vector of fp32 accumulators (one
// row, up to Lanes columns) on its way to C, in the documented order.
//
// The activation step is an elementwise functor, the same kind an engine writes
// for its own epilogue (gemm/epilogue_functor.h):
//   template <class D, class V> V operator()(D d, V v, size_t row, size_t col, size_t n) const
// v holds the values of output row `row`, lane i at column col + i of C; the
// first n lanes are stored, the rest are computed and dropped. The built-in
// activations below ignore row, col and n; the Activation switch
// picks one of them once per tile (WithActivation), not once per vector.
#if defined(TILEKIT_EPILOGUE_EPILOGUE_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TILEKIT_EPILOGUE_EPILOGUE_INL_H_
#undef TILEKIT_EPILOGUE_EPILOGUE_INL_H_
#else
#define TILEKIT_EPILOGUE_EPILOGUE_INL_H_
#endif

#include <hwy/contrib/math/math-inl.h>
#include <hwy/highway.h>

#include "tilekit/base/bf16.h"
#include "tilekit/epilogue/epilogue.h"
#include "tilekit/simd/exp-inl.h"
#include "tilekit/simd/load_store-inl.h"
#include "tilekit/simd/tanh-inl.h"

HWY_BEFORE_NAMESPACE();
namespace tilekit {
namespace detail {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// ---- Activations.
struct IdentityOp {
  template <class D, class V>
  HWY_INLINE V operator()(D, V x, size_t, size_t, size_t) const { return x; }
};

struct ReluOp {
  template <class D, class V>
  HWY_INLINE V operator()(D d, V x, size_t, size_t, size_t) const { return hn::Max(x, hn::Zero(d)); }
};

// sigmoid(x) = 1 / (1 + e^-x); Exp is valid up to +104, so -x is capped at 88
// (where e^-x already exceeds 1e38 and sigmoid is 0 to fp32 precision).
struct SiluOp {
  template <class D, class V>
  HWY_INLINE V operator()(D d, V x, size_t, size_t, size_t) const {
    const V e = hn::Exp(d, hn::Min(hn::Neg(x), hn::Set(d, 88.f)));
    return hn::Div(x, hn::Add(hn::Set(d, 1.f), e));
  }
};

struct GeluTanhOp {
  template <class D, class V>
  HWY_INLINE V operator()(D d, V x, size_t, size_t, size_t) const {
    const V kSqrt2OverPi = hn::Set(d, 0.7978845608028654f);
    const V inner = hn::Mul(kSqrt2OverPi, hn::MulAdd(hn::Mul(hn::Set(d, 0.044715f), x), hn::Mul(x, x), x));
    const V half_x = hn::Mul(hn::Set(d, 0.5f), x);
    return hn::MulAdd(half_x, TanhKeepNaN(d, inner), half_x);  // inner is ±Inf past |x| ~ 1e13
  }
};

// Highway 1.0.3 has no Erf. Abramowitz & Stegun 7.1.26: |error| <= 1.5e-7 over
// all reals, one Exp and a degree-5 polynomial: erf(|z|) = 1 - p(t)·e^(-z²),
// t = 1 / (1 + 0.3275911·|z|); the sign is copied back.
struct GeluErfOp {
  template <class D, class V>
  HWY_INLINE V operator()(D d, V x, size_t, size_t, size_t) const {
    const V z = hn::Mul(x, hn::Set(d, 0.7071067811865476f));
    const V az = hn::Abs(z);
    const V t = hn::Div(hn::Set(d, 1.f), hn::MulAdd(hn::Set(d, 0.3275911f), az, hn::Set(d, 1.f)));
    V p = hn::Set(d, 1.061405429f);
    p = hn::MulAdd(p, t, hn::Set(d, -1.453152027f));
    p = hn::MulAdd(p, t, hn::Set(d, 1.421413741f));
    p = hn::MulAdd(p, t, hn::Set(d, -0.284496736f));
    p = hn::MulAdd(p, t, hn::Set(d, 0.254829592f));
    p = hn::Mul(p, t);
    const V e = ExpKeepNaN(d, hn::Neg(hn::Mul(az, az)));  // a NaN x: Exp of NaN is UB on EMU128
    const V erf_abs = hn::NegMulAdd(p, e, hn::Set(d, 1.f));
    const V erf = hn::CopySign(erf_abs, z);
    const V half_x = hn::Mul(hn::Set(d, 0.5f), x);
    return hn::MulAdd(half_x, erf, half_x);
  }
};

// Calls fn(op) with the functor of activation `a`: the switch runs once per
// tile (or row pass), and each activation gets a store loop of its own.
template <class Fn>
HWY_INLINE void WithActivation(Activation a, Fn&& fn) {
  switch (a) {
    case Activation::kRelu: return fn(ReluOp());
    case Activation::kGeluErf: return fn(GeluErfOp());
    case Activation::kGeluTanh: return fn(GeluTanhOp());
    case Activation::kSilu: return fn(SiluOp());
    default: return fn(IdentityOp());  // kNone; kSwiGlu and kGeGlu are applied by StoreSwiGlu
  }
}

// Where one output row segment goes and what happens on the way.
template <typename TC>
struct OutputTile {
  TC* c;              // C + row·ldc + col, already offset
  const float* bias;  // bias + col, or null
  const float* residual;  // residual + row·ld + col, or null
  size_t n;           // valid columns (<= Lanes)
  // A bf16 C is rounded by the path's conversion instruction (the GEMM plan's
  // native_bf16; same bits, see ToBf16Bits).
  bool native_bf16 = false;
};

// v = alpha·acc + beta·C_old + bias, op(v, row, col, n) (the activation or an
// engine's functor), + residual, clamp, store. row and col locate lane 0 in C.
template <class DF, typename TC, class Op>
HWY_INLINE void StoreWithEpilogue(DF df, hn::Vec<DF> acc, const Epilogue& ep, const OutputTile<TC>& t, const Op& op,
                                  size_t row, size_t col) {
  hn::Vec<DF> v = ep.alpha == 1.f ? acc : hn::Mul(acc, hn::Set(df, ep.alpha));
  if (ep.beta != 0.f) v = hn::MulAdd(hn::Set(df, ep.beta), LoadRowF32(df, t.c, t.n), v);
  if (t.bias) v = hn::Add(v, LoadPartial(df, t.bias, t.n));
  v = op(df, v, row, col, t.n);
  if (t.residual) v = hn::Add(v, LoadPartial(df, t.residual, t.n));
  if (ep.clamps()) v = hn::Min(hn::Max(v, hn::Set(df, ep.clamp_min)), hn::Set(df, ep.clamp_max));
  StoreRow(df, v, t.c, t.n, t.native_bf16);
}

// A gate/up pair: act(alpha·gate) · (alpha·up) + beta·C_old, + residual, clamp;
// act is silu (SwiGLU) or gelu_tanh (GeGLU, ep.activation says which).
template <class DF, typename TC>
HWY_INLINE void StoreSwiGlu(DF df, hn::Vec<DF> gate, hn::Vec<DF> up, const Epilogue& ep, const OutputTile<TC>& t) {
  if (ep.alpha != 1.f) {
    gate = hn::Mul(gate, hn::Set(df, ep.alpha));
    up = hn::Mul(up, hn::Set(df, ep.alpha));
  }
  const hn::Vec<DF> act = ep.activation == Activation::kGeGlu ? GeluTanhOp()(df, gate, 0, 0, t.n)
                                                             : SiluOp()(df, gate, 0, 0, t.n);
  hn::Vec<DF> v = hn::Mul(act, up);
  if (ep.beta != 0.f) v = hn::MulAdd(hn::Set(df, ep.beta), LoadRowF32(df, t.c, t.n), v);
  if (t.residual) v = hn::Add(v, LoadPartial(df, t.residual, t.n));
  if (ep.clamps()) v = hn::Min(hn::Max(v, hn::Set(df, ep.clamp_min)), hn::Set(df, ep.clamp_max));
  StoreRow(df, v, t.c, t.n, t.native_bf16);
}

// An epilogue as a pass of its own over an fp32 matrix (C = epilogue(C)): for
// graphs where an op cannot fuse into a GEMM, and to measure what fusing saves.
template <class Op>
HWY_INLINE void ApplyEpilogueRowsWith(float* c, size_t rows, size_t cols, size_t ldc, const Epilogue& ep,
                                      const Op& op) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  for (size_t i = 0; i < rows; ++i) {
    float* row = c + i * ldc;
    const float* res = ep.residual ? ep.residual + i * ep.ld_residual : nullptr;
    for (size_t j = 0; j < cols; j += N) {
      const size_t n = HWY_MIN(N, cols - j);
      StoreWithEpilogue(df, LoadPartial(df, row + j, n), ep,
                        OutputTile<float>{row + j, ep.bias ? ep.bias + j : nullptr, res ? res + j : nullptr, n}, op,
                        i, j);
    }
  }
}
inline void ApplyEpilogueRows(float* c, size_t rows, size_t cols, size_t ldc, const Epilogue& ep) {
  WithActivation(ep.activation, [&](const auto& op) { ApplyEpilogueRowsWith(c, rows, cols, ldc, ep, op); });
}

}  // namespace HWY_NAMESPACE
}  // namespace detail
}  // namespace tilekit
HWY_AFTER_NAMESPACE();

#endif  // TILEKIT_EPILOGUE_EPILOGUE_INL_H_

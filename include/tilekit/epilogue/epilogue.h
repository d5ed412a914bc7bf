// What happens to a GEMM's fp32 accumulators on their way to memory. A small
// run-time descriptor (the graph executor builds these from a model), applied
// per register tile by each path's store code (epilogue-inl.h), so every op
// costs no extra pass over C.
//
// Order, for each output element (i, j):
//   v = alpha * (A·B)[i][j] + beta * C_old[i][j] + bias[j]
//   v = activation(v)                        (SwiGLU: silu(alpha·gate)·(alpha·up) + beta·C_old;
//                                             GeGLU the same with gelu_tanh for silu)
//   v = v + residual[i][j]
//   v = min(max(v, clamp_min), clamp_max)
//   C[i][j] = v, rounded to bf16 when C is bf16
#ifndef TILEKIT_EPILOGUE_EPILOGUE_H_
#define TILEKIT_EPILOGUE_EPILOGUE_H_

#include <cstddef>
#include <limits>

namespace tilekit {

enum class Activation {
  kNone,
  kRelu,
  kGeluErf,   // x/2 · (1 + erf(x/√2)), PyTorch's default GELU
  kGeluTanh,  // x/2 · (1 + tanh(√(2/π)(x + 0.044715x³))), GELU(approximate='tanh')
  kSilu,      // x · sigmoid(x)
  kSwiGlu,    // silu(gate) · up; needs weights packed as a gate/up pair
  kGeGlu,     // gelu_tanh(gate) · up (Gemma's MLP); a gate/up pair like kSwiGlu
};

// The activations of a gate/up pair (gemm refuses them on plain weights, and
// plain activations on a pair).
inline bool is_gated(Activation a) { return a == Activation::kSwiGlu || a == Activation::kGeGlu; }

inline const char* activation_name(Activation a) {
  switch (a) {
    case Activation::kNone: return "none";
    case Activation::kRelu: return "relu";
    case Activation::kGeluErf: return "gelu_erf";
    case Activation::kGeluTanh: return "gelu_tanh";
    case Activation::kSilu: return "silu";
    case Activation::kSwiGlu: return "swiglu";
    case Activation::kGeGlu: return "geglu";
  }
  return "?";
}

struct Epilogue {
  float alpha = 1.f;
  float beta = 0.f;                 // 0: C is write-only (never read, may hold garbage)
  const float* bias = nullptr;      // [N]
  Activation activation = Activation::kNone;
  // [M][ld_residual], N columns used. May be an fp32 C itself (residual == C,
  // ld_residual == C's ld), an in-place residual add: each element is read
  // before it is written. Any other overlap with C is refused.
  const float* residual = nullptr;
  size_t ld_residual = 0;
  float clamp_min = -std::numeric_limits<float>::infinity();
  float clamp_max = std::numeric_limits<float>::infinity();

  // Builder-style setters, so a fused op reads as one expression:
  //   Epilogue().with_bias(b).with(Activation::kGeluErf).with_residual(x, ld)
  // On a named Epilogue they change it and return it; on a temporary they
  // return a copy, so `const Epilogue& e = Epilogue().with_bias(b);` binds to
  // a value whose lifetime the reference extends instead of to a temporary
  // destroyed at the semicolon.
  Epilogue& with_bias(const float* b) & { bias = b; return *this; }
  Epilogue& with(Activation a) & { activation = a; return *this; }
  Epilogue& with_residual(const float* r, size_t ld) & { residual = r; ld_residual = ld; return *this; }
  Epilogue& with_scale(float a) & { alpha = a; return *this; }
  Epilogue& with_beta(float b) & { beta = b; return *this; }
  Epilogue& with_clamp(float lo, float hi) & { clamp_min = lo; clamp_max = hi; return *this; }
  // *this is an lvalue in here, so each calls the setter above.
  Epilogue with_bias(const float* b) && { return with_bias(b); }
  Epilogue with(Activation a) && { return with(a); }
  Epilogue with_residual(const float* r, size_t ld) && { return with_residual(r, ld); }
  Epilogue with_scale(float a) && { return with_scale(a); }
  Epilogue with_beta(float b) && { return with_beta(b); }
  Epilogue with_clamp(float lo, float hi) && { return with_clamp(lo, hi); }

  bool clamps() const {
    return clamp_min != -std::numeric_limits<float>::infinity() ||
           clamp_max != std::numeric_limits<float>::infinity();
  }
  // Nothing but a store: lets the kernel skip the per-op code entirely.
  bool is_identity() const {
    return alpha == 1.f && beta == 0.f && !bias && activation == Activation::kNone && !residual && !clamps();
  }
};

}  // namespace tilekit

#endif  // TILEKIT_EPILOGUE_EPILOGUE_H_

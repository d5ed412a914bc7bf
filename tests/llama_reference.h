// The Llama forward in fp64 with a running error bound (graph_test, and
// llama2c_fuzz's check of a loaded checkpoint), and random weights scaled so
// activations stay O(1).
#ifndef TILEKIT_TESTS_LLAMA_REFERENCE_H_
#define TILEKIT_TESTS_LLAMA_REFERENCE_H_

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "harness.h"
#include "quant_reference.h"
#include "tilekit/graph/llama.h"

namespace tilekit {
namespace testing {

// Fills the weights `w` points at (inside a buffer the caller owns, e.g. a
// llama2.c body) with uniform(lo, hi) values: variance 1/fan-in keeps
// activations O(1); norm weights near 1.
template <typename Uniform>
void FillLlamaWeights(const LlamaConfig& c, const LlamaWeights& w, Uniform&& uniform) {
  auto fill = [&](const float* p, size_t n, float scale, float lo = -1.f) {
    float* q = const_cast<float*>(p);
    for (size_t i = 0; i < n; ++i) q[i] = lo < 0 ? uniform(-scale, scale) : uniform(lo, lo + scale);
  };
  const size_t D = c.dim, H = c.hidden, qd = c.heads * c.head_dim(), kvd = c.kv_heads * c.head_dim();
  fill(w.embedding, c.vocab * D, 1.f);
  for (const LlamaLayerWeights& l : w.layers) {
    fill(l.attn_norm, D, 1.f, 0.5f);
    fill(l.ffn_norm, D, 1.f, 0.5f);
    fill(l.wq, qd * D, std::sqrt(3.f / D));
    fill(l.wk, kvd * D, std::sqrt(3.f / D));
    fill(l.wv, kvd * D, std::sqrt(3.f / D));
    fill(l.wo, D * qd, std::sqrt(3.f / qd));
    fill(l.w1, H * D, std::sqrt(3.f / D));
    fill(l.w3, H * D, std::sqrt(3.f / D));
    fill(l.w2, D * H, std::sqrt(3.f / H));
  }
  fill(w.final_norm, D, 1.f, 0.5f);
  if (!c.tied_embeddings) fill(w.classifier, c.vocab * D, std::sqrt(3.f / D));
}

// Values with their error bounds.
struct EV {
  std::vector<double> v, e;
  explicit EV(size_t n = 0) : v(n, 0.0), e(n, 0.0) {}
};

// The fp64 forward of one sequence, one token at a time, from the formulas:
// rmsnorm, x·Wᵀ, RoPE, causal softmax attention, SwiGLU, residuals, and the
// other families' features LlamaConfig switches on (graph/llama.h: biases,
// QK-norm, (1 + w) norms, sandwich norms, GeGLU, the embedding scale, sliding
// windows, local RoPE theta, logit softcaps, query_pre_attn_scalar). Beside
// each value, e holds a bound on the standard deviation of an fp32
// computation's error, propagated to first order under the probabilistic
// model of rounding (Higham & Mary 2019: each rounding an independent,
// mean-zero error of at most u relative): an inner product of n terms adds
// u·√n·Σ|x·w| (each partial sum <= Σ|x·w|) and passes on Σ w²·σ_x²; bf16
// weights (and A, where the path rounds it) add 2^-8·√Σ(x·w)²; exp, division
// and the fp32 RoPE table a few ulps. The softmax weights move by at most
// p·2·max|Δs| (worst case, as their errors are correlated). The worst-case
// (componentwise) bound is about 10^11 times the errors seen through two
// layers (|W| sums every input error with the same sign); errors stay below
// kSigmas standard deviations (a normal tail of ~1e-9).
constexpr double kSigmas = 6;
constexpr double kU = kF32Eps;

// Quantized weights (kInt8, kInt4): the reference runs on the dequantized
// weights q·s, and an inner product's roundings scale with Σ|x|·(|q| + 2z)·s
// over K + K/g + 4 of them (tests/quant_reference.h) instead of Σ|x·w| over K.
// Kernels that multiply in integers quantize x too, in GEMMs of at least
// a_int8_min_rows rows (PanelLayout): per row and sub-group of a_group(K)
// values, s = max|x| / 127, each value moved by at most s/2, an error the
// reference carries like the others (variance (s/2)² per value).
struct QuantizedBound {
  LlamaWeights magnitudes;  // (|q| + 2z)·s per weight, laid out as the weights
  size_t group = 0;         // K values per scale (0: all of K)
  size_t a_int8_min_rows = 0;  // 0: x is never quantized
  std::function<size_t(size_t k)> a_group;
};

class LlamaReference {
 public:
  LlamaReference(const LlamaConfig& c, const LlamaWeights& w, double w_rel, double a_rel,
                 const QuantizedBound* quantized = nullptr)
      : c_(c), w_(w), w_rel_(w_rel), a_rel_(a_rel), quantized_(quantized), k_(c.layers), v_(c.layers) {}

  // Feeds the token at the next position; returns the logits with bounds.
  // rows, classifier_rows: the rows of the step's GEMMs (its tokens) and of
  // its classifier's (its sequences, or its tokens for every token's logits),
  // which decide whether quantized weights' kernels quantize x.
  EV step(int token, size_t rows = 1, size_t classifier_rows = 1) {
    a_rows_ = rows;
    const size_t D = c_.dim, hs = c_.head_dim(), kvd = c_.kv_heads * hs, pos = len_++;
    EV x(D);
    for (size_t i = 0; i < D; ++i) x.v[i] = w_.embedding[token * D + i];
    if (c_.embedding_scale > 0) {
      // One fp32 product by the fp32 scale the config holds.
      for (size_t i = 0; i < D; ++i) x.v[i] *= c_.embedding_scale, x.e[i] = kU * std::fabs(x.v[i]);
    }
    for (size_t l = 0; l < c_.layers; ++l) {
      const LlamaLayerWeights& lw = w_.layers[l];
      // The magnitudes of weight matrix `member` of this layer (null: |w|).
      const auto mag = [&](const float* LlamaLayerWeights::*member) {
        return quantized_ ? quantized_->magnitudes.layers[l].*member : nullptr;
      };
      EV h = norm(x, lw.attn_norm);
      EV q = linear(h, lw.wq, mag(&LlamaLayerWeights::wq), c_.heads * hs);
      EV k = linear(h, lw.wk, mag(&LlamaLayerWeights::wk), kvd), v = linear(h, lw.wv, mag(&LlamaLayerWeights::wv), kvd);
      if (c_.qkv_bias) {
        add_bias(&q, lw.bq);
        add_bias(&k, lw.bk);
        add_bias(&v, lw.bv);
      }
      if (c_.qk_norm) {
        q = norm_heads(q, lw.q_norm, c_.heads);
        k = norm_heads(k, lw.k_norm, c_.kv_heads);
      }
      const double theta = c_.window_of(l) && c_.rope_local_theta > 0 ? c_.rope_local_theta : c_.rope.theta;
      rope(&q, pos, theta);
      rope(&k, pos, theta);
      k_[l].push_back(k);
      v_[l].push_back(v);
      EV o = attend(q, l);
      EV y = linear(o, lw.wo, mag(&LlamaLayerWeights::wo), D);
      add(&x, c_.sandwich_norms ? norm(y, lw.attn_out_norm) : y);
      h = norm(x, lw.ffn_norm);
      EV g = linear(h, lw.w1, mag(&LlamaLayerWeights::w1), c_.hidden);
      EV u = linear(h, lw.w3, mag(&LlamaLayerWeights::w3), c_.hidden), a(c_.hidden);
      for (size_t i = 0; i < c_.hidden; ++i) {
        if (c_.mlp == Activation::kGeGlu) {
          // gelu_tanh: |f'| <= 1.13; the vector form's own error (Tanh's
          // ULPs and the polynomial's roundings, kActivationRelError ~ 7u of
          // |g|) and the product's rounding.
          const double gv = g.v[i];
          const double s = 0.5 * gv * (1 + std::tanh(std::sqrt(2 / M_PI) * (gv + 0.044715 * gv * gv * gv)));
          a.v[i] = s * u.v[i];
          a.e[i] = std::sqrt(std::pow(1.13 * g.e[i] * u.v[i], 2) + std::pow(s * u.e[i], 2) +
                             std::pow(8 * kU * a.v[i], 2) + std::pow(7 * kU * gv * u.v[i], 2));
          continue;
        }
        const double s = g.v[i] / (1 + std::exp(-g.v[i]));
        a.v[i] = s * u.v[i];
        a.e[i] = std::sqrt(std::pow(1.1 * g.e[i] * u.v[i], 2) + std::pow(s * u.e[i], 2) + std::pow(8 * kU * a.v[i], 2));
      }
      EV f = linear(a, lw.w2, mag(&LlamaLayerWeights::w2), D);
      add(&x, c_.sandwich_norms ? norm(f, lw.ffn_out_norm) : f);
    }
    const EV h = norm(x, w_.final_norm);
    const float* cls = c_.tied_embeddings ? w_.embedding : w_.classifier;
    const LlamaWeights* m = quantized_ ? &quantized_->magnitudes : nullptr;
    a_rows_ = classifier_rows;
    EV logits = linear(h, cls, m ? (c_.tied_embeddings ? m->embedding : m->classifier) : nullptr, c_.vocab);
    if (c_.final_softcap > 0) {
      // c·tanh(l / c): slope <= 1, so l's error passes on; the division (u|l|
      // through tanh), Tanh's 4 ULP (8u|y|) and the product (u|y|).
      const double cap = c_.final_softcap;
      for (size_t j = 0; j < c_.vocab; ++j) {
        const double l0 = logits.v[j];
        logits.v[j] = cap * std::tanh(l0 / cap);
        logits.e[j] = std::hypot(logits.e[j], kU * std::fabs(l0) + 9 * kU * std::fabs(logits.v[j]));
      }
    }
    return logits;
  }

 private:
  // Each of `heads` equal parts of x normalised apart by one weight (QK-norm).
  EV norm_heads(const EV& x, const float* w, size_t heads) const {
    const size_t n = x.v.size() / heads;
    EV y(x.v.size());
    for (size_t h = 0; h < heads; ++h) {
      EV part(n);
      std::copy(x.v.begin() + h * n, x.v.begin() + (h + 1) * n, part.v.begin());
      std::copy(x.e.begin() + h * n, x.e.begin() + (h + 1) * n, part.e.begin());
      const EV r = norm(part, w);
      std::copy(r.v.begin(), r.v.end(), y.v.begin() + h * n);
      std::copy(r.e.begin(), r.e.end(), y.e.begin() + h * n);
    }
    return y;
  }
  // + bias, one fp32 rounding (the GEMM's epilogue).
  static void add_bias(EV* x, const float* b) {
    for (size_t i = 0; i < x->v.size(); ++i) {
      x->v[i] += b[i];
      x->e[i] = std::hypot(x->e[i], kU * x->v[i]);
    }
  }
  // rmsnorm · w, or · (1 + w) with the config's norm_weight_offset (one more
  // rounding: 1 + w).
  EV norm(const EV& x, const float* w) const {
    const size_t n = x.v.size();
    double ss = 0, xe = 0;
    for (size_t i = 0; i < n; ++i) ss += x.v[i] * x.v[i], xe += x.v[i] * x.v[i] * x.e[i] * x.e[i];
    const double r = 1 / std::sqrt(ss / n + c_.norm_eps);
    // d r / r = -Σ x·dx / (Σx² + n·eps)
    const double r_rel = std::sqrt(n) * kU + 4 * kU + std::sqrt(xe) / (ss + n * c_.norm_eps);
    EV y(n);
    const bool offset = c_.norm_weight_offset;
    for (size_t i = 0; i < n; ++i) {
      const double wi = offset ? 1.0 + w[i] : w[i];
      y.v[i] = x.v[i] * r * wi;
      y.e[i] = std::hypot(std::fabs(wi) * r * std::hypot(x.e[i], x.v[i] * r_rel), (offset ? 3 : 2) * kU * y.v[i]);
    }
    return y;
  }
  // y = x·Wᵀ, W: [n][k]; w_mag: what each product's roundings scale with,
  // per weight, where it is not |w| (quantized weights), laid out as W.
  EV linear(const EV& x, const float* w, const float* w_mag, size_t n) const {
    const size_t k = x.v.size();
    const double round2 = w_rel_ * w_rel_ + a_rel_ * a_rel_;
    const double terms = w_mag ? static_cast<double>(QuantSumTerms(k, quantized_->group)) : static_cast<double>(k);
    // Each x's variance, the quantization of x by the kernel included.
    std::vector<double> var(k);
    for (size_t i = 0; i < k; ++i) var[i] = x.e[i] * x.e[i];
    if (w_mag && quantized_->a_int8_min_rows && a_rows_ >= quantized_->a_int8_min_rows) {
      const size_t ag = quantized_->a_group(k);
      for (size_t k0 = 0; k0 < k; k0 += ag) {
        const size_t k1 = std::min(k, k0 + ag);
        double amax = 0;
        for (size_t i = k0; i < k1; ++i) amax = std::max(amax, std::fabs(x.v[i]) + kSigmas * x.e[i]);
        const double half_step = amax / 127 / 2 * (1 + 1e-3);  // the kernel's s, from its own x
        for (size_t i = k0; i < k1; ++i) var[i] += half_step * half_step;
      }
    }
    EV y(n);
    for (size_t j = 0; j < n; ++j) {
      double s = 0, mag = 0, sq = 0, prop = 0;
      for (size_t i = 0; i < k; ++i) {
        const double wi = w[j * k + i], p = x.v[i] * wi;
        s += p;
        mag += w_mag ? std::fabs(x.v[i] * w_mag[j * k + i]) : std::fabs(p);
        sq += p * p;
        prop += var[i] * wi * wi;
      }
      y.v[j] = s;
      y.e[j] = std::sqrt(prop + round2 * sq + terms * kU * kU * mag * mag + kU * kU * s * s);
    }
    return y;
  }
  static void add(EV* x, const EV& y) {
    for (size_t i = 0; i < x->v.size(); ++i) {
      x->v[i] += y.v[i];
      x->e[i] = std::sqrt(x->e[i] * x->e[i] + y.e[i] * y.e[i] + kU * kU * x->v[i] * x->v[i]);
    }
  }
  void rope(EV* x, size_t pos, double theta) const {
    const size_t hs = c_.head_dim(), half = hs / 2;
    for (size_t h = 0; h < x->v.size() / hs; ++h) {
      for (size_t i = 0; i < half; ++i) {
        const size_t a = h * hs + (c_.rope.pairing == RopePairing::kInterleaved ? 2 * i : i);
        const size_t b = a + (c_.rope.pairing == RopePairing::kInterleaved ? 1 : half);
        const double ang = pos * std::pow(theta, -2.0 * i / hs), co = std::cos(ang), si = std::sin(ang);
        const double xa = x->v[a], xb = x->v[b], ea = x->e[a], eb = x->e[b];
        const double err = 4 * kU * (std::fabs(xa) + std::fabs(xb));
        x->v[a] = xa * co - xb * si;
        x->v[b] = xa * si + xb * co;
        x->e[a] = std::sqrt(ea * ea * co * co + eb * eb * si * si + err * err);
        x->e[b] = std::sqrt(ea * ea * si * si + eb * eb * co * co + err * err);
      }
    }
  }
  EV attend(const EV& q, size_t l) const {
    const size_t hs = c_.head_dim(), S = k_[l].size(), group = c_.heads / c_.kv_heads;
    // The window keeps the keys j with (S - 1) - j < window.
    const size_t window = c_.window_of(l), j0 = window && S > window ? S - window : 0, kept = S - j0;
    const double qpas = c_.query_pre_attn_scalar;
    const double scale = 1 / std::sqrt(qpas > 0 ? qpas : static_cast<double>(hs));
    const double cap = c_.attn_softcap;
    EV o(c_.heads * hs);
    std::vector<double> s(S), p(S);
    for (size_t h = 0; h < c_.heads; ++h) {
      const size_t kh = h / group;
      double mx = -1e300, es_max = 0;
      for (size_t j = j0; j < S; ++j) {
        const EV& k = k_[l][j];
        double dot = 0, mag = 0, prop = 0;
        for (size_t i = 0; i < hs; ++i) {
          const double qi = q.v[h * hs + i], ki = k.v[kh * hs + i];
          dot += qi * ki;
          mag += std::fabs(qi * ki);
          prop += q.e[h * hs + i] * q.e[h * hs + i] * ki * ki + qi * qi * k.e[kh * hs + i] * k.e[kh * hs + i];
        }
        s[j] = dot * scale;
        double es = scale * std::sqrt(prop + hs * kU * kU * mag * mag) + 2 * kU * std::fabs(s[j]);
        // The kernel's scale is 1/√ of query_pre_attn_scalar in fp32: a few
        // ulps off the exact one.
        if (qpas > 0) es += 2 * kU * std::fabs(s[j]);
        if (cap > 0) {
          // c·tanh(s / c): slope <= 1; the division, Tanh's 4 ULP, the product.
          const double s0 = s[j];
          s[j] = cap * std::tanh(s0 / cap);
          es += kU * std::fabs(s0) + 9 * kU * std::fabs(s[j]);
        }
        es_max = std::max(es_max, es);
        mx = std::max(mx, s[j]);
      }
      double sum = 0;
      for (size_t j = j0; j < S; ++j) sum += p[j] = std::exp(s[j] - mx);
      // Softmax moves each weight by at most p·2·max|Δs|; exp, the online
      // rescales (one per key at most) and the division round a few ulps each.
      const double p_rel = 2 * es_max + 2 * std::sqrt(kept) * kU + (16 + 2.0 * kept) * kU;
      for (size_t i = 0; i < hs; ++i) {
        double acc = 0, mag = 0, prop = 0;
        for (size_t j = j0; j < S; ++j) {
          const double pj = p[j] / sum, vj = v_[l][j].v[kh * hs + i];
          acc += pj * vj;
          mag += pj * std::fabs(vj);
          prop += pj * pj * v_[l][j].e[kh * hs + i] * v_[l][j].e[kh * hs + i];
        }
        o.v[h * hs + i] = acc;
        o.e[h * hs + i] = std::hypot(std::sqrt(prop), p_rel * mag);
      }
    }
    return o;
  }

  LlamaConfig c_;
  const LlamaWeights& w_;
  double w_rel_, a_rel_;
  const QuantizedBound* quantized_;
  size_t a_rows_ = 1;  // rows of the GEMM being followed
  size_t len_ = 0;
  std::vector<std::vector<EV>> k_, v_;
};

}  // namespace testing
}  // namespace tilekit

#endif  // TILEKIT_TESTS_LLAMA_REFERENCE_H_

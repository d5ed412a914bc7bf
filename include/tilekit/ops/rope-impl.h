// Definitions of ops/rope.h (compiled once per program, by its module's implementation.h).
#ifndef TILEKIT_OPS_ROPE_IMPL_H_
#define TILEKIT_OPS_ROPE_IMPL_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "tilekit/cpu/dispatch.h"
#include "tilekit/ops/exports.h"
#include "tilekit/ops/rope.h"
#include "tilekit/ops/rows.h"
#include "tilekit/threading/split.h"

namespace tilekit {
namespace detail {

inline Status check_rope_config(const char* op, const RopeConfig& c, size_t max_positions) {
  const size_t rot = c.rotary_dim ? c.rotary_dim : c.head_dim;
  if (c.head_dim == 0) return fail(Status::kInvalidArgument, "%s: head_dim is 0", op);
  if (rot % 2 || rot > c.head_dim) {
    return fail(Status::kInvalidArgument, "%s: rotary_dim=%zu must be even and <= head_dim=%zu", op, rot, c.head_dim);
  }
  if (max_positions == 0 || max_positions > static_cast<size_t>(INT32_MAX) + 1) {
    return fail(Status::kInvalidArgument, "%s: max_positions=%zu must be in [1, 2^31]", op, max_positions);
  }
  if (!(c.theta > 1.0) || !std::isfinite(c.theta))
    return fail(Status::kInvalidArgument, "%s: theta=%g must be > 1", op, c.theta);
  if (c.scaling == RopeScaling::kNone) return Status::kOk;
  if (!(c.factor > 0.0) || !std::isfinite(c.factor)) {
    return fail(Status::kInvalidArgument, "%s: factor=%g must be > 0", op, c.factor);
  }
  if (c.scaling != RopeScaling::kLinear && c.original_max_positions == 0) {
    return fail(Status::kInvalidArgument, "%s: this scaling needs original_max_positions", op);
  }
  if (c.scaling == RopeScaling::kDynamicNtk && rot < 4) {
    return fail(Status::kInvalidArgument, "%s: dynamic NTK needs rotary_dim >= 4 (exponent d / (d - 2))", op);
  }
  if (c.scaling == RopeScaling::kLlama3 && !(c.high_freq_factor > c.low_freq_factor && c.low_freq_factor > 0)) {
    return fail(Status::kInvalidArgument, "%s: llama3 needs high_freq_factor=%g > low_freq_factor=%g > 0", op,
                c.high_freq_factor, c.low_freq_factor);
  }
  if (c.scaling == RopeScaling::kYarn && (!(c.beta_fast > 0 && c.beta_slow > 0) || c.attention_factor < 0)) {
    return fail(Status::kInvalidArgument, "%s: yarn needs beta_fast, beta_slow > 0 and attention_factor >= 0", op);
  }
  return Status::kOk;
}

// The HF rope_utils formulas, in double (see ops/rope.h).
inline void compute_inv_freq(const RopeConfig& c, size_t max_positions, std::vector<double>* inv, double* attention) {
  const size_t d = c.rotary_dim ? c.rotary_dim : c.head_dim, half = d / 2;
  double base = c.theta;
  const double l0 = static_cast<double>(c.original_max_positions);
  if (c.scaling == RopeScaling::kDynamicNtk) {
    const double len = std::max(static_cast<double>(c.dynamic_seq_len ? c.dynamic_seq_len : max_positions), l0);
    base *= std::pow(c.factor * len / l0 - (c.factor - 1.0), static_cast<double>(d) / static_cast<double>(d - 2));
  }
  inv->resize(half);
  for (size_t i = 0; i < half; ++i)
    (*inv)[i] = 1.0 / std::pow(base, static_cast<double>(2 * i) / static_cast<double>(d));
  *attention = 1.0;
  const double kTwoPi = 6.283185307179586476925286766559;
  switch (c.scaling) {
    case RopeScaling::kNone:
    case RopeScaling::kDynamicNtk:
      break;
    case RopeScaling::kLinear:
      for (double& f : *inv) f /= c.factor;
      break;
    case RopeScaling::kLlama3: {
      const double low_wavelen = l0 / c.low_freq_factor, high_wavelen = l0 / c.high_freq_factor;
      for (double& f : *inv) {
        const double wavelen = kTwoPi / f;
        if (wavelen > low_wavelen) {
          f /= c.factor;
        } else if (wavelen >= high_wavelen) {  // medium: interpolate
          const double smooth = (l0 / wavelen - c.low_freq_factor) / (c.high_freq_factor - c.low_freq_factor);
          f = (1.0 - smooth) * f / c.factor + smooth * f;
        }
      }
      break;
    }
    case RopeScaling::kYarn: {
      *attention = c.attention_factor > 0 ? c.attention_factor : (c.factor > 1 ? 0.1 * std::log(c.factor) + 1.0 : 1.0);
      // The dimension whose wavelength makes `rotations` turns over L0.
      const auto correction_dim = [&](double rotations) {
        return static_cast<double>(d) * std::log(l0 / (rotations * kTwoPi)) / (2.0 * std::log(base));
      };
      const double low = std::max(std::floor(correction_dim(c.beta_fast)), 0.0);
      double high = std::min(std::ceil(correction_dim(c.beta_slow)), static_cast<double>(d - 1));
      if (low == high) high += 0.001;  // as HF: no division by zero
      for (size_t i = 0; i < half; ++i) {
        const double ramp = std::min(std::max((static_cast<double>(i) - low) / (high - low), 0.0), 1.0);
        const double extrapolation = 1.0 - ramp;  // weight of the unscaled frequency
        (*inv)[i] = (*inv)[i] / c.factor * (1.0 - extrapolation) + (*inv)[i] * extrapolation;
      }
      break;
    }
  }
}

template <typename T>
Status rope_impl(HeadsView<T> q, HeadsView<T> k, const int32_t* positions, const RopeTable& table, Executor* executor) {
  const char* op = "rope";
  Status s;
  if ((s = check_view(op, "q", q)) != Status::kOk || (s = check_view(op, "k", k)) != Status::kOk) return s;
  if (table.max_positions() == 0) return fail(Status::kInvalidArgument, "%s: the table is empty (make_rope_table)", op);
  const bool has_k = k.tokens && k.heads;
  if (q.head_dim != table.head_dim() || (has_k && k.head_dim != table.head_dim())) {
    return fail(Status::kShapeMismatch, "%s: head_dim q=%zu k=%zu but the table's is %zu", op, q.head_dim, k.head_dim,
                table.head_dim());
  }
  if (has_k && k.tokens != q.tokens) {
    return fail(Status::kShapeMismatch, "%s: q has %zu tokens, k %zu", op, q.tokens, k.tokens);
  }
  if (q.tokens == 0) return Status::kOk;
  if (!positions) return fail(Status::kNullPointer, "%s: positions is null", op);
  for (size_t t = 0; t < q.tokens; ++t) {
    if (positions[t] < 0 || static_cast<size_t>(positions[t]) >= table.max_positions()) {
      return fail(Status::kInvalidArgument, "%s: positions[%zu]=%d outside the table's [0, %zu)", op, t, positions[t],
                  table.max_positions());
    }
  }
  if (has_k && q.heads && !views_disjoint(q, k)) return fail(Status::kAliasing, "%s: q and k overlap", op);

  RopeJob job;
  job.q = StridedRows::of(q);
  job.k = StridedRows::of(k);
  job.q_heads = q.heads;
  job.k_heads = has_k ? k.heads : 0;
  job.positions = positions;
  job.cos = table.cos_data();
  job.sin = table.sin_data();
  job.width = table.width();
  job.rotary_dim = table.rotary_dim();
  job.interleaved = table.pairing() == RopePairing::kInterleaved;
  const size_t token_bytes = (job.q_heads + job.k_heads) * table.rotary_dim() * sizeof(T) * 2;
  const Isa isa = cpu::active_isa();  // once per call: every chunk runs the same path
  job.native_bf16 = cpu::isa_converts_bf16(isa);
  const Work per_token{3.0 * static_cast<double>((job.q_heads + job.k_heads) * table.rotary_dim()),
                      static_cast<double>(token_bytes)};
  run_chunks(executor, q.tokens, per_token, [&job, isa](size_t begin, size_t end) {
    TILEKIT_DISPATCH_ON(isa, RopeTokens)(job, begin, end);
  });
  return Status::kOk;
}

}  // namespace detail

TILEKIT_API Status rope_inv_freq(const RopeConfig& config, size_t max_positions, std::vector<double>* inv_freq,
                                 double* attention_factor) {
  const Status s = detail::check_rope_config("rope_inv_freq", config, max_positions);
  if (s != Status::kOk) return s;
  if (!inv_freq || !attention_factor) return fail(Status::kNullPointer, "rope_inv_freq: an output is null");
  detail::compute_inv_freq(config, max_positions, inv_freq, attention_factor);
  return Status::kOk;
}

TILEKIT_API Status make_rope_table(const RopeConfig& config, size_t max_positions, RopeTable* table) {
  const char* op = "make_rope_table";
  const Status s = detail::check_rope_config(op, config, max_positions);
  if (s != Status::kOk) return s;
  if (!table) return fail(Status::kNullPointer, "%s: table is null", op);
  const size_t rot = config.rotary_dim ? config.rotary_dim : config.head_dim;
  const bool interleaved = config.pairing == RopePairing::kInterleaved;
  const size_t width = interleaved ? rot : rot / 2;
  size_t floats;
  if (!detail::mul_fits(max_positions, width, &floats) || floats > SIZE_MAX / 8) {
    return fail(Status::kOverflow, "%s: %zu positions x %zu overflows", op, max_positions, width);
  }
  std::vector<double> inv;
  double attention = 1.0;
  detail::compute_inv_freq(config, max_positions, &inv, &attention);
  std::vector<float> cos(floats), sin(floats);
  for (size_t p = 0; p < max_positions; ++p) {
    for (size_t i = 0; i < rot / 2; ++i) {
      const double angle = static_cast<double>(p) * inv[i];
      const float c = static_cast<float>(std::cos(angle) * attention),
                  sn = static_cast<float>(std::sin(angle) * attention);
      if (interleaved) {
        cos[p * width + 2 * i] = cos[p * width + 2 * i + 1] = c;
        sin[p * width + 2 * i] = -sn;
        sin[p * width + 2 * i + 1] = sn;
      } else {
        cos[p * width + i] = c;
        sin[p * width + i] = sn;
      }
    }
  }
  table->max_positions_ = max_positions;
  table->head_dim_ = config.head_dim;
  table->rotary_dim_ = rot;
  table->width_ = width;
  table->pairing_ = config.pairing;
  table->cos_ = std::move(cos);
  table->sin_ = std::move(sin);
  return Status::kOk;
}

TILEKIT_API Status rope(HeadsView<float> q, HeadsView<float> k, const int32_t* positions, const RopeTable& table,
                        Executor* executor) {
  return detail::rope_impl(q, k, positions, table, executor);
}
TILEKIT_API Status rope(HeadsView<bf16> q, HeadsView<bf16> k, const int32_t* positions, const RopeTable& table,
                        Executor* executor) {
  return detail::rope_impl(q, k, positions, table, executor);
}

}  // namespace tilekit

#endif  // TILEKIT_OPS_ROPE_IMPL_H_

// Rotary position embedding, in place on Q and K laid out [tokens][heads]
// [head_dim] (HeadsView: any token stride, so Q and K may be slices of one
// fused QKV output), at per-token positions (int32: chunked prefill, decode and
// batches at different offsets alike).
//
// Pairings: kHalfSplit pairs element i with i + rotary_dim/2 ("rotate_half":
// HF Llama, GPT-NeoX); kInterleaved pairs 2i with 2i + 1 (GPT-J, Meta's
// original Llama, llama2.c). Partial rotary: only the first rotary_dim (even)
// elements of each head rotate; the rest pass through unchanged.
//
// Frequencies follow HF transformers' rope_utils, with d = rotary_dim and
// inv_freq[i] = theta^(-2i/d), i < d/2:
//   kLinear      inv_freq / factor
//   kDynamicNtk  theta' = theta · (factor · L / L0 - (factor - 1))^(d / (d - 2)),
//                L = max(dynamic_seq_len, L0), L0 = original_max_positions
//                (HF recomputes it as the sequence grows; rebuild the table then)
//   kLlama3      wavelengths above L0 / low_freq_factor divided by factor, below
//                L0 / high_freq_factor kept, smoothly interpolated between
//   kYarn        ramp between inv_freq (fast) and inv_freq / factor (slow) over
//                the dimensions whose rotation counts over L0 lie between
//                beta_slow and beta_fast; cos and sin scaled by attention_factor
//                (default 0.1·ln(factor) + 1)
// The table holds cos and sin per position for max_positions positions, each
// computed in double and rounded to fp32 once. A position outside [0,
// max_positions) is an error (Status::kInvalidArgument), checked before any
// element is written.
//
// The rotation is fp32 (a bf16 Q/K is widened, rotated, rounded once to bf16).
#ifndef TILEKIT_OPS_ROPE_H_
#define TILEKIT_OPS_ROPE_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "tilekit/base/api.h"
#include "tilekit/base/bf16.h"
#include "tilekit/base/matrix.h"
#include "tilekit/base/status.h"
#include "tilekit/threading/executor.h"

namespace tilekit {

enum class RopePairing { kHalfSplit, kInterleaved };
enum class RopeScaling { kNone, kLinear, kDynamicNtk, kLlama3, kYarn };

struct RopeConfig {
  size_t head_dim = 0;
  size_t rotary_dim = 0;  // 0: head_dim. Even, <= head_dim
  RopePairing pairing = RopePairing::kHalfSplit;
  double theta = 10000.0;
  RopeScaling scaling = RopeScaling::kNone;
  double factor = 1.0;                // linear, dynamic NTK, llama3, yarn
  size_t original_max_positions = 0;  // L0: dynamic NTK, llama3, yarn
  size_t dynamic_seq_len = 0;         // dynamic NTK: the length L the table serves (0: max_positions)
  double low_freq_factor = 1.0, high_freq_factor = 4.0;  // llama3
  double beta_fast = 32.0, beta_slow = 1.0;              // yarn
  double attention_factor = 0.0;                         // yarn; 0: 0.1·ln(factor) + 1
};

// cos and sin for every position, built once per model by make_rope_table.
class RopeTable {
 public:
  size_t max_positions() const { return max_positions_; }
  size_t head_dim() const { return head_dim_; }
  size_t rotary_dim() const { return rotary_dim_; }
  RopePairing pairing() const { return pairing_; }
  // Floats per position in cos_data() and sin_data(): rotary_dim/2 for
  // kHalfSplit (one per pair); rotary_dim for kInterleaved (one per element,
  // sin negated on the first of each pair, so a vector rotates as x·cos +
  // swap(x)·sin).
  size_t width() const { return width_; }
  const float* cos_data() const { return cos_.data(); }
  const float* sin_data() const { return sin_.data(); }

 private:
  friend Status make_rope_table(const RopeConfig& config, size_t max_positions, RopeTable* table);
  size_t max_positions_ = 0, head_dim_ = 0, rotary_dim_ = 0, width_ = 0;
  RopePairing pairing_ = RopePairing::kHalfSplit;
  std::vector<float> cos_, sin_;
};

// Fills *table for positions [0, max_positions); on error *table is unchanged.
TILEKIT_API Status make_rope_table(const RopeConfig& config, size_t max_positions, RopeTable* table);

// The inverse frequencies of a config (rotary_dim / 2 values, in double): the
// table's, for references and for engines that compute angles themselves.
TILEKIT_API Status rope_inv_freq(const RopeConfig& config, size_t max_positions, std::vector<double>* inv_freq,
                                 double* attention_factor);

// Rotates q and k in place: token t at positions[t]. q and k have
// table.head_dim() and the same number of tokens; k may be empty (no heads or
// no tokens) to rotate q only. q and k must not share an element.
TILEKIT_API Status rope(HeadsView<float> q, HeadsView<float> k, const int32_t* positions, const RopeTable& table,
                        Executor* executor = nullptr);
TILEKIT_API Status rope(HeadsView<bf16> q, HeadsView<bf16> k, const int32_t* positions, const RopeTable& table,
                        Executor* executor = nullptr);

}  // namespace tilekit

#endif  // TILEKIT_OPS_ROPE_H_

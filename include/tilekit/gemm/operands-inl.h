// Per-target: how the vector kernels (register tile, GEMV, dot product) read
// their operands: B rows from fp32 panels or bf16 pairs, A elements as fp32,
// and the element types of a plan (A, B, C) as template arguments.
#if defined(TILEKIT_GEMM_OPERANDS_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TILEKIT_GEMM_OPERANDS_INL_H_
#undef TILEKIT_GEMM_OPERANDS_INL_H_
#else
#define TILEKIT_GEMM_OPERANDS_INL_H_
#endif

#include <hwy/highway.h>

#include <cstdint>
#include <type_traits>

#include "tilekit/base/bf16.h"
#include "tilekit/gemm/plan.h"

HWY_BEFORE_NAMESPACE();
namespace tilekit {
namespace detail {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// B row k of a panel as two fp32 vectors (columns [0, N) and [N, 2N)).
template <class DF>
HWY_INLINE void LoadB(DF df, const float* HWY_RESTRICT panel, size_t k, hn::Vec<DF>& b0, hn::Vec<DF>& b1) {
  const size_t N = hn::Lanes(df);
  b0 = hn::LoadU(df, panel + k * 2 * N);
  b1 = hn::LoadU(df, panel + k * 2 * N + N);
}
// bf16 pairs: one 32-bit lane holds column l (low half) and l + N (high half);
// a bf16 widens to fp32 by moving its bits to the top of the lane.
template <class DF>
HWY_INLINE void LoadB(DF df, const uint32_t* HWY_RESTRICT panel, size_t k, hn::Vec<DF>& b0, hn::Vec<DF>& b1) {
  const hn::RebindToUnsigned<DF> du;
  const auto pair = hn::LoadU(du, panel + k * hn::Lanes(df));
  b0 = hn::BitCast(df, hn::ShiftLeft<16>(pair));
  b1 = hn::BitCast(df, hn::And(pair, hn::Set(du, 0xFFFF0000u)));
}

// An A element as fp32 (bf16 widened exactly).
template <typename TA>
HWY_INLINE float AsFloat(TA v) {
  if constexpr (std::is_same<TA, float>::value) {
    return v;
  } else {
    return bf16_to_f32(v);
  }
}

// Calls fn(TA*, TB*, TC*) with null pointers of the plan's element types (A:
// float or bf16; B panels: float, or uint32_t bf16 pairs; C: float or bf16),
// so each range function instantiates its loops for the 8 combinations once.
template <typename Fn>
HWY_INLINE void WithElementTypes(const GemmPlan& p, const Fn& fn) {
  const auto with_c = [&](auto* a, auto* b) {
    if (p.c_bf16) return fn(a, b, static_cast<bf16*>(nullptr));
    return fn(a, b, static_cast<float*>(nullptr));
  };
  const auto with_b = [&](auto* a) {
    if (p.b_bf16) return with_c(a, static_cast<uint32_t*>(nullptr));
    return with_c(a, static_cast<float*>(nullptr));
  };
  if (p.a_bf16) return with_b(static_cast<bf16*>(nullptr));
  return with_b(static_cast<float*>(nullptr));
}
template <typename T>
using Pointee = std::remove_pointer_t<T>;

}  // namespace HWY_NAMESPACE
}  // namespace detail
}  // namespace tilekit
HWY_AFTER_NAMESPACE();

#endif  // TILEKIT_GEMM_OPERANDS_INL_H_

// The GEMM kernel records, in order of preference: pack_weights gives weights
// to the first record that runs on the path and takes them (type and shape),
// and gemm runs the record their layout names. Packing, planning and dispatch
// all read this one table. Implementation side (the records reach per-target
// code through gemm/exports.h).
//
// Adding a kernel: its record header (layout, offsets, blocking, loops; see
// gemm/kernel.h), its per-target code if it has any (listed in
// gemm/targets-inl.h, exported in its record header or gemm/exports.h), its
// line below, and its tests.
#ifndef TILEKIT_GEMM_KERNELS_H_
#define TILEKIT_GEMM_KERNELS_H_

#include <cstddef>
#include <cstdint>
#include <iterator>

#include "tilekit/cpu/features.h"
#include "tilekit/gemm/dot.h"
#include "tilekit/gemm/kernel.h"
#include "tilekit/gemm/quant.h"
#include "tilekit/gemm/vector.h"
#if TILEKIT_ARCH_X86
#include "tilekit/gemm/amx_gemm.h"
#include "tilekit/gemm/amx_narrow.h"
#include "tilekit/gemm/quant_vnni.h"
#endif
#if TILEKIT_ARCH_ARM64
#include "tilekit/gemm/arm_bfmmla_gemm.h"
#include "tilekit/gemm/quant_sdot.h"
#endif

namespace tilekit {
namespace detail {

inline constexpr const GemmKernel* kGemmKernels[] = {
#if TILEKIT_ARCH_X86
    &arch::kAmxNarrowGemm,  // bf16, one narrow matrix, amx
    &arch::kAmxGemm,        // bf16, amx
#endif
    &kDotGemm,  // fp32 / bf16, one narrow matrix, every path
#if TILEKIT_ARCH_ARM64
    &arch::kArmBfmmlaGemm,  // bf16, neon_bf16 and sve_bf16
#endif
#if TILEKIT_ARCH_X86
    &kQuantVnniGemm,  // int8 / int4, AVX-512 paths with VNNI
#endif
#if TILEKIT_ARCH_ARM64
    &kQuantSdotGemm,  // int8 / int4, NEON paths with dotprod, SVE paths
#endif
    &kQuantGemm,   // int8 / int4, every path
    &kVectorGemm,  // fp32 / bf16, every path
};
constexpr size_t kNumGemmKernels = std::size(kGemmKernels);
static_assert(kNumGemmKernels <= UINT8_MAX, "PanelLayout::kernel is a uint8_t");

// The layout of the first record that runs on `isa` and takes these weights;
// false when none does.
inline bool choose_gemm_kernel(Isa isa, WeightType type, const PackShape& shape, PanelLayout* out) {
  for (size_t i = 0; i < kNumGemmKernels; ++i) {
    const GemmKernel& kernel = *kGemmKernels[i];
    PanelLayout l;
    if (!kernel.runs_on(isa) || !kernel.layout(isa, type, shape, &l)) continue;
    l.kernel = static_cast<uint8_t>(i);
    *out = l;
    return true;
  }
  return false;
}

// The record that packed (and reads) weights of this layout.
inline const GemmKernel& gemm_kernel_of(const PanelLayout& l) {
  return l.kernel < kNumGemmKernels ? *kGemmKernels[l.kernel] : kVectorGemm;
}

}  // namespace detail
}  // namespace tilekit

#endif  // TILEKIT_GEMM_KERNELS_H_

// An engine's own elementwise epilogue, compiled into tilekit's GEMM store for
// every path (CUTLASS's epilogue visitors, Highway's templated lambdas):
//
//   v = alpha · (A·B)[i][j] + beta · C_old[i][j] + bias[j]
//   v = functor(v, row i, column j)          (in place of the Epilogue's activation)
//   v = v + residual[i][j]
//   v = min(max(v, clamp_min), clamp_max)
//   C[i][j] = v, rounded to bf16 when C is bf16
//
// The functor is per-target code: a struct in the engine's HWY_NAMESPACE,
// made as Functor{params} once per tile, with
//   template <class D, class V> V operator()(D d, V v, size_t row, size_t col, size_t n) const
// v holds one vector (Lanes(d) fp32 values) of output row `row`, lane i at
// column col + i of C (of the output, for gemm_fused). Only the first n lanes
// are stored (n < Lanes(d) at the last columns): per-column data of the
// engine must be read with tilekit::HWY_NAMESPACE::LoadPartial(d, p, n), which
// reads n values and zeros the other lanes, not past its end.
//
// Three macros, in two files of the engine (README "Use it in your engine"):
//   TILEKIT_DECLARE_GEMM_EPILOGUE(name, Params)  in a header (no Highway): declares
//       Status name(a, weights, c, const Params&, const Epilogue& = {}, const GemmOptions& = {})
//       Status name_fused(a, weights, const FusedOutput<TC>*, n, const Params&, const GemmOptions& = {})
//     for float / bf16 A and C, the same contracts as gemm and gemm_fused.
//   TILEKIT_GEMM_EPILOGUE_TARGET(name, Functor, Params)  in the per-target part of
//       the functor's file, inside its HWY_NAMESPACE: the functor's tile store.
//   TILEKIT_DEFINE_GEMM_EPILOGUE(name, Params)  in that file's HWY_ONCE part, in the
//       namespace of the declaration: the dispatch table and the entry points.
// The functor's file is a Highway per-target file of its own (it includes
// tilekit/epilogue_functor-impl.h first, then epilogue_functor-inl.h per
// target); it compiles only the tile store (the README's: 8.4 s, 280 MB at -O3
// on a 2-core VM at load average 13; the kernels file takes ~40 s). The
// GEMM kernels are tilekit's, wherever the program compiles them
// (tilekit::kernels or its kernels file): the store of a tile with an epilogue
// is an out-of-line call per tile for the built-in activations too, so a
// functor costs what a built-in activation costs.
//
// The Epilogue passed along must have Activation::kNone (the functor is the
// activation step) and the weights no gate/up pair; otherwise the call returns
// Status::kInvalidArgument. Highway-free: tilekit.h includes it.
#ifndef TILEKIT_GEMM_EPILOGUE_FUNCTOR_H_
#define TILEKIT_GEMM_EPILOGUE_FUNCTOR_H_

#include <cstddef>

#include "tilekit/base/api.h"
#include "tilekit/base/bf16.h"
#include "tilekit/base/matrix.h"
#include "tilekit/base/status.h"
#include "tilekit/cpu/isa.h"
#include "tilekit/epilogue/epilogue.h"
#include "tilekit/gemm/gemm.h"
#include "tilekit/gemm/packed_weights.h"

namespace tilekit {
namespace detail {

struct SegmentPlan;

// A functor's tile store on one path: `rows` finished fp32 rows (row stride
// acc_ld, `cols` valid columns from col0 of the segment) of a tile starting
// at row0, through the segment's epilogue into its C.
using TileEpilogueFn = void (*)(const float* acc, size_t acc_ld, size_t rows, const SegmentPlan& seg, size_t row0,
                                size_t col0, size_t cols, bool c_bf16);

// What an engine's entry point hands the GEMM: its tile store for the path the
// call runs on (read once per call, with the path), and its parameters.
struct FunctorEpilogue {
  const char* name;
  TileEpilogueFn (*tile_for)(Isa isa);
  const void* params;
};

TILEKIT_API Status gemm_functor(MatrixView<const float> a, const PackedWeights& b, MatrixView<float> c,
                                const Epilogue& epilogue, const FunctorEpilogue& f, const GemmOptions& options);
TILEKIT_API Status gemm_functor(MatrixView<const float> a, const PackedWeights& b, MatrixView<bf16> c,
                                const Epilogue& epilogue, const FunctorEpilogue& f, const GemmOptions& options);
TILEKIT_API Status gemm_functor(MatrixView<const bf16> a, const PackedWeights& b, MatrixView<float> c,
                                const Epilogue& epilogue, const FunctorEpilogue& f, const GemmOptions& options);
TILEKIT_API Status gemm_functor(MatrixView<const bf16> a, const PackedWeights& b, MatrixView<bf16> c,
                                const Epilogue& epilogue, const FunctorEpilogue& f, const GemmOptions& options);
TILEKIT_API Status gemm_fused_functor(MatrixView<const float> a, const PackedWeights& b,
                                      const FusedOutput<float>* outputs, size_t num_outputs,
                                      const FunctorEpilogue& f, const GemmOptions& options);
TILEKIT_API Status gemm_fused_functor(MatrixView<const float> a, const PackedWeights& b,
                                      const FusedOutput<bf16>* outputs, size_t num_outputs,
                                      const FunctorEpilogue& f, const GemmOptions& options);
TILEKIT_API Status gemm_fused_functor(MatrixView<const bf16> a, const PackedWeights& b,
                                      const FusedOutput<float>* outputs, size_t num_outputs,
                                      const FunctorEpilogue& f, const GemmOptions& options);
TILEKIT_API Status gemm_fused_functor(MatrixView<const bf16> a, const PackedWeights& b,
                                      const FusedOutput<bf16>* outputs, size_t num_outputs,
                                      const FunctorEpilogue& f, const GemmOptions& options);

}  // namespace detail
}  // namespace tilekit

// One overload of the declared entry points per A / C element type.
#define TILEKIT_GEMM_EPILOGUE_OVERLOADS_(X, name, Params) \
  X(name, Params, float, float)                           \
  X(name, Params, float, ::tilekit::bf16)                 \
  X(name, Params, ::tilekit::bf16, float)                 \
  X(name, Params, ::tilekit::bf16, ::tilekit::bf16)

#define TILEKIT_GEMM_EPILOGUE_DECLARE_ONE_(name, Params, TA, TC)                                                  \
  ::tilekit::Status name(::tilekit::MatrixView<const TA> a, const ::tilekit::PackedWeights& b,                    \
                         ::tilekit::MatrixView<TC> c, const Params& params,                                       \
                         const ::tilekit::Epilogue& epilogue = {}, const ::tilekit::GemmOptions& options = {});    \
  ::tilekit::Status name##_fused(::tilekit::MatrixView<const TA> a, const ::tilekit::PackedWeights& b,             \
                                 const ::tilekit::FusedOutput<TC>* outputs, size_t num_outputs,                    \
                                 const Params& params, const ::tilekit::GemmOptions& options = {});

#define TILEKIT_DECLARE_GEMM_EPILOGUE(name, Params) \
  TILEKIT_GEMM_EPILOGUE_OVERLOADS_(TILEKIT_GEMM_EPILOGUE_DECLARE_ONE_, name, Params)

// Per target, inside the engine's HWY_NAMESPACE: the functor's tile store,
// exported by TILEKIT_DEFINE_GEMM_EPILOGUE.
#define TILEKIT_GEMM_EPILOGUE_TARGET(name, Functor, Params)                                                       \
  inline void name##_tilekit_tile(const float* acc, size_t acc_ld, size_t rows,                                  \
                                  const ::tilekit::detail::SegmentPlan& seg, size_t row0, size_t col0, size_t cols, \
                                  bool c_bf16) {                                                                 \
    ::tilekit::detail::HWY_NAMESPACE::FunctorEpilogueTile<Functor, Params>(acc, acc_ld, rows, seg, row0, col0,    \
                                                                           cols, c_bf16);                        \
  }

#define TILEKIT_GEMM_EPILOGUE_DEFINE_ONE_(name, Params, TA, TC)                                                   \
  ::tilekit::Status name(::tilekit::MatrixView<const TA> a, const ::tilekit::PackedWeights& b,                    \
                         ::tilekit::MatrixView<TC> c, const Params& params, const ::tilekit::Epilogue& epilogue,  \
                         const ::tilekit::GemmOptions& options) {                                                 \
    return ::tilekit::detail::gemm_functor(a, b, c, epilogue,                                                     \
                                           {#name, &name##_tilekit_tile_for, &params}, options);                  \
  }                                                                                                               \
  ::tilekit::Status name##_fused(::tilekit::MatrixView<const TA> a, const ::tilekit::PackedWeights& b,             \
                                 const ::tilekit::FusedOutput<TC>* outputs, size_t num_outputs,                    \
                                 const Params& params, const ::tilekit::GemmOptions& options) {                    \
    return ::tilekit::detail::gemm_fused_functor(a, b, outputs, num_outputs,                                      \
                                                 {#name "_fused", &name##_tilekit_tile_for, &params}, options);   \
  }

// Once (HWY_ONCE), in the namespace of the declaration.
#define TILEKIT_DEFINE_GEMM_EPILOGUE(name, Params)                                                                \
  HWY_EXPORT(name##_tilekit_tile);                                                                                \
  static ::tilekit::detail::TileEpilogueFn name##_tilekit_tile_for(::tilekit::Isa isa) {                          \
    return &TILEKIT_DISPATCH_ON(isa, name##_tilekit_tile);                                                        \
  }                                                                                                               \
  TILEKIT_GEMM_EPILOGUE_OVERLOADS_(TILEKIT_GEMM_EPILOGUE_DEFINE_ONE_, name, Params)

#endif  // TILEKIT_GEMM_EPILOGUE_FUNCTOR_H_

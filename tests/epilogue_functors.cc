// epilogue_functor_test's functors, compiled for every Highway target as an
// engine compiles its own (gemm/epilogue_functor.h): this file is its own
// per-target code, found on the include path.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "epilogue_functors.cc"
#include "tilekit/epilogue_functor-impl.h"  // first: Highway's foreach_target over this file
#include "tilekit/epilogue_functor-inl.h"

#include "epilogue_functors.h"

HWY_BEFORE_NAMESPACE();
namespace functors {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

struct IndexEncode {
  const IndexParams& p;
  template <class D, class V>
  V operator()(D d, V, size_t row, size_t col, size_t) const {
    return hn::Add(hn::Set(d, static_cast<float>(row * p.row_stride + col)), hn::Iota(d, 0));
  }
};
TILEKIT_GEMM_EPILOGUE_TARGET(gemm_index, IndexEncode, IndexParams)

struct ClampScale {
  const ClampScaleParams& p;
  template <class D, class V>
  V operator()(D d, V v, size_t row, size_t col, size_t n) const {
    const V c = hn::Min(hn::Max(v, hn::Set(d, p.lo)), hn::Set(d, p.hi));
    // Rounded twice (product, then sum), as the test's bound assumes: no FMA.
    return hn::Add(hn::Mul(c, tilekit::HWY_NAMESPACE::LoadPartial(d, p.scale + col, n)), hn::Set(d, p.shift[row]));
  }
};
TILEKIT_GEMM_EPILOGUE_TARGET(gemm_clamp_scale, ClampScale, ClampScaleParams)

}  // namespace HWY_NAMESPACE
}  // namespace functors
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace functors {
TILEKIT_DEFINE_GEMM_EPILOGUE(gemm_index, IndexParams)
TILEKIT_DEFINE_GEMM_EPILOGUE(gemm_clamp_scale, ClampScaleParams)
}  // namespace functors
#endif

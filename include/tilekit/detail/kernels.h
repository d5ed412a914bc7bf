// The one place where tilekit's per-target code is compiled. Every -impl.h
// header that runs a kernel includes this (through cpu/dispatch.h); it
// instantiates all -inl.h modules once per Highway target (foreach_target.h)
// and exports their dispatch tables. Only the kernels translation unit
// (tilekit/implementation.h) includes it.
//
// One aggregation point, not one per module: Highway's toggle guards keep
// per-target headers in step only when every pass includes the same set, which a
// header-only library cannot promise if each module ran foreach_target itself.
//
// Highway allows one foreach_target.h per translation unit and it must come
// before any <hwy/highway.h>: in the kernels file, include
// tilekit/implementation.h before Highway's headers, and do not run your own
// foreach_target.h there. Other files are not concerned (tilekit.h has no
// Highway in it).
#ifndef TILEKIT_DETAIL_KERNELS_H_
#define TILEKIT_DETAIL_KERNELS_H_

#if defined(HWY_HIGHWAY_INCLUDED) || defined(HIGHWAY_HWY_FOREACH_TARGET_H_)
#error "tilekit: include tilekit/implementation.h before <hwy/highway.h> or <hwy/foreach_target.h> (Highway allows one foreach_target per translation unit)"
#endif

#include <stddef.h>
#include <stdint.h>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "tilekit/detail/kernels-inl.h"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "tilekit/detail/kernels-inl.h"

#if HWY_ONCE
namespace tilekit {
namespace detail {
HWY_EXPORT(AttendRows);
HWY_EXPORT(ConvertF32ToBf16);
HWY_EXPORT(ConvertBf16ToF32);
HWY_EXPORT(CompiledHwyTarget);
HWY_EXPORT(GemmPanelLanes);
HWY_EXPORT(GemmMR);
HWY_EXPORT(GemmRange);
HWY_EXPORT(GemmDotMR);
HWY_EXPORT(GemmDotRange);
HWY_EXPORT(GemmEpilogueTile);
HWY_EXPORT(ApplyEpilogueRows);
HWY_EXPORT(RmsNormRows);
HWY_EXPORT(RopeTokens);
HWY_EXPORT(SoftmaxRows);
HWY_EXPORT(StreamCopy);
}  // namespace detail
}  // namespace tilekit
#endif  // HWY_ONCE

#endif  // TILEKIT_DETAIL_KERNELS_H_

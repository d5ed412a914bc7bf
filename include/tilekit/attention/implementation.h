// The attention module's definitions (KvCache, kv_cache_write, attention and its
// batch and merge): one file of a program compiles them
// (tilekit/implementation.h, or cmake/kernels/attention.cc).
#ifndef TILEKIT_ATTENTION_IMPLEMENTATION_H_
#define TILEKIT_ATTENTION_IMPLEMENTATION_H_

#ifndef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "tilekit/attention/targets-inl.h"
#endif
#include "tilekit/cpu/compile_targets.h"  // first: before any Highway header

#include "tilekit/attention/kv_cache-impl.h"
#include "tilekit/attention/attention-impl.h"

#endif  // TILEKIT_ATTENTION_IMPLEMENTATION_H_

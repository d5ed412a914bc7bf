// tilekit: CPU kernels for transformer inference. The API header: include it
// anywhere (before or after Highway's headers, in as many files as you like);
// it declares the kernels and compiles none of them. Exactly one file of the
// program compiles the kernels, by including tilekit/implementation.h (or by
// linking the CMake target tilekit::kernels, which is that file).
//
// Define TILEKIT_ALL_INLINE in every file instead to have this header compile
// the kernels into each file that includes it (base/api.h).
#ifndef TILEKIT_TILEKIT_H_
#define TILEKIT_TILEKIT_H_

#include "tilekit/attention/attention.h"
#include "tilekit/attention/heads.h"
#include "tilekit/attention/kv_cache.h"
#include "tilekit/attention/kv_sequence.h"
#include "tilekit/base/aligned_buffer.h"
#include "tilekit/base/api.h"
#include "tilekit/base/bf16.h"
#include "tilekit/base/matrix.h"
#include "tilekit/base/status.h"
#include "tilekit/convert/convert.h"
#include "tilekit/cpu/features.h"
#include "tilekit/cpu/isa.h"
#include "tilekit/cpu/report.h"
#include "tilekit/epilogue/apply.h"
#include "tilekit/epilogue/epilogue.h"
#include "tilekit/gemm/epilogue_functor.h"
#include "tilekit/gemm/gemm.h"
#include "tilekit/gemm/packed_weights.h"
#include "tilekit/ops/elementwise.h"
#include "tilekit/ops/rms_norm.h"
#include "tilekit/ops/rope.h"
#include "tilekit/ops/softmax.h"
#include "tilekit/threading/executor.h"

#ifdef TILEKIT_ALL_INLINE
#include "tilekit/implementation.h"
#endif

#endif  // TILEKIT_TILEKIT_H_

// tilekit: header-only CPU kernels for transformer inference. The umbrella
// header: include this, link tilekit::tilekit.
#ifndef TILEKIT_TILEKIT_H_
#define TILEKIT_TILEKIT_H_

#include "tilekit/arch/arm_bf16_brgemm.h"
#include "tilekit/base/aligned_buffer.h"
#include "tilekit/base/bf16.h"
#include "tilekit/base/matrix.h"
#include "tilekit/base/status.h"
#include "tilekit/convert/convert.h"
#include "tilekit/cpu/dispatch.h"
#include "tilekit/cpu/features.h"
#include "tilekit/cpu/isa.h"
#include "tilekit/cpu/report.h"
#include "tilekit/epilogue/apply.h"
#include "tilekit/epilogue/epilogue.h"
#include "tilekit/gemm/gemm.h"
#include "tilekit/gemm/packed_weights.h"
#include "tilekit/threading/executor.h"

#endif  // TILEKIT_TILEKIT_H_

// An epilogue applied as its own pass over an fp32 matrix: C = epilogue(C),
// with C's current values in place of A·B. The same per-target ops the GEMM
// fuses into its store; for ops a graph cannot fuse, and for measuring fusion.
#ifndef TILEKIT_EPILOGUE_APPLY_H_
#define TILEKIT_EPILOGUE_APPLY_H_

#include "tilekit/base/api.h"
#include "tilekit/base/matrix.h"
#include "tilekit/base/status.h"
#include "tilekit/epilogue/epilogue.h"

namespace tilekit {

TILEKIT_API Status apply_epilogue(MatrixView<float> c, const Epilogue& ep);

}  // namespace tilekit

#endif  // TILEKIT_EPILOGUE_APPLY_H_

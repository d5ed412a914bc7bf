// The epilogue module's definitions (apply_epilogue): one file of a program
// compiles them (tilekit/implementation.h, or cmake/kernels/epilogue.cc).
#ifndef TILEKIT_EPILOGUE_IMPLEMENTATION_H_
#define TILEKIT_EPILOGUE_IMPLEMENTATION_H_

#ifndef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "tilekit/epilogue/targets-inl.h"
#endif
#include "tilekit/cpu/compile_targets.h"  // first: before any Highway header

#include "tilekit/epilogue/apply-impl.h"

#endif  // TILEKIT_EPILOGUE_IMPLEMENTATION_H_

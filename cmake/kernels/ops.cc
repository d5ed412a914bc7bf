// tilekit's ops kernels, one file of the CMake target tilekit::kernels (one
// file per module: a change rebuilds one module, and cores build modules side
// by side). Writing #include "tilekit/implementation.h" into one file of your
// own instead compiles every module at once.
#include "tilekit/ops/implementation.h"

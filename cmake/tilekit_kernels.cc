// The kernels of tilekit, compiled once per program: the one source of the
// CMake target tilekit::kernels. Writing this line into one of your own files
// instead does the same (see include/tilekit/implementation.h).
#include "tilekit/implementation.h"

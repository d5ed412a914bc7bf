// TILEKIT_CONSUMER_MODE=own_file: the program's one kernels file, as an engine
// that does not link tilekit::kernels writes it.
#include "tilekit/implementation.h"

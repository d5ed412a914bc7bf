// How tilekit's entry points are declared. The API headers (tilekit.h and what
// it includes) declare them; tilekit/implementation.h defines them, once per
// program (see that header). TILEKIT_API is empty then: the definitions are
// ordinary functions in the one translation unit that includes the
// implementation, and every other file only sees declarations, so it compiles
// no kernel.
//
// With TILEKIT_ALL_INLINE defined (the same way in every file of the program),
// tilekit.h includes the implementation itself and every entry point is
// inline: the old all-header mode, where each including file compiles every
// kernel for every Highway target (tens of seconds per file).
#ifndef TILEKIT_BASE_API_H_
#define TILEKIT_BASE_API_H_

#ifdef TILEKIT_ALL_INLINE
#define TILEKIT_API inline
#else
#define TILEKIT_API
#endif

#endif  // TILEKIT_BASE_API_H_

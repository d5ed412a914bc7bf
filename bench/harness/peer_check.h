// Run-time proof that a peer binary measures the library it names. OpenBLAS,
// BLIS and MKL export the same BLAS symbols, and the dynamic loader binds a
// call to whichever loaded object defines it first: a stray dependency can
// make "OpenBLAS" rows measure BLIS without any error. So each peer binary,
// before registering anything, asks the loader which object serves its entry
// point and lists every BLAS-like object in the process.
#ifndef TILEKIT_BENCH_PEER_CHECK_H_
#define TILEKIT_BENCH_PEER_CHECK_H_

#include <string>
#include <vector>

namespace tilekit_bench {

// The real path of the loaded object that the global symbol `symbol` resolves
// to (what a call binds to), or "" when no loaded object defines it.
std::string ProviderOf(const char* symbol);

// Real paths of the loaded objects whose file name looks like a BLAS or DNN
// library (openblas, blis, mkl, libblas, libcblas, atlas, dnnl).
std::vector<std::string> LoadedBlasLikeObjects();

// Exits the process with a message unless `symbol` is served by an object
// whose path contains `expect`, and every BLAS-like object loaded contains
// `expect` too. With `symbol` null, only the second condition (and `expect`
// null means no BLAS-like object may be loaded at all). Returns the provider's
// path for the context.
std::string RequirePeer(const char* library, const char* symbol, const char* expect);

}  // namespace tilekit_bench

#endif  // TILEKIT_BENCH_PEER_CHECK_H_

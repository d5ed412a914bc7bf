#ifndef _GNU_SOURCE
#define _GNU_SOURCE  // dladdr, dl_iterate_phdr, RTLD_DEFAULT
#endif
#include "peer_check.h"

#include <dlfcn.h>
#include <link.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace tilekit_bench {
namespace {

std::string RealPath(const char* path) {
  char resolved[PATH_MAX];
  return path && realpath(path, resolved) ? std::string(resolved) : std::string(path ? path : "");
}

bool LooksBlasLike(const std::string& path) {
  const std::string file = path.substr(path.find_last_of('/') + 1);
  for (const char* pattern : {"openblas", "blis", "mkl", "libblas", "libcblas", "atlas", "dnnl"}) {
    if (file.find(pattern) != std::string::npos) return true;
  }
  return false;
}

[[noreturn]] void Refuse(const char* library, const std::string& why) {
  std::fprintf(stderr, "bench_peer_%s: refusing to run: %s\n", library, why.c_str());
  std::exit(2);
}

}  // namespace

std::string ProviderOf(const char* symbol) {
  void* address = dlsym(RTLD_DEFAULT, symbol);
  Dl_info info;
  if (!address || !dladdr(address, &info) || !info.dli_fname) return "";
  return RealPath(info.dli_fname);
}

std::vector<std::string> LoadedBlasLikeObjects() {
  std::vector<std::string> found;
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* data) {
        const std::string path = RealPath(info->dlpi_name);
        if (!path.empty() && LooksBlasLike(path)) static_cast<std::vector<std::string>*>(data)->push_back(path);
        return 0;
      },
      &found);
  return found;
}

std::string RequirePeer(const char* library, const char* symbol, const char* expect) {
  std::string provider;
  if (symbol) {
    provider = ProviderOf(symbol);
    if (provider.empty()) Refuse(library, std::string(symbol) + " is not defined by any loaded object");
    if (!expect || provider.find(expect) == std::string::npos) {
      Refuse(library, std::string(symbol) + " is served by " + provider + ", not by " + (expect ? expect : "-"));
    }
  }
  for (const std::string& object : LoadedBlasLikeObjects()) {
    // The whole real path: Debian's alternatives resolve libblas.so.3 to
    // .../openblas-pthread/libblas.so.3, which is OpenBLAS.
    if (!expect || object.find(expect) == std::string::npos) {
      Refuse(library, "another BLAS-like library is loaded: " + object);
    }
  }
  return provider;
}

}  // namespace tilekit_bench

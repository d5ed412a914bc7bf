# Cross build for aarch64 Linux: Debian's cross compiler (g++-aarch64-linux-gnu,
# whose libc and libstdc++ live in /usr/aarch64-linux-gnu), tilekit's
# dependencies unpacked by scripts/arm64-sysroot.sh, and binaries run under
# qemu-user, so ctest works unchanged.
#
#   cmake -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.toolchain.cmake \
#         [-DTILEKIT_ARM64_SYSROOT=dir] ...      (or the `aarch64` preset)
#
# The dependency directory is not a --sysroot: the compiler keeps its own, and
# CMake's find_* calls are rerooted into both.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

# Cache variable, else environment, else scripts/arm64-sysroot.sh's default.
# try_compile projects re-read this file without the cache: pass it on.
if(NOT TILEKIT_ARM64_SYSROOT)
  if(DEFINED ENV{TILEKIT_ARM64_SYSROOT})
    set(TILEKIT_ARM64_SYSROOT "$ENV{TILEKIT_ARM64_SYSROOT}")
  else()
    set(TILEKIT_ARM64_SYSROOT "${CMAKE_CURRENT_LIST_DIR}/../.cache/arm64-sysroot")
  endif()
endif()
get_filename_component(TILEKIT_ARM64_SYSROOT "${TILEKIT_ARM64_SYSROOT}" ABSOLUTE)
set(TILEKIT_ARM64_SYSROOT "${TILEKIT_ARM64_SYSROOT}" CACHE PATH
    "arm64 dependencies unpacked by scripts/arm64-sysroot.sh")
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES TILEKIT_ARM64_SYSROOT)
if(NOT EXISTS "${TILEKIT_ARM64_SYSROOT}/usr/include/hwy/highway.h")
  message(FATAL_ERROR "No arm64 Highway in ${TILEKIT_ARM64_SYSROOT}: run scripts/arm64-sysroot.sh "
                      "[dir] first (and pass -DTILEKIT_ARM64_SYSROOT=dir if not the default)")
endif()

set(CMAKE_FIND_ROOT_PATH "${TILEKIT_ARM64_SYSROOT}" /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)  # build tools are the host's
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)   # never link an x86 library
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# -L: the dynamic loader and libc of the cross toolchain. LD_LIBRARY_PATH: the
# unpacked Highway and cpuinfo, also for binaries built without CMake's rpath.
# Tests choose the emulated CPU with -cpu (see tests/CMakeLists.txt); without it
# qemu emulates `max`.
find_program(TILEKIT_QEMU_AARCH64 qemu-aarch64 REQUIRED)
set(CMAKE_CROSSCOMPILING_EMULATOR "${TILEKIT_QEMU_AARCH64}" -L /usr/aarch64-linux-gnu
    -E "LD_LIBRARY_PATH=${TILEKIT_ARM64_SYSROOT}/usr/lib/aarch64-linux-gnu")

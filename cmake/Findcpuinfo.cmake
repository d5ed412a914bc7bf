# Finds cpuinfo as a plain header + library. Debian 12's own cpuinfo-config.cmake
# points at /usr/lib/lib/<triplet>/libclog.a (a packaging bug) and fails hard, so
# tilekit does not use it. Defines cpuinfo::cpuinfo.
find_path(CPUINFO_INCLUDE_DIR cpuinfo.h)
find_library(CPUINFO_LIBRARY NAMES cpuinfo)
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(cpuinfo REQUIRED_VARS CPUINFO_LIBRARY CPUINFO_INCLUDE_DIR)
if(cpuinfo_FOUND AND NOT TARGET cpuinfo::cpuinfo)
  add_library(cpuinfo::cpuinfo UNKNOWN IMPORTED)
  set_target_properties(cpuinfo::cpuinfo PROPERTIES
    IMPORTED_LOCATION "${CPUINFO_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${CPUINFO_INCLUDE_DIR}")
endif()
mark_as_advanced(CPUINFO_INCLUDE_DIR CPUINFO_LIBRARY)

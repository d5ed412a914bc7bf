# The consumer executable, shared by the find_package and add_subdirectory
# projects. TILEKIT_CONSUMER_MODE says how the program gets tilekit's kernels:
#   kernels_target  links tilekit::kernels (the README's way)
#   own_file        compiles its own kernels file (kernels.cc includes
#                   tilekit/implementation.h) and links tilekit::tilekit
#   all_inline      defines TILEKIT_ALL_INLINE: every file compiles the kernels
# Three files call kernels in every mode (main.cc, second_tu.cc and the README's
# engine.cc), so a definition that is not inline, or one missing, fails to link.
set(TILEKIT_CONSUMER_MODE kernels_target CACHE STRING "kernels_target, own_file or all_inline")
set(consumer_dir "${CMAKE_CURRENT_LIST_DIR}")

# The README's "use it in your engine" snippet, compiled as it is shown.
file(READ "${consumer_dir}/../../README.md" readme)
string(FIND "${readme}" "// engine.cc" begin)
if(begin EQUAL -1)
  message(FATAL_ERROR "README.md has no code block starting with '// engine.cc'")
endif()
string(SUBSTRING "${readme}" ${begin} -1 rest)
string(FIND "${rest}" "```" end)
string(SUBSTRING "${rest}" 0 ${end} snippet)
file(WRITE "${CMAKE_CURRENT_BINARY_DIR}/readme_engine.cc" "${snippet}")

set(sources "${consumer_dir}/main.cc" "${consumer_dir}/second_tu.cc" "${CMAKE_CURRENT_BINARY_DIR}/readme_engine.cc")
if(TILEKIT_CONSUMER_MODE STREQUAL "own_file")
  list(APPEND sources "${consumer_dir}/kernels.cc")
endif()
add_executable(consumer ${sources})
target_compile_options(consumer PRIVATE -Wall -Wextra -Werror)
if(TILEKIT_CONSUMER_MODE STREQUAL "kernels_target")
  target_link_libraries(consumer PRIVATE tilekit::kernels)
elseif(TILEKIT_CONSUMER_MODE STREQUAL "own_file")
  target_link_libraries(consumer PRIVATE tilekit::tilekit)
elseif(TILEKIT_CONSUMER_MODE STREQUAL "all_inline")
  target_link_libraries(consumer PRIVATE tilekit::tilekit)
  target_compile_definitions(consumer PRIVATE TILEKIT_ALL_INLINE)
else()
  message(FATAL_ERROR "TILEKIT_CONSUMER_MODE=${TILEKIT_CONSUMER_MODE}: expected kernels_target, own_file or all_inline")
endif()

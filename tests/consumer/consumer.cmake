# The consumer executable, shared by the find_package and add_subdirectory
# projects. TILEKIT_CONSUMER_MODE says how the program gets tilekit's kernels:
#   kernels_target  links tilekit::kernels (the README's way)
#   own_file        compiles its own kernels file (kernels.cc includes
#                   tilekit/implementation.h) and links tilekit::tilekit
#   all_inline      defines TILEKIT_ALL_INLINE: every file compiles the kernels
# Four files call kernels in every mode (main.cc, second_tu.cc, functor_check.cc
# and the README's engine.cc), so a definition that is not inline, or one
# missing, fails to link; the README's engine_epilogue.cc compiles an epilogue
# functor for every Highway target in each mode.
set(TILEKIT_CONSUMER_MODE kernels_target CACHE STRING "kernels_target, own_file or all_inline")
set(consumer_dir "${CMAKE_CURRENT_LIST_DIR}")

# The README's snippets, compiled as they are shown: a code block starting with
# "// <file>:" is written to <file> in the build tree.
file(READ "${consumer_dir}/../../README.md" readme)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${consumer_dir}/../../README.md")
function(readme_snippet file)
  string(FIND "${readme}" "// ${file}:" begin)
  if(begin EQUAL -1)
    message(FATAL_ERROR "README.md has no code block starting with '// ${file}:'")
  endif()
  string(SUBSTRING "${readme}" ${begin} -1 rest)
  string(FIND "${rest}" "```" end)
  string(SUBSTRING "${rest}" 0 ${end} snippet)
  file(WRITE "${CMAKE_CURRENT_BINARY_DIR}/${file}" "${snippet}")
endfunction()
readme_snippet(engine.cc)           # "use it in your engine"
readme_snippet(engine_epilogue.h)   # an epilogue functor of the engine's own
readme_snippet(engine_epilogue.cc)  # (its file includes itself by name: the build tree is on the include path)

set(sources "${consumer_dir}/main.cc" "${consumer_dir}/second_tu.cc" "${consumer_dir}/functor_check.cc"
            "${CMAKE_CURRENT_BINARY_DIR}/engine.cc" "${CMAKE_CURRENT_BINARY_DIR}/engine_epilogue.cc")
if(TILEKIT_CONSUMER_MODE STREQUAL "own_file")
  list(APPEND sources "${consumer_dir}/kernels.cc")
endif()
add_executable(consumer ${sources})
target_include_directories(consumer PRIVATE "${CMAKE_CURRENT_BINARY_DIR}")
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

# Core: errors, allocation, arenas, files, RNG; and the usage example at the top of include/ddpm.h.
dd_add_test(NAME test_rng SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_rng.c LABELS unit)
dd_add_test(NAME test_core SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_core.c LABELS unit)

# The header's usage example is extracted from include/ddpm.h at configure time, compiled and run, so the
# documentation cannot drift from the API.
file(READ ${CMAKE_SOURCE_DIR}/include/ddpm.h DD_HEADER_TEXT)
string(FIND "${DD_HEADER_TEXT}" "   USAGE" DD_USAGE_BEGIN)
string(FIND "${DD_HEADER_TEXT}" "   CONVENTIONS" DD_USAGE_END)
math(EXPR DD_USAGE_LEN "${DD_USAGE_END} - ${DD_USAGE_BEGIN}")
string(SUBSTRING "${DD_HEADER_TEXT}" ${DD_USAGE_BEGIN} ${DD_USAGE_LEN} DD_USAGE)
string(FIND "${DD_USAGE}" "\n" DD_FIRST_NL)
math(EXPR DD_FIRST_NL "${DD_FIRST_NL} + 1")
string(SUBSTRING "${DD_USAGE}" ${DD_FIRST_NL} -1 DD_USAGE)
string(REGEX REPLACE "\n       " "\n" DD_USAGE "\n${DD_USAGE}")
file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/test_header_example.c
  "/* Extracted from include/ddpm.h (USAGE). */\n${DD_USAGE}")
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/include/ddpm.h)
dd_add_test(NAME test_header_example SOURCES ${CMAKE_CURRENT_BINARY_DIR}/test_header_example.c LABELS unit)

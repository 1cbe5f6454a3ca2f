# cli.cmake — the plot/strip unit test and the end-to-end test of the ddpm program.
# Both draw text through cairo + fontconfig (DD_CAIRO_TEST_ENV suppresses its one-time allocations).

dd_add_test(NAME test_plot SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_plot.c LABELS unit)
set_tests_properties(test_plot PROPERTIES ENVIRONMENT "${DD_CAIRO_TEST_ENV}")

add_test(NAME test_cli COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/test_cli.sh $<TARGET_FILE:ddpm_cli> ${CMAKE_SOURCE_DIR})
set_tests_properties(test_cli PROPERTIES LABELS "cli" SKIP_RETURN_CODE 77 ENVIRONMENT "${DD_CAIRO_TEST_ENV}")

# install: the installed program finds its shipped files, pkg-config builds the header's example.
add_test(NAME test_install COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/test_install.sh ${CMAKE_BINARY_DIR} ${CMAKE_SOURCE_DIR})
set_tests_properties(test_install PROPERTIES LABELS "cli" SKIP_RETURN_CODE 77 TIMEOUT 300
  ENVIRONMENT "${DD_CAIRO_TEST_ENV}")

# sample_cli.cmake — `ddpm sample`, `interpolate`, `inpaint`, `img2img` and `denoise` end to end on the tiny fixture
# models (strips and grids draw text through cairo + fontconfig: the LeakSanitizer suppressions of cli.cmake).
add_test(NAME test_sample_cli
  COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/test_sample_cli.sh $<TARGET_FILE:ddpm_cli> ${CMAKE_SOURCE_DIR}
    $<TARGET_FILE:compare_tensor>)
set_tests_properties(test_sample_cli PROPERTIES LABELS "cli" SKIP_RETURN_CODE 77 TIMEOUT 600
  ENVIRONMENT "${DD_CAIRO_TEST_ENV}")

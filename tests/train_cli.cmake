# train_cli.cmake — `ddpm train` and `ddpm plot` end to end: run folder, exact resume (also after SIGINT), SIGTERM,
# kill -9 during checkpoint writes, one-line errors for bad input, the loss plot.
add_test(NAME test_train_cli
  COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/test_train_cli.sh $<TARGET_FILE:ddpm_cli> ${CMAKE_SOURCE_DIR})
set_tests_properties(test_train_cli PROPERTIES LABELS "cli" SKIP_RETURN_CODE 77 TIMEOUT 300
  ENVIRONMENT "${DD_CAIRO_TEST_ENV}")

# safe_outputs: outputs replace only regular files, --individual whole or not at all, init --force, one writer per
# run folder, no dead end after a death before the first save, a failed save waiting for room.
add_test(NAME test_safe_outputs
  COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/test_safe_outputs.sh $<TARGET_FILE:ddpm_cli> ${CMAKE_SOURCE_DIR})
set_tests_properties(test_safe_outputs PROPERTIES LABELS "cli" SKIP_RETURN_CODE 77 TIMEOUT 300
  ENVIRONMENT "${DD_CAIRO_TEST_ENV}")

# eval_cli.cmake — `ddpm eval` end to end on the shipped MNIST model and classifier with the 64-image MNIST sample
# (data/mnist-sample): calibration, drawn vs stored samples, determinism, bits/dim on a short diffusion, refusals.
add_test(NAME test_eval_cli
  COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/test_eval_cli.sh $<TARGET_FILE:ddpm_cli> ${CMAKE_SOURCE_DIR})
set_tests_properties(test_eval_cli PROPERTIES LABELS "cli" SKIP_RETURN_CODE 77 TIMEOUT 900)

# sample_ref.cmake — `ddpm sample` against the PyTorch twin of diffusers' DDIM and DPM-Solver++ on the unet_tiny
# fixture network from a stored x_T (tests/data/sample_ref), and batch/thread invariance of the noise streams.
add_executable(compare_tensor ${CMAKE_CURRENT_SOURCE_DIR}/compare_tensor.c)
target_compile_options(compare_tensor PRIVATE ${DD_WARNINGS})
target_link_libraries(compare_tensor PRIVATE ddpm)
add_test(NAME test_sample_ref
  COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/test_sample_ref.sh $<TARGET_FILE:ddpm_cli> $<TARGET_FILE:compare_tensor>
          ${DD_TEST_DATA} ${CMAKE_CURRENT_BINARY_DIR}/sample_ref)
set_tests_properties(test_sample_ref PROPERTIES LABELS "golden;cli" SKIP_RETURN_CODE 77
  ENVIRONMENT "OMP_WAIT_POLICY=passive")

# The shipped model (models/mnist) samples digits without training; DDPM noise streams on a trained network.
add_test(NAME test_shipped_model
  COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/test_shipped_model.sh $<TARGET_FILE:ddpm_cli> $<TARGET_FILE:compare_tensor>
          ${CMAKE_CURRENT_BINARY_DIR}/shipped_model)
set_tests_properties(test_shipped_model PROPERTIES LABELS "golden;cli" SKIP_RETURN_CODE 77 TIMEOUT 900
  ENVIRONMENT "OMP_WAIT_POLICY=passive")

# The real diffusers (pip's torch + diffusers, from the python3 first on PATH or $DDPM_PEER_PYTHON), both ways: it
# loads the shipped model and a folder `ddpm train` writes, ddpm loads what its save_pretrained writes (plain and
# variant="fp16"), and every DDIM loop agrees with `ddpm sample`; skipped where diffusers is not installed.
add_test(NAME peer_diffusers_interop
  COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/peer_python.sh ${CMAKE_CURRENT_SOURCE_DIR}/interop_diffusers.py $<TARGET_FILE:ddpm_cli> $<TARGET_FILE:compare_tensor>
          ${CMAKE_SOURCE_DIR}/models/mnist ${CMAKE_CURRENT_BINARY_DIR}/interop_diffusers ${CMAKE_CURRENT_SOURCE_DIR}/data/folder)
set_tests_properties(peer_diffusers_interop PROPERTIES LABELS "peer" SKIP_RETURN_CODE 77
  ENVIRONMENT "OMP_WAIT_POLICY=passive")

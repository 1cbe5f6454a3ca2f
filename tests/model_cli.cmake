# model_cli.cmake — `ddpm forward` against PyTorch fixtures (sample, loss, x_grad, every parameter gradient) for
# both engines, and the `peer` tests that run the PyTorch side at test time (skipped without torch).
add_executable(compare_fixture ${CMAKE_CURRENT_SOURCE_DIR}/compare_fixture.c)
target_compile_options(compare_fixture PRIVATE ${DD_WARNINGS})
target_compile_definitions(compare_fixture PRIVATE _POSIX_C_SOURCE=200809L)
target_link_libraries(compare_fixture PRIVATE ddpm)

# Fixture folders under tests/data (see tests/data/README.md); a folder not there yet is skipped at run time.
foreach(fx unet_mnist unet_mnist_class unet_tiny unet_tiny_class)
  foreach(engine fast reference)
    add_test(NAME forward_${fx}_${engine}
      COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/test_forward_fixtures.sh $<TARGET_FILE:ddpm_cli>
              $<TARGET_FILE:compare_fixture> ${DD_TEST_DATA}/${fx} ${engine})
    set_tests_properties(forward_${fx}_${engine} PROPERTIES LABELS "golden;cli" SKIP_RETURN_CODE 77
      ENVIRONMENT "OMP_WAIT_POLICY=passive")
  endforeach()
endforeach()

# PyTorch at test time (Debian's /usr/bin/python3 with torch, ../shared/peer): skipped when absent.
set(DD_PEER_DIR ${CMAKE_SOURCE_DIR}/../shared/peer)
add_test(NAME peer_forward_cifar10
  COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/peer_cifar10.sh $<TARGET_FILE:ddpm_cli> $<TARGET_FILE:compare_fixture>
          ${DD_PEER_DIR} ${CMAKE_CURRENT_BINARY_DIR}/peer_cifar10 fast reference)
set_tests_properties(peer_forward_cifar10 PROPERTIES LABELS "peer" SKIP_RETURN_CODE 77 TIMEOUT 1800
  ENVIRONMENT "OMP_WAIT_POLICY=passive")
add_test(NAME peer_init_check
  COMMAND sh -c "if [ -x /usr/bin/python3 ]; then exec /usr/bin/python3 \"$0\" \"$1\" \"$2\" \"$3\"; else echo 'peer_init_check: SKIPPED: no /usr/bin/python3'; exit 77; fi"
          ${CMAKE_CURRENT_SOURCE_DIR}/peer_init_check.py $<TARGET_FILE:ddpm_cli> ${DD_PEER_DIR}
          ${CMAKE_CURRENT_BINARY_DIR}/peer_init_check)
set_tests_properties(peer_init_check PROPERTIES LABELS "peer" SKIP_RETURN_CODE 77
  ENVIRONMENT "OMP_WAIT_POLICY=passive")

# init / forward / bench end to end: reproducibility, error lines and exit codes.
add_test(NAME test_model_cli COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/test_model_cli.sh $<TARGET_FILE:ddpm_cli> ${DD_TEST_DATA})
set_tests_properties(test_model_cli PROPERTIES LABELS "cli" SKIP_RETURN_CODE 77 ENVIRONMENT "OMP_WAIT_POLICY=passive")

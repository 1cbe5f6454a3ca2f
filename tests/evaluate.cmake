# evaluate.cmake — ddpm eval's evaluation as library calls (reference, scores, calibration sets, stored samples,
# bits/dim in chunks) on the 64-image MNIST sample and the shipped MNIST classifier.
dd_add_test(NAME test_evaluate SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_evaluate.c LABELS eval)
target_compile_definitions(test_evaluate PRIVATE DD_SOURCE_DIR="${CMAKE_SOURCE_DIR}")

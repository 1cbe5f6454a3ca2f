# classifier.cmake — the evaluation classifier of ddpm eval: forward against a plain NCHW loop, gradients against
# central differences, training on synthetic squares and bars, chunk and thread independence, save/load, and
# malformed files.
dd_add_test(NAME test_classifier SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_classifier.c LABELS eval)

# train.cmake — the trainer: exact resume, the step's mathematics and random streams, checkpoints and the state file,
# the training log and its plot, preview samples, run folders and network differences.
dd_add_test(NAME test_train_resume SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_train_resume.c LABELS unit)
dd_add_test(NAME test_train_step SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_train_step.c LABELS unit)
dd_add_test(NAME test_train_checkpoint SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_train_checkpoint.c LABELS unit)
dd_add_test(NAME test_train_log SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_train_log.c LABELS unit)
set_tests_properties(test_train_log PROPERTIES ENVIRONMENT "${DD_CAIRO_TEST_ENV}")

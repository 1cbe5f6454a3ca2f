# Application inputs: the null class of label dropout, classifier-free guidance, a pipeline folder's
# scheduler_config.json, image files and masks given to a trained model.
dd_add_test(NAME test_app_inputs SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_app_inputs.c LABELS unit)

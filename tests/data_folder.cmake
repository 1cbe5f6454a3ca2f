# Training data for a model: JPEG reader, resize, folder datasets, channel/size conversion and the default
# data folder (label unit); corrupt, truncated and unsupported images and bad folders (label fault).
dd_add_test(NAME test_data_folder SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_data_folder.c LABELS unit ARGS unit)
target_compile_definitions(test_data_folder PRIVATE DD_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
add_test(NAME test_data_folder_fault COMMAND test_data_folder fault)
set_tests_properties(test_data_folder_fault PROPERTIES LABELS fault SKIP_RETURN_CODE 77
  ENVIRONMENT "OMP_WAIT_POLICY=passive")

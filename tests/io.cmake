# I/O: safetensors, PNG, images, IDX, CIFAR-10, datasets; malformed-file tests (label fault).
foreach(t test_safetensors test_png test_idx_cifar)
  dd_add_test(NAME ${t} SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/${t}.c LABELS unit)
  target_compile_definitions(${t} PRIVATE DD_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
endforeach()
dd_add_test(NAME test_malformed SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_malformed.c LABELS fault)

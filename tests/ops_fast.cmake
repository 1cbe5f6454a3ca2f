# Fast kernels (oneDNN convolutions, BLAS linear, fused GroupNorm/SiLU, glue, MSE, attention) against their
# reference twins.
dd_add_test(NAME test_ops_fast SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_ops_fast.c LABELS unit)

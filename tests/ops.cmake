# Ops: the reference twins (finite-difference gradients, acc contract, f32 vs f64), timestep embedding,
# dropout and layout conversion.
dd_add_test(NAME test_ops_grad SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_ops_grad.c LABELS unit)

# Applications: first_step and shared noise in the sampler loop, per-image x_T, DDIM inversion, slerp, the
# timestep of a noise level, RePaint inpainting.
dd_add_test(NAME test_apps SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_apps.c LABELS unit)

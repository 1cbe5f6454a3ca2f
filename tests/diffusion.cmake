# Diffusion: schedules, the Gaussian-diffusion tables and forward process, samplers, and the diffusers oracle.
dd_add_test(NAME test_schedule SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_schedule.c LABELS unit)
dd_add_test(NAME test_gaussian SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_gaussian.c LABELS unit)
dd_add_test(NAME test_samplers SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_samplers.c LABELS unit)
# Every schedule, step, timestep list and loop of tests/data/oracle.json (diffusers v0.27.2).
dd_add_test(NAME test_diffusers_oracle SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_diffusers_oracle.c LABELS golden)

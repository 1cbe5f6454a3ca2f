# Models: configuration, parameter table, presets, UNet2DModel vs diffusers fixtures (tests/data/unet_tiny*),
# fast vs reference engine, dropout.
dd_add_test(NAME test_model_config SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_model_config.c LABELS unit)
dd_add_test(NAME test_unet_fixtures SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_unet_fixtures.c LABELS golden)
dd_add_test(NAME test_model_engines SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_model_engines.c LABELS unit)

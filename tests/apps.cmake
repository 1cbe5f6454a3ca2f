# Applications: first_step and shared noise in the sampler loop, per-image x_T, DDIM inversion, slerp, the
# timestep of a noise level, RePaint inpainting.
dd_add_test(NAME test_apps SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_apps.c LABELS unit)
# The sampling commands' library calls: N images in chunks, class labels and guidance, folders of images, sample
# tensors, grids and trajectory pictures.
dd_add_test(NAME test_sample_images SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_sample_images.c LABELS unit)
# The applications in one call each (interpolate, img2img, inpaint, denoise) and ddpm_paths_same.
dd_add_test(NAME test_app_calls SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_app_calls.c LABELS unit)

# eval_metrics.cmake — the numbers of ddpm eval: feature statistics, Frechet distance against closed forms,
# nearest neighbours against brute force, the variational bound against an independent loop.
dd_add_test(NAME test_eval_metrics SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_eval_metrics.c LABELS unit)

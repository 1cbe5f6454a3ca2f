# optim.cmake — the optimiser: AdamW against a double reference and torch.optim.AdamW's own values.
dd_add_test(NAME test_adamw SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_adamw.c LABELS unit)

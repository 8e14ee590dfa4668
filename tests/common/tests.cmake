# Unit tests of the shared test helpers (tests/common), on the CPU, in every build.
dm_add_test(test_tensor_compare SOURCES common/test_tensor_compare.c LABELS unit TIMEOUT 60)

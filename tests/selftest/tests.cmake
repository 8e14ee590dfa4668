# `depthmatte selftest` / dm_selftest (include/depthmatte/selftest.h): the synthetic weight
# source, tolerances and filters (C), and the command on the CPU and emulated backends,
# deliberately wrong ops, the CUDA backend without a GPU and bad options (Python driver).
dm_add_test(test_selftest_units SOURCES selftest/test_synthetic.c LABELS unit TIMEOUT 60)

# `depthmatte selftest` / dm_selftest (include/depthmatte/selftest.h): the synthetic weight
# source, tolerances and filters (C), and the command on the CPU and emulated backends,
# deliberately wrong ops, the CUDA backend without a GPU and bad options (Python driver).
dm_add_test(test_selftest_units SOURCES selftest/test_synthetic.c LABELS unit TIMEOUT 60)
set(_dm_selftest_cli "")
if(TARGET depthmatte)
  set(_dm_selftest_cli $<TARGET_FILE:depthmatte>)
endif()
add_test(NAME test_selftest_cli
         COMMAND python3 ${CMAKE_CURRENT_LIST_DIR}/selftest_cli_test.py $<TARGET_FILE:dm_selftest>
                 ${_dm_selftest_cli})
set_tests_properties(test_selftest_cli PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600 LABELS "unit"
                     ENVIRONMENT "OMP_NUM_THREADS=1")
# The reduced-precision network bounds (runtime.verify's, selftest's) on the golden inputs: a
# correct emulated f16/bf16 run passes, one perturbed op fails (src/nn/tolerance.c 3-4).
dm_add_test(test_tol_lowp SOURCES selftest/test_tol_lowp.c LABELS unit model TIMEOUT 300)
# The installed programs alone: `cmake --install` into a fresh prefix, then `selftest` of each
# installed binary from an empty directory (no source tree, no build tree, no shared data).
add_test(NAME test_selftest_installed
         COMMAND ${CMAKE_COMMAND} -DBUILD_DIR=${CMAKE_BINARY_DIR}
                 -DPREFIX=${CMAKE_CURRENT_BINARY_DIR}/install_test
                 -DWITH_CLI=$<BOOL:${_dm_selftest_cli}>
                 -P ${CMAKE_CURRENT_LIST_DIR}/install_test.cmake)
set_tests_properties(test_selftest_installed PROPERTIES TIMEOUT 300 LABELS "unit"
                     ENVIRONMENT "OMP_NUM_THREADS=1")

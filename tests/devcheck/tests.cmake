# The prepared GPU device check (tests/gpu/device_check.sh, docs/gpu.md) in its --dry-run form:
# kit creation and the 64 MiB size check, the device build with the same flags, argument
# handling, `ctest -L gpu` (every test must skip with 77 without a GPU), the GPU benchmark
# drivers at tiny sizes on the CPU. Keeps the script from rotting; a few minutes on 2 cores.
add_test(NAME devcheck_dry_run
         COMMAND bash ${PROJECT_SOURCE_DIR}/tests/gpu/device_check.sh --dry-run
                 --kit ${CMAKE_BINARY_DIR}/devcheck/kit --out ${CMAKE_BINARY_DIR}/devcheck/out)
set_tests_properties(devcheck_dry_run PROPERTIES LABELS "devcheck" TIMEOUT 1200
                     ENVIRONMENT "DM_DEVCHECK_WORK=${CMAKE_BINARY_DIR}/devcheck;DM_SHARED=${PROJECT_SOURCE_DIR}/../shared")

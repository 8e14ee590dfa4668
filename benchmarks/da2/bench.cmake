# bench_da2_cpu: our DA-V2 Small forward time and peak RSS (see benchmarks/README.md). Built
# only once the model exists, and only on request (EXCLUDE_FROM_ALL) so that a benchmark never
# breaks anyone's build:  cmake --build build-bench --target bench_da2_cpu
if(EXISTS ${PROJECT_SOURCE_DIR}/include/depthmatte/da2.h)
  add_executable(bench_da2_cpu EXCLUDE_FROM_ALL ${CMAKE_CURRENT_LIST_DIR}/bench_da2_cpu.c
                 ${PROJECT_SOURCE_DIR}/benchmarks/common/bench_common.c)
  target_include_directories(bench_da2_cpu PRIVATE ${PROJECT_SOURCE_DIR}/benchmarks/common)
  target_link_libraries(bench_da2_cpu PRIVATE dm_engine)
endif()

# fidelity_da2: our taps on one real frame for the float64 comparison (fidelity_da2.py).
if(EXISTS ${PROJECT_SOURCE_DIR}/include/depthmatte/da2.h)
  add_executable(fidelity_da2 EXCLUDE_FROM_ALL ${CMAKE_CURRENT_LIST_DIR}/fidelity_da2.c
                 ${PROJECT_SOURCE_DIR}/benchmarks/common/bench_common.c)
  target_include_directories(fidelity_da2 PRIVATE ${PROJECT_SOURCE_DIR}/benchmarks/common)
  target_link_libraries(fidelity_da2 PRIVATE dm_engine)
endif()

# bench_vda_cpu: our Video Depth Anything Small frames/s (one window, streaming video) and peak
# RSS (see benchmarks/README.md). Built only once the model exists, and only on request
# (EXCLUDE_FROM_ALL) so that a benchmark never breaks anyone's build:
#   cmake --build build-bench --target bench_vda_cpu
if(EXISTS ${PROJECT_SOURCE_DIR}/include/depthmatte/vda.h)
  add_executable(bench_vda_cpu EXCLUDE_FROM_ALL ${CMAKE_CURRENT_LIST_DIR}/bench_vda_cpu.c
                 ${PROJECT_SOURCE_DIR}/benchmarks/common/bench_common.c)
  target_include_directories(bench_vda_cpu PRIVATE ${PROJECT_SOURCE_DIR}/benchmarks/common)
  target_link_libraries(bench_vda_cpu PRIVATE dm_engine)
endif()
# bench_vda_stream: the streaming mode (vda_stream): peak RSS for two lengths, s/frame vs
# the offline path (run_vda_stream.sh).
if(EXISTS ${PROJECT_SOURCE_DIR}/src/models/vda_stream.c)
  add_executable(bench_vda_stream EXCLUDE_FROM_ALL ${CMAKE_CURRENT_LIST_DIR}/bench_vda_stream.c
                 ${PROJECT_SOURCE_DIR}/benchmarks/common/bench_common.c)
  target_include_directories(bench_vda_stream PRIVATE ${PROJECT_SOURCE_DIR}/benchmarks/common)
  target_link_libraries(bench_vda_stream PRIVATE dm_engine)
endif()

# bench_gpu: our networks on the CUDA (or CPU) backend beside the official PyTorch code
# (benchmarks/gpu/run_gpu_bench.sh). Built only on request (EXCLUDE_FROM_ALL):
#   cmake --build build-device --target bench_gpu
if(EXISTS ${PROJECT_SOURCE_DIR}/include/depthmatte/vda.h)
  add_executable(bench_gpu EXCLUDE_FROM_ALL ${CMAKE_CURRENT_LIST_DIR}/bench_gpu.c
                 ${PROJECT_SOURCE_DIR}/benchmarks/common/bench_common.c)
  target_include_directories(bench_gpu PRIVATE ${PROJECT_SOURCE_DIR}/benchmarks/common)
  target_link_libraries(bench_gpu PRIVATE dm_engine)
endif()

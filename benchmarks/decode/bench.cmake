# bench_decode: our frame-exact decode to RGB24 vs `ffmpeg -i X -f null -` on the same file
# (see benchmarks/README.md). Needs the pipeline build (FFmpeg); built only on request:
#   cmake --build build-video --target bench_decode && ./build-video/benchmarks/bench_decode
if(DM_WITH_PIPELINE AND EXISTS ${PROJECT_SOURCE_DIR}/include/depthmatte/video.h)
  add_executable(bench_decode EXCLUDE_FROM_ALL ${CMAKE_CURRENT_LIST_DIR}/bench_decode.c
                 ${PROJECT_SOURCE_DIR}/benchmarks/common/bench_common.c)
  target_include_directories(bench_decode PRIVATE ${PROJECT_SOURCE_DIR}/benchmarks/common)
  target_compile_definitions(bench_decode PRIVATE DM_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  target_link_libraries(bench_decode PRIVATE dm_pipeline)
endif()

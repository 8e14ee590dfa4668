# libFuzzer harnesses (docs/fuzzing.md): the YAML job parser, the safetensors reader and the
# FFmpeg demux/decode path. Built only with -DDM_FUZZ=ON and clang (libFuzzer is a clang
# runtime: Debian packages clang + libclang-rt-14-dev), in a build of their own, e.g.
#   cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DDM_FUZZ=ON -DDM_WITH_PIPELINE=OFF \
#         -DDM_WITH_CUDA=OFF && cmake --build build-fuzz -j2 --target dm_fuzzers
#   ctest --test-dir build-fuzz -L fuzz
# Each harness compiles the sources it exercises directly (src/config, src/video,
# src/weights/safetensors.c, src/nn/status.c + tensor.c), so those get the fuzzer's coverage
# instrumentation and ASan + UBSan, while the rest of the tree (engine, OpenBLAS, MPI) is
# neither built nor instrumented. DM_FUZZ_SECONDS sets each CTest run's length (CI: short);
# the long runs of docs/fuzzing.md call tests/fuzz/run_fuzz.sh with more seconds.
option(DM_FUZZ "Build the libFuzzer harnesses (clang only) and their CTest runs (label fuzz)" OFF)
set(DM_FUZZ_SECONDS 45 CACHE STRING "Seconds each fuzz harness runs in its CTest test")

if(DM_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "DM_FUZZ=ON needs clang (libFuzzer): -DCMAKE_C_COMPILER=clang")
  endif()
  pkg_check_modules(DM_FUZZ_YAML REQUIRED IMPORTED_TARGET yaml-0.1)
  pkg_check_modules(DM_FUZZ_AV REQUIRED IMPORTED_TARGET libavformat libavcodec libswscale libavutil)
  find_program(DM_FFMPEG_CLI ffmpeg)

  set(_fz ${CMAKE_CURRENT_SOURCE_DIR}/fuzz)
  set(_flags -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
             -fno-omit-frame-pointer -g -O1)
  file(GLOB _config_src CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/config/*.c)
  file(GLOB _video_src CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/video/*.c)
  # the demux/decode path only: the export encoders (video/audio/image writers, OpenEXR) are
  # not what fuzz_video feeds, and would need libswresample and OpenEXR here
  list(FILTER _video_src EXCLUDE REGEX "(_writer|exr_io)\\.c$")
  # backend_cuda_stub.c: dm_tensor_free releases device buffers through dm_cuda_buffer_free
  set(_base_src ${_fz}/fuzz_util.c ${PROJECT_SOURCE_DIR}/src/nn/status.c
                ${PROJECT_SOURCE_DIR}/src/nn/tensor.c ${PROJECT_SOURCE_DIR}/src/nn/backend_cuda_stub.c)

  function(dm_add_fuzzer name)
    cmake_parse_arguments(F "" "" "SOURCES;LIBS" ${ARGN})
    add_executable(${name} ${_fz}/${name}.c ${_base_src} ${F_SOURCES})
    target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/include
                               ${PROJECT_SOURCE_DIR}/src ${_fz})
    target_compile_definitions(${name} PRIVATE DM_VERSION="${PROJECT_VERSION}")
    target_compile_options(${name} PRIVATE ${_flags})
    target_link_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_libraries(${name} PRIVATE ${F_LIBS} m)
  endfunction()
  dm_add_fuzzer(fuzz_config SOURCES ${_config_src} LIBS PkgConfig::DM_FUZZ_YAML)
  # synthetic.c + recipe.c: the synthetic weight source safetensors.c dispatches to
  dm_add_fuzzer(fuzz_safetensors SOURCES ${PROJECT_SOURCE_DIR}/src/weights/safetensors.c
                ${PROJECT_SOURCE_DIR}/src/weights/synthetic.c
                ${PROJECT_SOURCE_DIR}/src/weights/recipe.c LIBS PkgConfig::CJSON)
  dm_add_fuzzer(fuzz_video SOURCES ${_video_src} LIBS PkgConfig::DM_FUZZ_AV)
  add_custom_target(dm_fuzzers DEPENDS fuzz_config fuzz_safetensors fuzz_video)

  # Seeds are generated at test time into the build tree (never committed): a fixture test.
  set(_work ${CMAKE_CURRENT_BINARY_DIR}/fuzz_work)
  add_test(NAME fuzz_seeds COMMAND ${_fz}/make_seeds.sh ${PROJECT_SOURCE_DIR} ${_work}/seeds)
  set_tests_properties(fuzz_seeds PROPERTIES FIXTURES_SETUP dm_fuzz_seeds LABELS fuzz
                       TIMEOUT 120)
  foreach(h config safetensors video)
    set(_extra "")
    if(h STREQUAL "config")
      set(_extra -dict=${_fz}/config.dict)
    endif()
    add_test(NAME fuzz_${h}
             COMMAND ${_fz}/run_fuzz.sh $<TARGET_FILE:fuzz_${h}> ${_work}/seeds/${h}
                     ${_work}/${h} ${DM_FUZZ_SECONDS} ${_extra})
    math(EXPR _timeout "${DM_FUZZ_SECONDS} + 120")
    set_tests_properties(fuzz_${h} PROPERTIES FIXTURES_REQUIRED dm_fuzz_seeds LABELS fuzz
                         TIMEOUT ${_timeout})
  endforeach()
endif()

# End-to-end tests: `depthmatte run` under mpiexec on real clips (label e2e), driven and checked
# by tests/e2e/e2e.py with h5py. Each case is one CTest test with a timeout, so a hang fails.
# CPU cost (2 cores, OMP_NUM_THREADS=1 per rank): consistency ~2-3 min, full720p ~2 min,
# odd_videos ~1-2 min, bad_inputs/keep_going/resume < 1 min each, sigterm/crash ~1 min each,
# depth/depth_model_size < 1 min each, rvm_resnet50 ~15-40 s, vda_stream ~2-4 min, stall ~1.5 min,
# slow_rank ~1 min, stages (matting + VDA vs separate jobs, 7 runs) ~2-3 min, overlap (10 runs
# on vs off + a write failure and its resume) ~2-3 min.
if(DM_WITH_PIPELINE AND TARGET depthmatte)
  if(DM_H5PY_PYTHON)
    set(_py ${DM_H5PY_PYTHON})
  else()
    set(_py python3) # the script skips loudly (77) without h5py
  endif()
  set(_tool "")
  if(TARGET dm_make_recipe_weights)
    set(_tool $<TARGET_FILE:dm_make_recipe_weights>)
  endif()
  foreach(case consistency full720p bad_inputs keep_going odd_videos resume depth vda vda_stream stages
                 depth_model_size sigterm crash device rvm_resnet50
                 stall slow_rank overlap)
    add_test(NAME e2e_${case}
             COMMAND ${_py} ${CMAKE_CURRENT_SOURCE_DIR}/e2e/e2e.py ${case}
                     --exe $<TARGET_FILE:depthmatte> --mpiexec ${MPIEXEC_EXECUTABLE}
                     --shared ${PROJECT_SOURCE_DIR}/../shared
                     --work ${CMAKE_CURRENT_BINARY_DIR}/e2e_work --recipe-tool "${_tool}")
    set_tests_properties(e2e_${case} PROPERTIES LABELS e2e SKIP_RETURN_CODE 77 TIMEOUT 600
                         ENVIRONMENT "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMP_NUM_THREADS=1")
  endforeach()
endif()
# Input options (tests/e2e/inputs_test.py): target_fps, max_res, image sequences, their bad
# inputs. CPU cost (2 cores): select ~1 min, max_res ~1 min, images ~1 min, bad_inputs < 1 min,
# vda < 1 min.
if(DM_WITH_PIPELINE AND TARGET depthmatte)
  foreach(case select max_res images bad_inputs vda)
    add_test(NAME e2e_inputs_${case}
             COMMAND ${_py} ${CMAKE_CURRENT_SOURCE_DIR}/e2e/inputs_test.py ${case}
                     --exe $<TARGET_FILE:depthmatte> --mpiexec ${MPIEXEC_EXECUTABLE}
                     --shared ${PROJECT_SOURCE_DIR}/../shared
                     --work ${CMAKE_CURRENT_BINARY_DIR}/e2e_work --recipe-tool "${_tool}")
    set_tests_properties(e2e_inputs_${case} PROPERTIES LABELS e2e SKIP_RETURN_CODE 77 TIMEOUT 600
                         ENVIRONMENT "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMP_NUM_THREADS=1")
  endforeach()
endif()

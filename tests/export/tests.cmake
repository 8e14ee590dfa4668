# `depthmatte export` (label export): tests/export/export_test.py drives the CLI under mpiexec
# and checks the outputs with h5py and FFmpeg's tools. export_fixture runs one small job
# (16 frames of two real clips, RVM + DA-V2 recipe weights; ~30 s on 2 cores) that the other
# cases read (CTest fixture). CPU cost of the other cases: a few seconds to ~30 s each.
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
  add_executable(dm_exr_dump ${CMAKE_CURRENT_SOURCE_DIR}/export/dm_exr_dump.c)
  target_link_libraries(dm_exr_dump PRIVATE dm_pipeline)
  foreach(case fixture alpha_webm alpha_prores depth_images image_sequences video_kinds depth_vis_norm
               audio mpi
               bad_inputs)
    add_test(NAME export_${case}
             COMMAND ${_py} ${CMAKE_CURRENT_SOURCE_DIR}/export/export_test.py ${case}
                     --exe $<TARGET_FILE:depthmatte> --mpiexec ${MPIEXEC_EXECUTABLE}
                     --shared ${PROJECT_SOURCE_DIR}/../shared
                     --work ${CMAKE_CURRENT_BINARY_DIR}/export_work --recipe-tool "${_tool}"
                     --exr-dump $<TARGET_FILE:dm_exr_dump>)
    set_tests_properties(export_${case} PROPERTIES LABELS export SKIP_RETURN_CODE 77 TIMEOUT 600
                         ENVIRONMENT "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMP_NUM_THREADS=1")
    if(case STREQUAL "fixture")
      set_tests_properties(export_${case} PROPERTIES FIXTURES_SETUP export_h5)
    else()
      set_tests_properties(export_${case} PROPERTIES FIXTURES_REQUIRED export_h5)
    endif()
  endforeach()
endif()
if(DM_WITH_PIPELINE)
  dm_add_test(test_video_writer SOURCES export/test_video_writer.c LIBS dm_pipeline
              LABELS unit export TIMEOUT 120)
endif()

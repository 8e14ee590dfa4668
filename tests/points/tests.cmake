# depthmatte points (docs/points.md): synthetic scene with known geometry through the project's
# own HDF5 writer (closed forms, library rules, bad inputs), PLY point clouds checked with numpy
# against the stored depth, and a real clip through `run` with vda_vits_metric recipe weights.
if(DM_WITH_PIPELINE AND TARGET depthmatte)
  set(_pt_work ${CMAKE_CURRENT_BINARY_DIR}/points_work)
  file(MAKE_DIRECTORY ${_pt_work})
  add_executable(test_points points/test_points.c)
  target_link_libraries(test_points PRIVATE dm_testcommon dm_pipeline)
  add_test(NAME points_scene
           COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} 1 --oversubscribe
                   $<TARGET_FILE:test_points> $<TARGET_FILE:depthmatte> ${_pt_work})
  set_tests_properties(points_scene PROPERTIES TIMEOUT 120 LABELS "unit;points"
                       ENVIRONMENT "${DM_MPI_TEST_ENV}" FIXTURES_SETUP points_scene_files)
endif()

if(DM_WITH_PIPELINE AND TARGET depthmatte)
  if(DM_H5PY_PYTHON)
    set(_pt_py ${DM_H5PY_PYTHON})
  else()
    set(_pt_py python3) # the script skips loudly (77) without h5py
  endif()
  set(_pt_tool "")
  if(TARGET dm_make_recipe_weights)
    set(_pt_tool $<TARGET_FILE:dm_make_recipe_weights>)
  endif()
  # ply: ~5 s (needs the scene files of points_scene); real: ~15 s (one 30-frame VDA run).
  foreach(case ply real)
    add_test(NAME points_${case}
             COMMAND ${_pt_py} ${CMAKE_CURRENT_SOURCE_DIR}/points/points_e2e.py ${case}
                     --exe $<TARGET_FILE:depthmatte> --mpiexec ${MPIEXEC_EXECUTABLE}
                     --shared ${PROJECT_SOURCE_DIR}/../shared --work ${_pt_work}
                     --recipe-tool "${_pt_tool}")
    set_tests_properties(points_${case} PROPERTIES LABELS "e2e;points" SKIP_RETURN_CODE 77
                         TIMEOUT 300 ENVIRONMENT "${DM_MPI_TEST_ENV}")
  endforeach()
  set_tests_properties(points_ply PROPERTIES FIXTURES_REQUIRED points_scene_files)
endif()

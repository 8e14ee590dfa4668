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

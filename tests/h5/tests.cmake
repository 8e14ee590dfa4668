# Parallel HDF5 writer: mpirun -np 2 on synthetic rows, then an independent h5py read-back.
if(DM_WITH_PIPELINE)
  # Open MPI refuses to run as root (CI) unless told otherwise.
  set(DM_MPI_TEST_ENV "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMP_NUM_THREADS=1")

  add_executable(test_h5out h5/test_h5out.c)
  target_link_libraries(test_h5out PRIVATE dm_testcommon dm_pipeline)
  set(_h5file ${CMAKE_CURRENT_BINARY_DIR}/test_h5out_np2.h5)
  add_test(NAME h5_out_np2
           COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} 2 --oversubscribe
                   $<TARGET_FILE:test_h5out> ${_h5file})
  set_tests_properties(h5_out_np2 PROPERTIES TIMEOUT 120 LABELS "unit;h5"
                       ENVIRONMENT "${DM_MPI_TEST_ENV}" FIXTURES_SETUP h5out_file)
  if(DM_H5PY_PYTHON)
    add_test(NAME h5_out_h5py
             COMMAND ${DM_H5PY_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/h5/check_h5out.py ${_h5file} 2)
  else()
    # No h5py: the script itself reports the loud skip (exit 77).
    add_test(NAME h5_out_h5py
             COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/h5/check_h5out.py ${_h5file} 2)
  endif()
  set_tests_properties(h5_out_h5py PROPERTIES TIMEOUT 60 LABELS "unit;h5" SKIP_RETURN_CODE 77
                       FIXTURES_REQUIRED h5out_file)
endif()

# Reader (include/depthmatte/h5read.h): files written by h5out under MPI (one rank), then read
# back by a plain process without MPI_Init.
if(DM_WITH_PIPELINE)
  add_executable(test_h5read h5/test_h5read.c)
  target_link_libraries(test_h5read PRIVATE dm_testcommon dm_pipeline)
  add_test(NAME h5_read_write
           COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} 1 --oversubscribe
                   $<TARGET_FILE:test_h5read> write ${CMAKE_CURRENT_BINARY_DIR})
  set_tests_properties(h5_read_write PROPERTIES TIMEOUT 60 LABELS "unit;h5"
                       ENVIRONMENT "${DM_MPI_TEST_ENV}" FIXTURES_SETUP h5read_files)
  add_test(NAME h5_read COMMAND test_h5read read ${CMAKE_CURRENT_BINARY_DIR})
  set_tests_properties(h5_read PROPERTIES TIMEOUT 60 LABELS "unit;h5"
                       FIXTURES_REQUIRED h5read_files)
endif()

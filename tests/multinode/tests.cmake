# Multi-host tests on one machine (label multinode): tests/multinode/testbed.py makes N hosts
# from network + UTS namespaces joined by a bridge, mpirun reaches them through an rsh agent,
# TCP only. Needs root; skips loudly (77) otherwise. CPU cost on 2 cores: bitwise ~2 min,
# linkdown, killhost ~2.5 min each.
if(DM_WITH_PIPELINE AND TARGET depthmatte)
  if(DM_H5PY_PYTHON)
    set(_py ${DM_H5PY_PYTHON})
  else()
    set(_py python3)
  endif()
  set(_tool "")
  if(TARGET dm_make_recipe_weights)
    set(_tool $<TARGET_FILE:dm_make_recipe_weights>)
  endif()
  # hostdown (both links of a host down: the mpirun daemon's link too) is a case of
  # multinode.py but not a CTest test: after our MPI_Abort, mpirun itself can wait for TCP to
  # give up on the lost daemon (seen in a clean-clone CI run: > 7 min; docs/operations.md).
  foreach(case bitwise linkdown killhost)
    add_test(NAME multinode_${case}
             COMMAND ${_py} ${CMAKE_CURRENT_SOURCE_DIR}/multinode/multinode.py ${case}
                     --exe $<TARGET_FILE:depthmatte> --mpiexec ${MPIEXEC_EXECUTABLE}
                     --shared ${PROJECT_SOURCE_DIR}/../shared
                     --work ${CMAKE_CURRENT_BINARY_DIR}/multinode_work --recipe-tool "${_tool}")
    set_tests_properties(multinode_${case} PROPERTIES LABELS multinode SKIP_RETURN_CODE 77
                         TIMEOUT 600 RUN_SERIAL TRUE)
  endforeach()
endif()

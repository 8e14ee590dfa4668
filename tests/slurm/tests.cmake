# Slurm end to end (label slurm): a private Slurm on localhost runs the jobs/*.sbatch scripts
# on the two lossless clips with the real RVM weights (tests/slurm/slurm_job_test.sh,
# docs/operations.md): cpu (jobs/cpu.sbatch, 2 tasks), requeue (jobs/requeue.sbatch: SIGTERM
# mid-run, requeue, --resume) and array (jobs/array.sbatch over a manifest). Each skips loudly
# (77) when slurm-wlm/munge are not installed or the test does not run as root. Measured on
# 2 cores: cpu ~45 s, requeue ~80 s, array ~40 s. RUN_SERIAL: the jobs use every core.
if(DM_WITH_PIPELINE AND TARGET depthmatte)
  foreach(mode cpu requeue array)
    add_test(NAME slurm_${mode}
             COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/slurm/slurm_job_test.sh ${mode}
                     $<TARGET_FILE:depthmatte> ${PROJECT_SOURCE_DIR} ${PROJECT_SOURCE_DIR}/../shared)
    set_tests_properties(slurm_${mode} PROPERTIES LABELS slurm SKIP_RETURN_CODE 77 TIMEOUT 540
                         RUN_SERIAL TRUE)
  endforeach()
endif()

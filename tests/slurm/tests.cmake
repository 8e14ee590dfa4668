# Slurm end to end (label slurm): a private Slurm on localhost runs jobs/cpu.sbatch on two
# lossless clips with 2 tasks (tests/slurm/slurm_cpu_job.sh; docs/operations.md). Skips loudly
# (77) when slurm-wlm/munge are not installed or the test is not run as root. About 45 s on
# 2 cores (24 frames per clip); RUN_SERIAL because the job uses every core of the node.
if(DM_WITH_PIPELINE AND TARGET depthmatte)
  add_test(NAME slurm_cpu_job
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/slurm/slurm_cpu_job.sh
                   $<TARGET_FILE:depthmatte> ${PROJECT_SOURCE_DIR} ${PROJECT_SOURCE_DIR}/../shared)
  set_tests_properties(slurm_cpu_job PROPERTIES LABELS slurm SKIP_RETURN_CODE 77 TIMEOUT 540
                       RUN_SERIAL TRUE)
endif()

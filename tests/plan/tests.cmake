# The planner is pure C (no MPI/HDF5), so its tests compile src/plan/*.c directly and run in
# every build, pipeline or not.
file(GLOB DM_PLAN_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/plan/*.c)
dm_add_test(test_plan SOURCES plan/test_plan.c ${DM_PLAN_SOURCES} LABELS unit TIMEOUT 120)
dm_add_test(test_gpu_bind SOURCES plan/test_gpu_bind.c ${PROJECT_SOURCE_DIR}/src/plan/gpu_bind.c LABELS unit TIMEOUT 30)

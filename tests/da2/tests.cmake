# Depth Anything V2 Small: recipe weights and conformance with the golden tensors of the
# official implementation (../shared/golden/da2_vits, README sections 1, 2, 5).
dm_add_test(test_recipe SOURCES da2/test_recipe.c LABELS unit model TIMEOUT 60)
dm_add_test(test_da2_golden SOURCES da2/test_da2_golden.c LABELS model TIMEOUT 300)
dm_add_gpu_variants(test_da2_golden TIMEOUT 300)
dm_add_emulated_variant(test_da2_golden TIMEOUT 300)
dm_add_emulated_lowp_variants(test_da2_golden TIMEOUT 300)
dm_add_test(test_da2_loader SOURCES da2/test_da2_loader.c LABELS unit model TIMEOUT 300)

# Tool for users / benchmarks: recipe weights -> safetensors (models/make_recipe_weights.c).
add_executable(dm_make_recipe_weights ${PROJECT_SOURCE_DIR}/models/make_recipe_weights.c)
target_link_libraries(dm_make_recipe_weights PRIVATE dm_engine)
add_test(NAME test_make_recipe_weights
         COMMAND dm_make_recipe_weights ${PROJECT_SOURCE_DIR}/../shared/golden/da2_vits/recipe.json
                 ${CMAKE_CURRENT_BINARY_DIR}/da2_recipe.safetensors)
set_tests_properties(test_make_recipe_weights PROPERTIES LABELS "unit" TIMEOUT 60)

# `depthmatte infer` end to end (only in the pipeline build, which has the CLI).
if(TARGET depthmatte)
  add_test(NAME test_da2_infer_cli
           COMMAND python3 ${CMAKE_CURRENT_LIST_DIR}/infer_cli_test.py $<TARGET_FILE:depthmatte>
                   $<TARGET_FILE:dm_make_recipe_weights> ${PROJECT_SOURCE_DIR}/../shared
                   ${CMAKE_CURRENT_BINARY_DIR}/da2_infer_cli)
  set_tests_properties(test_da2_infer_cli PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 300
                       LABELS "model;e2e" ENVIRONMENT "OMP_NUM_THREADS=2")
endif()

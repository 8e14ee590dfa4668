# Depth Anything V2 Small: recipe weights and conformance with the golden tensors of the
# official implementation (../shared/golden/da2_vits, README sections 1, 2, 5).
dm_add_test(test_recipe SOURCES da2/test_recipe.c LABELS unit model TIMEOUT 60)
dm_add_test(test_da2_golden SOURCES da2/test_da2_golden.c LABELS model TIMEOUT 300)
dm_add_test(test_da2_loader SOURCES da2/test_da2_loader.c LABELS unit model TIMEOUT 300)

# Tool for users / benchmarks: recipe weights -> safetensors (models/make_recipe_weights.c).
add_executable(dm_make_recipe_weights ${PROJECT_SOURCE_DIR}/models/make_recipe_weights.c)
target_link_libraries(dm_make_recipe_weights PRIVATE dm_engine)
add_test(NAME test_make_recipe_weights
         COMMAND dm_make_recipe_weights ${PROJECT_SOURCE_DIR}/../shared/golden/da2_vits/recipe.json
                 ${CMAKE_CURRENT_BINARY_DIR}/da2_recipe.safetensors)
set_tests_properties(test_make_recipe_weights PROPERTIES LABELS "unit" TIMEOUT 60)

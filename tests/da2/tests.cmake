# Depth Anything V2 Small: recipe weights and conformance with the golden tensors of the
# official implementation (../shared/golden/da2_vits, README sections 1, 2, 5).
dm_add_test(test_recipe SOURCES da2/test_recipe.c LABELS unit model TIMEOUT 60)
dm_add_test(test_da2_golden SOURCES da2/test_da2_golden.c LABELS model TIMEOUT 300)

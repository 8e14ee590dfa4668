# RVM MobileNetV3 / ResNet50: golden conformance (model), weight validation (unit), pooling ops (op).
dm_add_test(test_rvm_golden SOURCES rvm/test_rvm_golden.c LABELS model TIMEOUT 300)
dm_add_gpu_variants(test_rvm_golden TIMEOUT 300)
dm_add_emulated_variant(test_rvm_golden TIMEOUT 300)
dm_add_test(test_rvm_weights SOURCES rvm/test_rvm_weights.c LABELS unit TIMEOUT 120)
dm_add_test(test_rvm_ops SOURCES rvm/test_rvm_ops.c LABELS op unit TIMEOUT 60)
dm_add_test(test_rvm_sizes SOURCES rvm/test_rvm_sizes.c LABELS model TIMEOUT 300)
dm_add_test(test_rvm_maxpool SOURCES rvm/test_rvm_maxpool.c LABELS op unit TIMEOUT 60)
dm_add_test(test_rvm_r50_golden SOURCES rvm/test_rvm_r50_golden.c LABELS model TIMEOUT 300)

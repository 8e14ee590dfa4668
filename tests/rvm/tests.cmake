# RVM MobileNetV3: golden conformance (model), weight validation (unit), avgpool op (op).
dm_add_test(test_rvm_golden SOURCES rvm/test_rvm_golden.c LABELS model TIMEOUT 300)

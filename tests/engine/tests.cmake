dm_add_test(test_engine_basics SOURCES engine/test_engine_basics.c LABELS unit op)

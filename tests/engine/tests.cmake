dm_add_test(test_engine_basics SOURCES engine/test_engine_basics.c LABELS unit op)
dm_add_test(test_device_models SOURCES engine/test_device_models.c LABELS unit model TIMEOUT 600)
dm_add_test(test_graphs SOURCES engine/test_graphs.c LABELS unit model TIMEOUT 900)
dm_add_test(test_copy_async SOURCES engine/test_copy_async.c LABELS unit model TIMEOUT 600)
if(DM_WITH_PIPELINE)
  dm_add_test(test_output_downloads SOURCES engine/test_output_downloads.c LIBS dm_pipeline
              LABELS unit TIMEOUT 60)
endif()
# The same engine checks and frame loop on the CUDA backend (copy stream, events, stage ring):
# label gpu, run by the device check; exits 77 (loud) without a CUDA build or device.
dm_add_test(test_copy_async_cuda SOURCES engine/test_copy_async.c ARGS --cuda LABELS gpu
            TIMEOUT 120)
dm_add_test(test_op_support SOURCES engine/test_op_support.c LABELS unit op TIMEOUT 60)

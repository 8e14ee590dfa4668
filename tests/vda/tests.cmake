# Video Depth Anything Small: conformance with the golden tensors of the official
# implementation (../shared/golden/vda_vits, README sections 1, 3, 5), the streaming form and
# the split of a video over simulated ranks.
dm_add_test(test_vda_window SOURCES vda/test_vda_window.c LABELS model TIMEOUT 300)
dm_add_test(test_vda_video SOURCES vda/test_vda_video.c LABELS model TIMEOUT 1800)
dm_add_gpu_variants(test_vda_window TIMEOUT 300)
dm_add_emulated_variant(test_vda_window TIMEOUT 300)
dm_add_emulated_lowp_variants(test_vda_window TIMEOUT 300)
dm_add_gpu_variants(test_vda_video TIMEOUT 300)
dm_add_test(test_vda_memory SOURCES vda/test_vda_memory.c LABELS model TIMEOUT 900)
# Streaming mode (infer_video_depth_one): golden stream.safetensors, reset, causality, memory.
dm_add_test(test_vda_stream SOURCES vda/test_vda_stream.c LABELS model TIMEOUT 900)
dm_add_emulated_variant(test_vda_stream TIMEOUT 900)
dm_add_emulated_lowp_variants(test_vda_stream TIMEOUT 900)
dm_add_gpu_variants(test_vda_stream TIMEOUT 300)
dm_add_test(test_vda_buffers SOURCES vda/test_vda_buffers.c LABELS model TIMEOUT 300)

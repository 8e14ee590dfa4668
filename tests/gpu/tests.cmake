# GPU tier (label gpu): every CUDA op against the CPU reference op, per precision.
# Always built; without a CUDA build or without a visible device it exits 77 (loud skip).
# On a GPU machine: tests/gpu/run_gpu_tests.sh (see docs/gpu.md).
dm_add_test(test_cuda_ops SOURCES gpu/test_cuda_ops.c gpu/op_filter.c LABELS gpu TIMEOUT 900)
# The same case table run against a second CPU backend (f32): the runner, guards and NaN-aware
# comparisons are checked without a GPU, in every build.
dm_add_test(test_cuda_ops_cpu_runner SOURCES gpu/test_cuda_ops.c gpu/op_filter.c ARGS -b cpu
            LABELS unit TIMEOUT 300)
# ... and against the emulated device backend in all three precisions (device rules, outputs
# rounded to f16/bf16: the f16/bf16 tolerances hold for correctly rounded ops), and with a fault
# injected into linear: exactly the linear cases must fail (the table catches a wrong op).
dm_add_test(test_cuda_ops_emu SOURCES gpu/test_cuda_ops.c gpu/op_filter.c ARGS -b emu
            LABELS unit TIMEOUT 300)
dm_add_test(test_cuda_ops_emu_fault SOURCES gpu/test_cuda_ops.c gpu/op_filter.c
            ARGS -b emu -P linear -o linear,layernorm,permute LABELS unit TIMEOUT 300)
# The case-table filter of test_cuda_ops (-o / -t parsing), on the CPU, in every build.
dm_add_test(test_op_filter SOURCES gpu/test_op_filter.c gpu/op_filter.c LABELS unit TIMEOUT 60)
# The CUDA backend's pure diagnostics (cuDNN status categories, driver-too-old message).
dm_add_test(test_cuda_diag SOURCES gpu/test_cuda_diag.c LABELS unit TIMEOUT 60)
# The device allocation tracker behind dm_cuda_alloc_stats (src/nn/alloc_track.c), in every build.
dm_add_test(test_alloc_track SOURCES gpu/test_alloc_track.c LABELS unit TIMEOUT 60)
# The stand-in libraries of the device check's pipeline bundle (tests/gpu/make_stub_lib.py):
# a BIND_NOW program starts with one, a call into it aborts naming library and symbol, a
# versioned library is refused. Seconds; 77 without gcc/readelf/python3.
add_test(NAME devcheck_stub_lib COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/gpu/test_stub_lib.sh)
set_tests_properties(devcheck_stub_lib PROPERTIES LABELS "unit" TIMEOUT 120 SKIP_RETURN_CODE 77)
# The fused conv epilogues' pure parts (activation chains vs the CPU activations, eligibility,
# plan-cache key and ring): src/nn/conv_fuse.c, in every build.
dm_add_test(test_conv_fuse SOURCES gpu/test_conv_fuse.c LABELS unit TIMEOUT 60)
# The fused conv graphs' cuDNN descriptors finalize on the host (CUDA builds, no GPU needed;
# exit 77 without CUDA): src/nn/cuda/conv_fused.c.
dm_add_test(test_conv_fused_graph SOURCES gpu/test_conv_fused_graph.c LABELS unit TIMEOUT 120)

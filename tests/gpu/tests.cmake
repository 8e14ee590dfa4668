# GPU tier (label gpu): every CUDA op against the CPU reference op, per precision.
# Always built; without a CUDA build or without a visible device it exits 77 (loud skip).
# On a GPU machine: tests/gpu/run_gpu_tests.sh (see docs/gpu.md).
dm_add_test(test_cuda_ops SOURCES gpu/test_cuda_ops.c LABELS gpu TIMEOUT 900)

#!/usr/bin/env bash
# Builds the engine with the CUDA backend and runs the GPU test tier (ctest -L gpu) on a GPU
# machine that has cmake, a C compiler, OpenBLAS, cJSON, the CUDA toolkit (nvcc, cuBLASLt) and
# cuDNN 9 (from the toolkit, a system install, or a PyTorch env's nvidia-cudnn wheel), but no
# MPI / HDF5 / FFmpeg (the pipeline is not built). See docs/gpu.md.
#
#   tests/gpu/run_gpu_tests.sh [build-dir]        (default: build-gpu in the repository root)
#
# Environment: CUDNN_ROOT (cuDNN prefix with include/ and lib/; default: asked from python's
# nvidia.cudnn package if importable), CUDA_ARCHS (default "90-real;90-virtual": H100/H200 code
# plus PTX for newer GPUs), JOBS (parallel build jobs, default nproc).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${1:-$repo/build-gpu}"

if [ -z "${CUDNN_ROOT:-}" ] && command -v python >/dev/null 2>&1; then
  CUDNN_ROOT="$(python -c 'import nvidia.cudnn, os; print(os.path.dirname(nvidia.cudnn.__file__))' 2>/dev/null || true)"
fi
if [ -n "${CUDNN_ROOT:-}" ]; then
  echo "run_gpu_tests: cuDNN from $CUDNN_ROOT"
  # the wheel ships libcudnn.so.9 only; the loader needs its dir at run time as well
  export LD_LIBRARY_PATH="$CUDNN_ROOT/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi

nvidia-smi -L || echo "run_gpu_tests: nvidia-smi failed; the GPU test will skip (exit 77) if no device is visible"

cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release -DDM_WITH_PIPELINE=OFF -DDM_WITH_CUDA=ON \
      "-DCMAKE_CUDA_ARCHITECTURES=${CUDA_ARCHS:-90-real;90-virtual}" \
      ${CUDNN_ROOT:+"-DCUDNN_ROOT=$CUDNN_ROOT"}
# all targets: `ctest -L gpu` also runs the golden model tests on CUDA (test_*_golden_cuda_*)
cmake --build "$build" -j "${JOBS:-$(nproc)}"
# --no-tests=error: an empty selection must not look like success; on a GPU machine a skip
# (exit 77: no device visible, or a build without CUDA) is an error too
cd "$build"
ctest -L gpu --output-on-failure --no-tests=error 2>&1 | tee ctest-gpu.log
rc=${PIPESTATUS[0]}
if grep -q "(Skipped)" ctest-gpu.log; then
  echo "run_gpu_tests: GPU tests were SKIPPED (see the SKIPPED line above) - nothing was verified" >&2
  exit 1
fi
exit "$rc"

#!/usr/bin/env bash
# The whole GPU verification in one device run (docs/gpu.md, issue 10 section 3):
#   env       nvidia-smi, nvcc, PyTorch, where cuDNN / cuBLASLt come from
#   build     engine + CUDA backend + GPU tests + benchmarks on the device (DM_WITH_PIPELINE=OFF,
#             Release, sm_90 + PTX), OpenBLAS/cJSON from the kit's sysroot
#   selftest  dm_selftest --backend cuda in float32, float16, bfloat16
#   ctest     ctest -L gpu (CUDA ops + every golden model test on CUDA in the three precisions);
#             a skipped test is a failure here
#   bench     benchmarks/gpu/run_gpu_bench.sh: ours vs official PyTorch (eager, autocast,
#             torch.compile), frames/s, peak device memory, agreement
#   pipeline  only if the kit carries the pipeline bundle: depthmatte selftest and one real
#             `depthmatte run` under mpirun with runtime.backend cuda vs cpu, compared
# Every step runs under `timeout` inside one overall deadline and writes one summary line even
# when it fails; logs and the summary go to $OUT (summary.txt, results.txt, logs.tar.gz).
#
#   tests/gpu/device_check.sh [--dry-run] [--kit DIR] [--out DIR] [--deadline S] [--steps LIST]
#
# --dry-run  runs every step that needs no GPU, on any machine (CTest test devcheck_dry_run):
#            kit creation and size check (prepare_device_check.sh, fast xz), the device build
#            with the same flags, argument handling of the GPU programs, `ctest -L gpu` (every
#            test must skip with 77 here), the benchmarks at tiny sizes on the CPU (PyTorch side
#            SKIPPED where torch is absent). Exit 0 only if each of those passed.
# --kit      the kit made by prepare_device_check.sh (default .devkit; --dry-run makes one)
# --out      results folder (default $OUT, else build-device/out)
# --deadline overall seconds for all steps (default 470: the device call's timeout_s is 540;
#            1100 for --dry-run)
# --steps    comma list of steps to run (default env,build,selftest,ctest,bench,pipeline)
# Exit: 0 all steps passed, 1 a step failed, 2 usage error.
set -uo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo" || exit 1
dry=0
kit=$repo/.devkit
out=${OUT:-}
deadline=""
steps=env,build,selftest,ctest,bench,pipeline
usage() {
  sed -n '16,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
while [ $# -gt 0 ]; do
  case $1 in
    --dry-run) dry=1; shift ;;
    --kit) [ $# -ge 2 ] || usage; kit=$(realpath -m "$2"); shift 2 ;;
    --out) [ $# -ge 2 ] || usage; out=$(realpath -m "$2"); shift 2 ;;
    --deadline) [ $# -ge 2 ] || usage; deadline=$2; shift 2 ;;
    --steps) [ $# -ge 2 ] || usage; steps=$2; shift 2 ;;
    -h|--help) usage ;;
    *) echo "device_check: unknown option $1" >&2; usage ;;
  esac
done
# the device call's 540 s minus margin; a dry run on a loaded 2-core machine needs longer
[ -n "$deadline" ] || deadline=$([ "$dry" = 1 ] && echo 1100 || echo 470)
[[ $deadline =~ ^[0-9]+$ ]] || { echo "device_check: --deadline needs seconds" >&2; exit 2; }
for s in ${steps//,/ }; do
  case $s in env|build|selftest|ctest|bench|pipeline) ;; *) echo "device_check: unknown step $s" >&2; exit 2 ;; esac
done
# build dirs: $DM_DEVCHECK_WORK (default: the repository; the CTest dry run uses its build dir)
work=${DM_DEVCHECK_WORK:-$repo}
bdir=$work/build-device
[ "$dry" = 1 ] && bdir=$work/build-device-dry
[ -n "$out" ] || out=$bdir/out
mkdir -p "$out"
logs=$(mktemp -d "${TMPDIR:-/tmp}/dm_devcheck.XXXXXX")
summary=$out/summary.txt
: >"$summary"
: >"$out/results.txt"
t_start=$(date +%s)
failed=0
mode=$([ "$dry" = 1 ] && echo dry-run || echo device)
echo "# depthmatte device_check ($mode) $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD 2>/dev/null || echo ?) host $(hostname)" | tee -a "$summary"
printf '%-22s %-8s %6s  %s\n' step status secs note | tee -a "$summary"

finish() {
  tar -C "$logs" -czf "$out/logs.tar.gz" . 2>/dev/null
  rm -rf "$logs"
}
trap finish EXIT

want_step() { [[ ",$steps," == *",$1,"* ]]; }
left() { echo $((deadline - ($(date +%s) - t_start))); }
# record NAME STATUS SECS NOTE
record() {
  printf '%-22s %-8s %6s  %s\n' "$1" "$2" "$3" "$4" | tee -a "$summary"
  case $2 in PASS | SKIPPED) ;; *) failed=1 ;; esac
}
# run_step NAME BUDGET_S CMD...: runs CMD with a timeout of min(BUDGET, time left), log in
# $logs/NAME.log; the last line of the log that starts with "NOTE " becomes the summary note.
run_step() {
  local name=$1 budget=$2
  shift 2
  local t=$(left)
  [ "$t" -gt "$budget" ] && t=$budget
  if [ "$t" -le 5 ]; then
    record "$name" TIMEOUT 0 "no time left of the ${deadline}s deadline"
    return 1
  fi
  local t0=$(date +%s) rc
  # a step is a shell function: run it in a child bash (exported below) so timeout can kill it
  timeout -k 10 "$t" bash -c '"$@"' step "$@" >"$logs/$name.log" 2>&1
  rc=$?
  local dt=$(($(date +%s) - t0))
  local note
  note=$(grep '^NOTE ' "$logs/$name.log" | tail -1 | cut -c6-)
  case $rc in
    0) record "$name" PASS "$dt" "$note" ;;
    77) record "$name" SKIPPED "$dt" "${note:-skipped}" ;;
    124 | 137) record "$name" TIMEOUT "$dt" "killed after ${t}s; ${note}" ;;
    *) record "$name" FAIL "$dt" "exit $rc; ${note:-see $name.log}" ;;
  esac
  grep -h '^RESULT \|^COMPARE ' "$logs/$name.log" >>"$out/results.txt"
  return $rc
}

# --- environment ---------------------------------------------------------------------------
py=python3
site=$($py -c 'import sys, sysconfig; print(sysconfig.get_paths()["purelib"])' 2>/dev/null)
cudnn_root=""
if [ "$dry" = 0 ]; then
  cudnn_root=$($py -c 'import nvidia.cudnn as m; print(list(m.__path__)[0])' 2>/dev/null)
  [ -f "$cudnn_root/include/cudnn.h" ] || cudnn_root=""
  # cuBLASLt / cudart / cuDNN at run time: the toolkit's, then the PyTorch wheels'
  extra=$(find "$site/nvidia" -name 'lib*.so*' \( -name 'libcudnn*' -o -name 'libcublas*' -o -name 'libcudart*' \) 2>/dev/null |
    xargs -r -n1 dirname | sort -u | tr '\n' ':')
  export LD_LIBRARY_PATH="/usr/local/cuda/lib64:${extra}${LD_LIBRARY_PATH:-}"
fi
# a toolkit without cuBLAS (nvcc only): link the PyTorch wheel's libcublasLt.so.13 instead
blaslt=""
if [ "$dry" = 0 ] && ! ls /usr/local/cuda/lib64/libcublasLt.so* >/dev/null 2>&1; then
  blaslt=$(find "$site/nvidia" -name 'libcublasLt.so*' 2>/dev/null | sort | head -1)
fi
export PATH="/usr/local/cuda/bin:$PATH"

step_env() {
  echo "date $(date -u +%FT%TZ)"
  uname -a
  nproc
  if [ "$dry" = 1 ]; then
    echo "dry run: no GPU needed"
  else
    nvidia-smi || return 1
    nvidia-smi --query-gpu=name,uuid,driver_version,memory.total,clocks.sm,clocks.mem --format=csv
  fi
  command -v nvcc && nvcc --version | tail -2
  cmake --version | head -1
  $py -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())' 2>&1
  echo "cudnn_root=${cudnn_root:-<system>}"
  echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
  echo "kit: $(cat "$kit/manifest.txt" 2>/dev/null | tr '\n' ';')"
  echo "NOTE $( [ "$dry" = 1 ] && echo "no GPU (dry run)" || nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1), $(nvcc --version 2>/dev/null | sed -n 's/.*release \([0-9.]*\).*/nvcc \1/p')"
}

# --- kit -------------------------------------------------------------------------------------
step_kit() {
  if [ "$dry" = 1 ]; then
    # same script as for a real call, fast compression (size figure slightly above xz -9)
    bash "$repo/tests/gpu/prepare_device_check.sh" --kit "$kit" --build "$work/build-devcheck" \
      --xz -0 ${DM_DRY_NO_PIPELINE:+--no-pipeline} || return 1
  fi
  [ -f "$kit/engine.tar.xz" ] || { echo "NOTE no kit at $kit: run tests/gpu/prepare_device_check.sh first"; return 1; }
  rm -rf "$bdir/kit" && mkdir -p "$bdir/kit"
  tar -C "$bdir/kit" -xJf "$kit/engine.tar.xz" || return 1
  if [ -f "$kit/pipeline.tar.xz" ]; then tar -C "$bdir/kit" -xJf "$kit/pipeline.tar.xz" || return 1; fi
  echo "NOTE $(sed -n 's/^total_bytes \([0-9]*\).*/\1/p' "$kit/manifest.txt" | awk '{printf "%.1f MiB carried", $1/1048576}')$( [ -f "$kit/pipeline.tar.xz" ] && echo ", pipeline bundle included" || echo ", pipeline bundle left out (manifest)")"
}

# --- build -----------------------------------------------------------------------------------
step_build() {
  local cuda=ON
  if ! command -v nvcc >/dev/null; then
    [ "$dry" = 1 ] || { echo "NOTE nvcc not found"; return 1; }
    cuda=OFF
    echo "dry run without nvcc: DM_WITH_CUDA=OFF (the GPU tests then skip as 'no CUDA backend')"
  fi
  export PKG_CONFIG_PATH="$bdir/kit/engine/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
  export LD_LIBRARY_PATH="$bdir/kit/engine/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export PATH="$bdir/kit/engine/bin:$PATH" # the kit's pkg-config, also where the device has one
  pkg-config --modversion openblas libcjson || return 1
  local gen=Ninja
  command -v ninja >/dev/null || gen="Unix Makefiles"
  cmake -S "$repo" -B "$bdir" -G "$gen" -DCMAKE_BUILD_TYPE=Release -DDM_WITH_PIPELINE=OFF \
    -DDM_WITH_CUDA=$cuda "-DCMAKE_CUDA_ARCHITECTURES=90-real;90-virtual" \
    ${cudnn_root:+"-DCUDNN_ROOT=$cudnn_root"} ${blaslt:+"-DCUDA_cublasLt_LIBRARY=$blaslt"} || return 1
  local jobs=$(nproc)
  [ -n "$blaslt" ] && echo "cuBLASLt: $blaslt"
  [ "$dry" = 1 ] && jobs=2
  cmake --build "$bdir" -j "$jobs" || return 1
  local extra=()
  for t in bench_gpu dm_selftest; do
    cmake --build "$bdir" --target help 2>/dev/null | grep -qE "(^| )$t(:| |$)" && extra+=("$t")
  done
  [ ${#extra[@]} -gt 0 ] && { cmake --build "$bdir" -j "$jobs" --target "${extra[@]}" || return 1; }
  echo "NOTE built: engine$( [ $cuda = ON ] && echo ' + CUDA') + tests ${extra[*]}"
}

# --- selftest ---------------------------------------------------------------------------------
step_selftest() {
  local p=$1 bin=$bdir/dm_selftest
  if [ ! -x "$bin" ]; then
    echo "NOTE dm_selftest not in this tree yet (target missing)"
    [ "$dry" = 1 ] && return 77
    return 1
  fi
  if [ "$dry" = 1 ]; then
    # argument handling only: a bad precision is a usage error (2), and without a GPU
    # --backend cuda must answer "no device" (2), not crash or pass
    "$bin" --backend cuda --precision nonsense; [ $? = 2 ] || { echo "NOTE bad --precision not rejected with 2"; return 1; }
    "$bin" --backend cuda --precision "$p"; local rc=$?
    [ $rc = 2 ] || { echo "NOTE --backend cuda without a GPU gave $rc, want 2"; return 1; }
    echo "NOTE usage errors and 'no device' answered with exit 2"
    return 0
  fi
  "$bin" --backend cuda --precision "$p" >"$logs/selftest_$p.table" 2>&1
  local rc=$?
  cat "$logs/selftest_$p.table"
  echo "NOTE exit $rc, $(grep -c PASS "$logs/selftest_$p.table") PASS / $(grep -c FAIL "$logs/selftest_$p.table") FAIL lines"
  return $rc
}

# --- ctest -L gpu -------------------------------------------------------------------------------
step_ctest() {
  local j=4
  [ "$dry" = 1 ] && j=2
  ctest --test-dir "$bdir" -L gpu -j "$j" --no-tests=error --output-on-failure
}
step_ctest_wrap() {
  step_ctest >"$logs/ctest.inner" 2>&1
  local rc=$?
  cat "$logs/ctest.inner"
  local total pass skip
  total=$(grep -cE '^ *[0-9]+/[0-9]+ Test +#' "$logs/ctest.inner")
  pass=$(grep -cE '^ *[0-9]+/[0-9]+ Test +#.* Passed' "$logs/ctest.inner")
  skip=$(grep -cE '^ *[0-9]+/[0-9]+ Test +#.*Skipped' "$logs/ctest.inner")
  if [ "$dry" = 1 ]; then
    echo "NOTE $total gpu tests, $skip skipped (no GPU), $pass passed"
    # without a GPU every gpu test must skip loudly (77) and none may fail
    [ "$rc" = 0 ] && [ "$total" -gt 0 ] && [ "$skip" = "$total" ] && return 0
    return 1
  fi
  echo "NOTE $pass/$total passed, $skip skipped"
  [ "$rc" = 0 ] && [ "$skip" = 0 ] && [ "$total" -gt 0 ]
}

# --- benchmarks ------------------------------------------------------------------------------
step_bench() {
  local args=(--build "$bdir" --official "$kit/official" --shared "$kit/shared")
  [ "$dry" = 1 ] && args+=(--tiny)
  bash "$repo/benchmarks/gpu/run_gpu_bench.sh" "${args[@]}"
}

# --- pipeline: depthmatte selftest + mpirun run cuda vs cpu ------------------------------------
step_pipeline() {
  local p=$bdir/kit/pipeline
  if [ ! -x "$p/bin/depthmatte" ]; then
    echo "NOTE SKIPPED: $(sed -n 's/^pipeline_left_out //p' "$kit/manifest.txt" | head -1)"
    echo "$(sed -n 's/^pipeline_left_out //p' "$kit/manifest.txt")"
    return 77
  fi
  export LD_LIBRARY_PATH="$p/lib:$bdir/kit/engine/lib:${LD_LIBRARY_PATH:-}"
  export OPAL_PREFIX=$p/ompi OPAL_PKGLIBDIR=$p/ompi/lib OPAL_PKGDATADIR=$p/ompi/share/openmpi
  export OPAL_SYSCONFDIR=$p/ompi/etc OMPI_MCA_mca_base_component_path=$p/ompi/lib
  export PMIX_MCA_mca_base_component_path=$p/ompi/pmix OMPI_MCA_btl=self,vader OMPI_MCA_pml=ob1
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  mkdir -p "$p/ompi/etc"
  local mpirun=("$p/bin/mpirun" --oversubscribe -np 1)
  "${mpirun[@]}" "$p/bin/depthmatte" --version || { echo "NOTE mpirun/depthmatte from the bundle do not start"; return 1; }
  if [ "$dry" = 1 ]; then
    echo "NOTE bundle starts (mpirun -np 1 depthmatte --version)"
    return 0
  fi
  "$p/bin/depthmatte" selftest --backend cuda --precision float32 || { echo "NOTE depthmatte selftest failed"; return 1; }
  local w=$bdir/e2e
  mkdir -p "$w"
  "$bdir/tests/dm_make_recipe_weights" "$kit/shared/golden/da2_vits/recipe.json" "$w/da2.safetensors" || return 1
  for be in cpu cuda; do
    cat >"$w/job_$be.yaml" <<EOF
inputs:
  - $kit/shared/videos/05_default_juggle.mp4
max_frames: 48
output:
  path: $w/out_$be.h5
  overwrite: true
matting:
  weights: $kit/shared/models/rvm_mobilenetv3.safetensors
depth:
  model: da2_vits
  weights: $w/da2.safetensors
runtime:
  backend: $be
EOF
    local t0=$(date +%s)
    "${mpirun[@]}" "$p/bin/depthmatte" run "$w/job_$be.yaml" || { echo "NOTE depthmatte run ($be) failed"; return 1; }
    echo "RESULT e2e impl=ours backend=$be frames=48 seconds=$(($(date +%s) - t0))"
  done
  $py "$repo/tests/gpu/compare_h5.py" "$w/out_cpu.h5" "$w/out_cuda.h5"
}

# --- run ---------------------------------------------------------------------------------------
export -f step_env step_kit step_build step_selftest step_ctest step_ctest_wrap step_bench step_pipeline
export dry kit bdir logs py repo work cudnn_root site out blaslt
want_step env && run_step env 30 step_env
run_step kit $([ "$dry" = 1 ] && echo 400 || echo 60) step_kit || { echo "device_check: no kit, stopping" >&2; exit 1; }
if want_step build; then
  run_step build $([ "$dry" = 1 ] && echo 900 || echo 150) step_build || echo "device_check: build failed; later steps will fail" >&2
fi
if want_step selftest; then
  for p in float32 float16 bfloat16; do run_step "selftest_$p" 40 step_selftest "$p"; done
fi
want_step ctest && run_step ctest_gpu $([ "$dry" = 1 ] && echo 300 || echo 130) step_ctest_wrap
want_step bench && run_step bench 300 step_bench
want_step pipeline && run_step pipeline 90 step_pipeline
echo "# total $(($(date +%s) - t_start)) s of the ${deadline} s deadline; logs: $out/logs.tar.gz" | tee -a "$summary"
cat "$out/results.txt"
echo
cat "$summary"
exit $failed

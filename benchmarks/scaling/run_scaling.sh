#!/bin/bash
# Strong and weak scaling of `depthmatte run` (RVM matting, CPU backend): pipeline overhead.
#
# Usage: benchmarks/scaling/run_scaling.sh [--np-list "1 2 4"] [--exe build-pipe/depthmatte]
#            [--out-dir /tmp/dm_scaling] [--strong-frames N] [--weak-frames-per-rank N]
#            [--threads T] [--warmup-frames W] [--launcher "mpirun ..."]
#            [--strong-inputs "A.mp4 B.mp4"] [--strong-split auto|always|never]
#            [--modes "strong weak"]
#
# Strong scaling: fixed total work = juggle_256x144_ffv1.mkv + dog_320x180_ffv1.mkv, first
#   --strong-frames frames of each (0 = all), split_videos=auto, run on N ranks
#   (--strong-inputs / --strong-split replace the clips / the policy, e.g. one long 720p clip
#   split evenly: --strong-inputs .../05_default_juggle.mp4 --strong-split always).
# Weak scaling: work proportional to ranks = juggle_256x144_ffv1.mkv alone, max_frames =
#   (--weak-frames-per-rank) * N, split_videos=always (duplicate inputs are an error, so the
#   same clip cannot be listed once per rank). Split pieces decode --warmup-frames context
#   frames (default 0 here, so the work really is proportional to N; the job default is 32).
# Per run: wall time of mpirun, and the output HDF5 /ranks table (docs/output.md); then
#   scaling.py prints a table and writes $OUT_DIR/scaling.csv (ranks, wall, frames, per-stage
#   seconds summed and max over ranks, overhead fractions, strong efficiency T1/(N*TN), weak
#   efficiency T1/TN).
#
# CAVEAT: on a 2-core machine ranks > 2 oversubscribe the cores (each rank runs
#   runtime.threads=1 OpenMP thread plus a decode thread), so efficiency beyond 2 ranks measures
#   oversubscription, not the pipeline. Report `uptime` with the figures.
# Across nodes: the same script with --launcher "mpirun -hostfile HOSTS --bind-to none"
#   (the output dir must be on a shared file system), or inside a Slurm allocation
#   --launcher "srun --mpi=pmix"; for single production runs use jobs/cpu.sbatch
#   (sbatch --ntasks=N --cpus-per-task=T jobs/cpu.sbatch JOB.yaml).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
shared=${DM_SHARED:-$root/../shared}
[ -d "$shared" ] || shared=/work/shared
np_list="1 2 4"; exe=$root/build-pipe/depthmatte; out_dir=${TMPDIR:-/tmp}/dm_scaling
strong_frames=0; weak_fpr=16; threads=1; warmup=0
launcher="mpirun --oversubscribe --bind-to none"
strong_inputs=""; strong_split=auto; modes="strong weak"
while [ $# -gt 0 ]; do
    case $1 in
        --np-list) np_list=$2; shift 2;;
        --exe) exe=$2; shift 2;;
        --out-dir) out_dir=$2; shift 2;;
        --strong-frames) strong_frames=$2; shift 2;;
        --weak-frames-per-rank) weak_fpr=$2; shift 2;;
        --threads) threads=$2; shift 2;;
        --warmup-frames) warmup=$2; shift 2;;
        --launcher) launcher=$2; shift 2;;
        --strong-inputs) strong_inputs=$2; shift 2;;
        --strong-split) strong_split=$2; shift 2;;
        --modes) modes=$2; shift 2;;
        *) echo "run_scaling.sh: unknown option $1" >&2; exit 1;;
    esac
done
exe=$(cd "$(dirname "$exe")" && pwd)/$(basename "$exe")
mkdir -p "$out_dir"
ncores=$(OMP_NUM_THREADS= nproc --all)
# a Python with h5py (pyenv shims may lack it): $PYTHON, else python3, else /usr/bin/python3
py=${PYTHON:-python3}
"$py" -c "import h5py" 2>/dev/null || py=/usr/bin/python3
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=$threads
juggle=$shared/videos/lossless/juggle_256x144_ffv1.mkv
dog=$shared/videos/lossless/dog_320x180_ffv1.mkv
weights=$shared/models/rvm_mobilenetv3.safetensors
runs=$out_dir/runs.txt; : > "$runs"
echo "# $(date -u +%FT%TZ) $(hostname) cores=$ncores load: $(uptime | sed 's/.*load average: //')" | tee "$out_dir/load.txt"

run_one() {  # mode n max_frames split inputs...
    local mode=$1 n=$2 mf=$3 split=$4; shift 4
    local job=$out_dir/${mode}_np$n.yaml h5=$out_dir/${mode}_np$n.h5 log=$out_dir/${mode}_np$n.log
    {
        echo "inputs:"; for v in "$@"; do echo "  - $v"; done
        echo "max_frames: $mf"
        echo "output: {path: $h5, overwrite: true}"
        echo "matting: {weights: $weights, warmup_frames: $warmup}"
        echo "runtime: {backend: cpu, threads: $threads}"
        echo "plan: {split_videos: $split, min_chunk_frames: 1}"
    } > "$job"
    rm -f "$h5"
    local t0 t1
    t0=$(date +%s.%N)
    # shellcheck disable=SC2086
    $launcher -np "$n" "$exe" run "$job" > "$log" 2>&1 || { echo "FAILED: $mode np=$n (see $log)" >&2; tail -5 "$log" >&2; exit 1; }
    t1=$(date +%s.%N)
    local wall; wall=$("$py" -c "print(f'{$t1-$t0:.3f}')")
    echo "$mode $n $wall $h5" >> "$runs"
    echo "$mode np=$n wall=${wall}s"
}
[ -n "$strong_inputs" ] || strong_inputs="$juggle $dog"
for mode in $modes; do
    for n in $np_list; do
        # shellcheck disable=SC2086
        if [ "$mode" = strong ]; then run_one strong "$n" "$strong_frames" "$strong_split" $strong_inputs
        else run_one weak "$n" $((weak_fpr * n)) always "$juggle"; fi
    done
done
echo "# after: load: $(uptime | sed 's/.*load average: //')" | tee -a "$out_dir/load.txt"
"$py" "$here/scaling.py" "$runs" --csv "$out_dir/scaling.csv"

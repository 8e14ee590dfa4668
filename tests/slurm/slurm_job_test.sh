#!/usr/bin/env bash
# End-to-end Slurm test: starts a private, real Slurm (munged + slurmctld + slurmd) on this
# machine, submits one of the jobs/*.sbatch scripts with sbatch on a tiny job (the two lossless
# clips of ../shared/videos/lossless, RVM with the real weights, CPU backend, first FRAMES
# frames), waits (bounded), then checks the job's state and exit code and the HDF5 file (every
# done marker 1, frame counts, complete flag). Follows ../shared/notes/slurm-localhost.md, but keeps every
# file of the daemons (munge key and socket, slurm.conf, state, logs) in one temp folder and
# uses free ports, so it touches nothing in /etc and cannot meet a site's Slurm. The daemons
# are stopped and the folder removed on every exit path (trap), including failures.
# Usage: slurm_job_test.sh MODE DEPTHMATTE_EXE SOURCE_DIR SHARED_DIR
#   MODE cpu:     jobs/cpu.sbatch, 2 tasks, one clip per rank
#   MODE requeue: jobs/requeue.sbatch; after the first write round the batch shell gets SIGTERM
#                 (scancel --batch --signal=TERM, what --signal=B:TERM@120 sends before the time
#                 limit); the script stops the ranks and requeues; the second run --resume's
#                 the same file: Restarts=1, exit 0, every row done
#   MODE array:   jobs/array.sbatch --array=0-1 over a 2-line manifest, one file per part
# Exit: 0 pass, 1 fail, 77 skipped (Slurm/munge not installed, not root, or data missing).
set -uo pipefail
mode=$1
exe=$(readlink -f "$2")
src=$3
shared=$4
frames=${DM_SLURM_FRAMES:-24}
job_timeout=${DM_SLURM_JOB_TIMEOUT:-420} # seconds; below the CTest TIMEOUT so cleanup runs

skip() { echo "SKIP: $*"; exit 77; }
for t in munged slurmctld slurmd sbatch squeue scontrol sinfo; do
    command -v "$t" > /dev/null || skip "$t not installed (Debian: apt-get install slurm-wlm munge)"
done
[ "$(id -u)" = 0 ] || skip "needs root (slurmd runs jobs as their user; SlurmUser=root here)"
clips=("$shared/videos/lossless/juggle_256x144_ffv1.mkv" "$shared/videos/lossless/dog_320x180_ffv1.mkv")
weights=$shared/models/rvm_mobilenetv3.safetensors
for f in "${clips[@]}" "$weights"; do [ -f "$f" ] || skip "missing $f"; done
[ -x "$exe" ] || { echo "FAIL: depthmatte binary $exe not found"; exit 1; }

tmp=$(mktemp -d /tmp/dm_slurm.XXXXXX)
chmod 700 "$tmp"
jobid=""
cleanup() {
    [ -n "$jobid" ] && SLURM_CONF=$tmp/slurm.conf scancel "$jobid" 2> /dev/null
    for p in "$tmp/d.pid" "$tmp/ctld.pid" "$tmp/munge/munged.pid"; do
        [ -f "$p" ] && kill "$(cat "$p")" 2> /dev/null
    done
    sleep 1
    for p in "$tmp/d.pid" "$tmp/ctld.pid" "$tmp/munge/munged.pid"; do
        [ -f "$p" ] && kill -9 "$(cat "$p")" 2> /dev/null
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
fail() {
    echo "FAIL: $*"
    for l in "$tmp/job.out" "$tmp/log/ctld.log" "$tmp/log/d.log" "$tmp/munge/munged.log"; do
        [ -f "$l" ] && { echo "--- tail of $l"; tail -30 "$l"; }
    done
    exit 1
}

# munge with a private key and socket
mkdir -p "$tmp/munge" "$tmp/log" "$tmp/state" "$tmp/spool"
chmod 700 "$tmp/munge"
dd if=/dev/urandom of="$tmp/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$tmp/munge/munge.key"
sock=$tmp/munge/munge.sock
munged --force --key-file="$tmp/munge/munge.key" --socket="$sock" \
    --pid-file="$tmp/munge/munged.pid" --log-file="$tmp/munge/munged.log" \
    --seed-file="$tmp/munge/munged.seed" || fail "munged did not start"
munge -S "$sock" -n | unmunge -S "$sock" | grep -q "STATUS: *Success" || fail "munge round trip"

# two free TCP ports for slurmctld and slurmd
read -r pctl pd < <(python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
host=$(hostname)
cpus=$(nproc)
cat > "$tmp/slurm.conf" << CONF
ClusterName=dmtest
SlurmctldHost=$host
SlurmctldPort=$pctl
SlurmdPort=$pd
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$sock
CredType=cred/munge
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool
SlurmctldLogFile=$tmp/log/ctld.log
SlurmdLogFile=$tmp/log/d.log
SlurmctldPidFile=$tmp/ctld.pid
SlurmdPidFile=$tmp/d.pid
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
MinJobAge=600
NodeName=$host CPUs=$cpus RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
export SLURM_CONF=$tmp/slurm.conf
slurmctld -f "$SLURM_CONF" || fail "slurmctld did not start"
slurmd -f "$SLURM_CONF" || fail "slurmd did not start"
for _ in $(seq 30); do
    sinfo -h -o %T 2> /dev/null | grep -q idle && break
    sleep 1
done
sinfo -h -o %T | grep -q idle || fail "node not idle after 30 s: $(sinfo 2>&1)"

# the job: two clips, one per rank (plan.split_videos auto keeps videos whole)
cat > "$tmp/job.yaml" << YAML
inputs:
  - ${clips[0]}
  - ${clips[1]}
output:
  path: $tmp/out/result.h5
matting:
  weights: $weights
YAML
mkdir -p "$tmp/out"
# mpirun inside the allocation when srun cannot start Open MPI ranks (no PMIx plugin)
launcher=${DM_SLURM_LAUNCHER:-}
if [ -z "$launcher" ]; then
    if srun --mpi=list 2>&1 | grep -q pmix; then launcher="srun --mpi=pmix"; else launcher=mpirun; fi
fi
# This node has no GPUs: drop the scripts' GPU requests (the only change made to them).
for s in cpu requeue array; do
    sed '/^#SBATCH --gpus-per-task/d' "$src/jobs/$s.sbatch" > "$tmp/$s.sbatch"
done
submit() { # submit SCRIPT SBATCH-ARGS... -- SCRIPT-ARGS...: prints the job id
    local script=$1
    shift
    (cd "$tmp" && DM_EXE=$exe DM_LAUNCHER=$launcher DM_BACKEND=cpu OMPI_ALLOW_RUN_AS_ROOT=1 \
        OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 sbatch --parsable --time=10 --output="$tmp/job.out" \
        "$@" "$tmp/$script.sbatch" "${script_args[@]}")
}
wait_gone() { # wait_gone JOBID: until squeue no longer lists it (pending, running or requeued)
    local start=$SECONDS
    while [ -n "$(squeue -h -j "$1" 2> /dev/null)" ]; do
        [ $((SECONDS - start)) -gt "$job_timeout" ] && fail "job $1 still queued/running after $job_timeout s"
        sleep 2
    done
}
job_field() { scontrol show job "$1" | grep -o "\\b$2=[^ ]*" | head -1 | cut -d= -f2; }
expect_completed() { # expect_completed JOBID
    local state code
    state=$(job_field "$1" JobState)
    code=$(job_field "$1" ExitCode)
    echo "slurm test: job $1: state $state, exit code $code, restarts $(job_field "$1" Restarts)"
    echo "--- job output"
    cat "$tmp/job.out"
    [ "$state" = COMPLETED ] && [ "$code" = 0:0 ] || fail "job $1 did not complete cleanly"
}
check_h5() { # check_h5 FILE GROUPS FRAMES: GROUPS groups, FRAMES rows each, all done, complete
    local h5=$1 groups=$2 rows=$3 rc
    [ -f "$h5" ] || fail "no output file $h5"
    python3 - "$h5" "$groups" "$rows" << 'PY'
import sys
try:
    import h5py
except ImportError:
    print("h5py missing: checking with h5dump only"); sys.exit(3)
path, groups, frames = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ok = True
with h5py.File(path, "r") as f:
    vids = sorted(f["videos"])
    ok &= len(vids) == groups
    for v in vids:
        g = f["videos"][v]
        done, alpha = g["done"][()], g["alpha"]
        good = len(done) == frames and int(done.min()) == 1 and alpha.shape[0] == frames
        print(f"{path}: /videos/{v}: {len(done)} rows, done min {done.min()}, alpha {alpha.shape}",
              "ok" if good else "BAD")
        ok &= bool(good)
    print("complete =", f.attrs.get("complete"))
    ok &= int(f.attrs.get("complete", 0)) == 1
sys.exit(0 if ok else 1)
PY
    rc=$?
    if [ $rc = 3 ]; then # no h5py: h5dump the done markers, the row count and the complete flag
        local v dims ones n
        n=$(h5dump -n "$h5" | grep -c 'group */videos/[0-9]*$')
        [ "$n" = "$groups" ] || fail "$h5: $n groups under /videos, expected $groups"
        for v in $(h5dump -n "$h5" | grep -o '/videos/[0-9]*$'); do
            dims=$(h5dump -H -d "$v/done" "$h5" | grep -o 'DATASPACE *SIMPLE { ( [0-9]* )' | grep -o '[0-9][0-9]*')
            ones=$(h5dump -d "$v/done" -y -w 0 "$h5" | sed -n '/DATA {/,/}/p' | tr -s ' ,' '\n\n' | grep -c '^1$')
            [ "$dims" = "$rows" ] && [ "$ones" = "$rows" ] ||
                fail "$h5: $v/done: $dims rows, $ones of them 1, expected $rows"
            echo "$h5: $v/done: $dims rows, all 1 (h5dump)"
        done
        h5dump -a /complete "$h5" | sed -n '/DATA {/,/}/p' | grep -q '(0): 1' || fail "$h5: complete != 1"
        echo "$h5: complete = 1 (h5dump)"
    elif [ $rc != 0 ]; then
        fail "output file check of $h5"
    fi
}

case $mode in
cpu) # jobs/cpu.sbatch: 2 tasks, one clip each
    echo "slurm test: jobs/cpu.sbatch, 2 tasks, $frames frames per clip, launcher '$launcher'"
    script_args=("$tmp/job.yaml" --max-frames "$frames")
    jobid=$(submit cpu --ntasks=2 --cpus-per-task=1) || fail "sbatch refused the job"
    wait_gone "$jobid"
    expect_completed "$jobid"
    check_h5 "$tmp/out/result.h5" 2 "$frames"
    ;;
requeue) # jobs/requeue.sbatch: SIGTERM to the batch shell mid-run, requeue, --resume finishes
    # Long enough to be signalled mid-run: 64 frames per clip in blocks of 4 (16 rounds, ~5 s
    # on 2 cores); with 24 frames in 2 rounds the job once ended (2.3 s) between two polls.
    frames=64
    echo "slurm test: jobs/requeue.sbatch, SIGTERM after the first write round, launcher '$launcher'"
    script_args=("$tmp/job.yaml" --max-frames "$frames" --set output.chunk_frames=4)
    jobid=$(submit requeue --ntasks=2 --cpus-per-task=1) || fail "sbatch refused the job"
    start=$SECONDS
    # the first progress line comes after the first write round (rows marked done)
    until grep -q 'depthmatte: [1-9][0-9]*/[0-9]* frames' "$tmp/job.out" 2> /dev/null; do
        [ $((SECONDS - start)) -gt "$job_timeout" ] && fail "no progress after $job_timeout s"
        [ -z "$(squeue -h -j "$jobid")" ] && fail "job ended before the signal could be sent"
        sleep 0.2
    done
    scancel --batch --signal=TERM "$jobid" || fail "scancel --signal=TERM"
    echo "slurm test: SIGTERM sent to the batch shell of job $jobid"
    # Slurm makes a requeued job eligible only ~2 min later (its begin time is pushed back);
    # to keep the test short, release it as soon as it is pending again.
    start=$SECONDS
    until [ "$(job_field "$jobid" JobState)" = PENDING ]; do
        [ $((SECONDS - start)) -gt 120 ] && fail "job $jobid not pending again 120 s after SIGTERM"
        sleep 1
    done
    # ...but not before the killed step is fully cleaned up: a step launched while the old
    # slurmstepd still removes its PMIx directory fails to start (seen in a CI-like run).
    start=$SECONDS
    while pgrep -f "slurmstepd: \[$jobid" > /dev/null; do
        [ $((SECONDS - start)) -gt 60 ] && fail "slurmstepd of job $jobid still alive 60 s after requeue"
        sleep 1
    done
    sleep 3
    scontrol update JobId="$jobid" StartTime=now || fail "scontrol update StartTime=now"
    wait_gone "$jobid"
    expect_completed "$jobid"
    [ "$(job_field "$jobid" Restarts)" = 1 ] || fail "expected exactly 1 restart"
    grep -q 'requeueing job' "$tmp/job.out" || fail "the first run did not requeue"
    grep -q 'run 2 (restart 1' "$tmp/job.out" || fail "no second run in the log"
    check_h5 "$tmp/out/result.h5" 2 "$frames"
    ;;
array) # jobs/array.sbatch: 2 array tasks over a 2-line manifest (one relative path)
    frames=16
    mkdir -p "$tmp/clips"
    ln -s "${clips[1]}" "$tmp/clips/dog.mkv"
    printf '# two clips\n%s\n\nclips/dog.mkv\n' "${clips[0]}" > "$tmp/manifest.txt"
    echo "slurm test: jobs/array.sbatch --array=0-1, $frames frames, launcher '$launcher'"
    script_args=("$tmp/job.yaml" "$tmp/manifest.txt" "$tmp/parts" --max-frames "$frames")
    jobid=$(submit array --array=0-1 --ntasks=1 --cpus-per-task=1 --output="$tmp/job_%a.out") ||
        fail "sbatch refused the job"
    wait_gone "$jobid"
    for k in 0 1; do
        state=$(job_field "${jobid}_$k" JobState)
        echo "slurm test: array task ${jobid}_$k: $state, exit $(job_field "${jobid}_$k" ExitCode)"
        [ "$state" = COMPLETED ] || { cat "$tmp/job_$k.out"; fail "array task $k: $state"; }
        check_h5 "$tmp/parts/part_$k.h5" 1 "$frames"
    done
    cat "$tmp"/job_*.out
    ;;
*) fail "unknown mode $mode" ;;
esac
echo "PASS"

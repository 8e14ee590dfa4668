#!/usr/bin/env bash
# End-to-end Slurm test: starts a private, real Slurm (munged + slurmctld + slurmd) on this
# machine, submits jobs/cpu.sbatch with sbatch on a tiny job (the two lossless clips of
# ../shared/videos/lossless, RVM with the real weights, 2 tasks, first FRAMES frames), waits
# (bounded), then checks the job's state and exit code and the HDF5 file (every done marker 1,
# frame counts, complete flag). Follows ../shared/notes/slurm-localhost.md, but keeps every
# file of the daemons (munge key and socket, slurm.conf, state, logs) in one temp folder and
# uses free ports, so it touches nothing in /etc and cannot meet a site's Slurm. The daemons
# are stopped and the folder removed on every exit path (trap), including failures.
# Usage: slurm_cpu_job.sh DEPTHMATTE_EXE SOURCE_DIR SHARED_DIR
# Exit: 0 pass, 1 fail, 77 skipped (Slurm/munge not installed, not root, or data missing).
set -uo pipefail
exe=$1
src=$2
shared=$3
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
echo "slurm test: sbatch jobs/cpu.sbatch, 2 tasks, $frames frames per clip, launcher '$launcher'"
jobid=$(cd "$tmp" && DM_EXE=$exe DM_LAUNCHER=$launcher OMPI_ALLOW_RUN_AS_ROOT=1 \
    OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 sbatch --parsable --ntasks=2 --cpus-per-task=1 \
    --time=10 --output="$tmp/job.out" "$src/jobs/cpu.sbatch" "$tmp/job.yaml" \
    --max-frames "$frames") || fail "sbatch refused the job"
echo "slurm test: job $jobid submitted"
start=$SECONDS
while [ -n "$(squeue -h -j "$jobid" 2> /dev/null)" ]; do
    [ $((SECONDS - start)) -gt "$job_timeout" ] && fail "job $jobid still queued/running after $job_timeout s"
    sleep 2
done
info=$(scontrol show job "$jobid")
state=$(grep -o 'JobState=[A-Z_]*' <<< "$info" | cut -d= -f2)
code=$(grep -o ' ExitCode=[0-9:]*' <<< "$info" | cut -d= -f2)
echo "slurm test: job $jobid: state $state, exit code $code, $((SECONDS - start)) s"
echo "--- job output"
cat "$tmp/job.out"
[ "$state" = COMPLETED ] && [ "$code" = 0:0 ] || fail "job did not complete cleanly"

# the output file: one group per clip, frames = min(frames, clip length), every row done
h5=$tmp/out/result.h5
[ -f "$h5" ] || fail "no output file $h5"
python3 - "$h5" "$frames" << 'PY'
import sys
try:
    import h5py
except ImportError:
    print("h5py missing: checking with h5dump only"); sys.exit(3)
path, frames = sys.argv[1], int(sys.argv[2])
ok = True
with h5py.File(path, "r") as f:
    vids = sorted(f["videos"])
    ok &= len(vids) == 2
    for v in vids:
        g = f["videos"][v]
        done, alpha = g["done"][()], g["alpha"]
        good = len(done) == frames and int(done.min()) == 1 and alpha.shape[0] == frames
        print(f"/videos/{v}: {len(done)} rows, done min {done.min()}, alpha {alpha.shape}",
              "ok" if good else "BAD")
        ok &= bool(good)
    print("complete =", f.attrs.get("complete"), "ranks =", f.attrs.get("ranks"))
    ok &= int(f.attrs.get("complete", 0)) == 1
sys.exit(0 if ok else 1)
PY
rc=$?
if [ $rc = 3 ]; then # no h5py: h5dump the done markers, the row count and the complete flag
    for v in 00000 00001; do
        dims=$(h5dump -H -d "/videos/$v/done" "$h5" | grep -o 'DATASPACE *SIMPLE { ( [0-9]* )' | grep -o '[0-9][0-9]*')
        ones=$(h5dump -d "/videos/$v/done" -y -w 0 "$h5" | sed -n '/DATA {/,/}/p' | tr -s ' ,' '\n\n' | grep -c '^1$')
        [ "$dims" = "$frames" ] && [ "$ones" = "$frames" ] ||
            fail "/videos/$v/done: $dims rows, $ones of them 1, expected $frames"
        echo "/videos/$v/done: $dims rows, all 1 (h5dump)"
    done
    h5dump -a /complete "$h5" | sed -n '/DATA {/,/}/p' | grep -q '(0): 1' || fail "attribute complete != 1"
    echo "complete = 1 (h5dump)"
elif [ $rc != 0 ]; then
    fail "output file check"
fi
echo "PASS"

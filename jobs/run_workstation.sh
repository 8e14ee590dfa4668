#!/bin/sh
# Runs a depthmatte job on this machine with N MPI ranks (one per GPU, or per few CPU cores).
# usage: jobs/run_workstation.sh JOB.yaml [N] [extra depthmatte run options...]
#   e.g. jobs/run_workstation.sh jobs/workstation_example.yaml 2 --keep-going
set -eu
job=${1:?usage: $0 JOB.yaml [N] [options...]}
n=${2:-2}
shift; [ $# -gt 0 ] && shift
here=$(cd "$(dirname "$0")/.." && pwd)
exe=${DEPTHMATTE:-$here/build/depthmatte}
# CPU ranks share the cores: give each rank an equal share of OpenMP threads.
cores=$(nproc)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(( cores / n > 0 ? cores / n : 1 ))}
mkdir -p "$here/out"
"$exe" plan "$job" --ranks "$n"
# --oversubscribe: allow more ranks than cores; --bind-to none: OpenMP threads may spread.
exec mpiexec --oversubscribe --bind-to none -np "$n" "$exe" run "$job" "$@"

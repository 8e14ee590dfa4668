#!/bin/sh
# Runs a depthmatte job with N MPI ranks, then exports its output file with the same ranks
# (docs/export.md): by default a preview, a transparent WebM and a contact sheet per video.
# usage: jobs/run_and_export.sh JOB.yaml OUTPUT.h5 EXPORT_DIR [N] [KINDS]
#   e.g. jobs/run_and_export.sh configs/quickstart.yaml out/quickstart.h5 out/export 2
#   then open out/export/00000/preview.mp4 (any player) or contact_sheet.png
set -eu
job=${1:?usage: $0 JOB.yaml OUTPUT.h5 EXPORT_DIR [N] [KINDS]}
h5=${2:?usage: $0 JOB.yaml OUTPUT.h5 EXPORT_DIR [N] [KINDS]}
dir=${3:?usage: $0 JOB.yaml OUTPUT.h5 EXPORT_DIR [N] [KINDS]}
n=${4:-2}
kinds=${5:-preview,alpha-webm,contact-sheet}
here=$(cd "$(dirname "$0")/.." && pwd)
exe=${DEPTHMATTE:-$here/build/depthmatte}
cores=$(nproc)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(( cores / n > 0 ? cores / n : 1 ))}
mkdir -p "$here/out"
mpiexec --oversubscribe --bind-to none -np "$n" "$exe" run "$job"
exec mpiexec --oversubscribe --bind-to none -np "$n" "$exe" export "$h5" --kind "$kinds" --out "$dir"

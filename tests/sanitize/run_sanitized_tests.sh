#!/usr/bin/env bash
# Runs the whole CTest suite of a DM_SANITIZE=ON build (ASan + UBSan) with the runtime options
# the project needs; .ci/run calls it after the main test command.
# Usage: tests/sanitize/run_sanitized_tests.sh BUILD_DIR [ctest args...]
#   ASAN: leaks are checked (suppressions: lsan.supp, third-party libraries only);
#         fast_unwind_on_malloc=0: Open MPI's libraries have no frame pointers, so the fast
#         unwinder stops inside them and the leak stacks name no library ("<unknown module>")
#         that a suppression could match; the slow unwinder gives full stacks;
#         detect_odr_violation=0 because Open MPI's plugins (mca_*.so) and libmpi define the same
#         globals, which ASan's ODR check reports as a violation at MPI_Init.
#   UBSAN: halt_on_error=1 so that a report fails the test (gcc's UBSan only prints and goes on
#          by default, which a passing test would hide).
#   Reports also go to files (log_path) in BUILD_DIR/sanitizer_reports: the e2e and slurm tests
#   run depthmatte under mpirun/sbatch, and some of them expect a non-zero exit (bad input, a
#   killed rank), which would hide a sanitizer's exit status; any report file fails this script.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$1
shift
reports=$(cd "$build" && pwd)/sanitizer_reports
rm -rf "$reports" && mkdir -p "$reports"
export ASAN_OPTIONS="detect_leaks=1:fast_unwind_on_malloc=0:detect_odr_violation=0:abort_on_error=0:strict_string_checks=1:check_initialization_order=1:log_path=$reports/asan${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export LSAN_OPTIONS="suppressions=$here/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$reports/ubsan${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
rc=0
ctest --test-dir "$build" --output-on-failure "$@" || rc=$?
if [ -n "$(ls -A "$reports")" ]; then
    echo "=== sanitizer reports in $reports ==="
    for f in "$reports"/*; do echo "--- $f"; head -60 "$f"; done
    [ $rc -ne 0 ] || rc=1
fi
exit $rc

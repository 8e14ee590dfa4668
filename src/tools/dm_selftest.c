/* dm_selftest: `depthmatte selftest` as an engine-only executable (no MPI, HDF5, FFmpeg), for
 * GPU machines that have none of those (built also with -DDM_WITH_PIPELINE=OFF). Same options,
 * output and exit status (include/depthmatte/selftest.h). */
#include "depthmatte/selftest.h"

int main(int argc, char **argv) {
    return dm_selftest_command(argc, argv, "dm_selftest");
}

/* depthmatte selftest [--backend cpu|cuda|emulated] [--precision P] [--device N] [-o OP,...]
 *                     [--models|--ops-only] [--json]
 * Every op and network of a backend against the CPU reference; the command itself lives in
 * the engine (src/models/selftest_cmd.c) so that dm_selftest shares it. Exit 0 all pass,
 * 1 any failure, 2 usage error or no backend. */
#include "cli/commands.h"
#include "depthmatte/selftest.h"

int cmd_selftest(int argc, char **argv) {
    return dm_selftest_command(argc, argv, "depthmatte selftest");
}

/* Subcommands of the depthmatte CLI. Each takes the arguments after the subcommand name
 * (argv[0] is the subcommand) and returns the process exit status. main.c dispatches. */
#ifndef DM_CLI_COMMANDS_H
#define DM_CLI_COMMANDS_H

int cmd_run(int argc, char **argv);   /* depthmatte run JOB.yaml [--resume] [--set k=v]... */
int cmd_plan(int argc, char **argv);  /* depthmatte plan JOB.yaml [--ranks N] */
int cmd_probe(int argc, char **argv); /* depthmatte probe VIDEO... */
int cmd_infer(int argc, char **argv); /* depthmatte infer --model M --weights W --image I --out O */
int cmd_selftest(int argc, char **argv); /* depthmatte selftest [--backend B] [--precision P] ... */
int cmd_export(int argc, char **argv); /* depthmatte export FILE.h5 --kind K --out DIR [...] */
int cmd_points(int argc, char **argv); /* depthmatte points FILE.h5 --detections D | --cloud DIR */

#endif

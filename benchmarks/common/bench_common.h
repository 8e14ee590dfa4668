/* depthmatte benchmarks — small shared helpers (timing, peak RSS, raw frames, args).
 *
 * Benchmarks are programs, never CTest tests: they print figures as one "RESULT ..." line
 * (key=value pairs) that the driver scripts (run_*_cpu.sh) parse next to PyTorch's line.
 */
#ifndef DM_BENCH_COMMON_H
#define DM_BENCH_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* Monotonic wall clock in seconds (CLOCK_MONOTONIC). */
double bench_now(void);

/* Median of n values (sorts a copy; n >= 1). */
double bench_median(const double *v, int n);

/* Minimum of n values (n >= 1). */
double bench_min(const double *v, int n);

/* Peak resident set size of this process in MiB (getrusage ru_maxrss, KiB on Linux). */
double bench_maxrss_mb(void);

/* Number of online CPUs (sysconf), at least 1. */
int bench_nproc(void);

/* Reads a whole file of raw rgb24 frames, (K, H, W, 3) uint8, K = size / (h*w*3).
 * Returns a malloc'd buffer (caller frees) and sets *k; NULL (message on stderr) if the
 * file is missing, empty or not a multiple of the frame size. */
uint8_t *bench_read_frames(const char *path, int h, int w, int *k);

/* Fills (h, w, 3) uint8 with a deterministic moving pattern for frame t: used when no
 * frame file is given (timing only; the driver always passes real frames). */
void bench_synth_frame(uint8_t *rgb, int h, int w, int t);

/* Returns the value after "--name" in argv, or def if absent. */
const char *bench_arg(int argc, char **argv, const char *name, const char *def);

/* Returns 1 if the flag "--name" is present. */
int bench_flag(int argc, char **argv, const char *name);

#endif

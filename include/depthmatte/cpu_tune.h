/* depthmatte — CPU runtime tuning done once at program start.
 *
 * OpenBLAS 0.3.21 (Debian 12) chooses its GEMM kernels from the cpuid family/model. In virtual
 * machines that hide the model ("Intel(R) Xeon(R) Processor") it falls back to the generic
 * "Prescott" SSE3 kernels even on AVX-512 hardware, several times slower. OpenBLAS reads its
 * override OPENBLAS_CORETYPE only when the library is loaded, i.e. before main(), so the only
 * way to apply it from inside the program is to re-execute the program once with it set.
 */
#ifndef DEPTHMATTE_CPU_TUNE_H
#define DEPTHMATTE_CPU_TUNE_H

/* If OpenBLAS runs its generic Prescott kernels although the CPU supports AVX-512 (F, BW, DQ,
 * VL: OpenBLAS "SkylakeX") or AVX2 + FMA ("Haswell"), sets OPENBLAS_CORETYPE accordingly and
 * re-executes /proc/self/exe with the same argv. Also sets OMP_WAIT_POLICY=PASSIVE when it is
 * unset (and re-executes for it: libgomp reads it at load time), because spinning OpenMP
 * threads starve OpenBLAS's pthreads (RVM 720p on 2 threads: 690 -> 240 ms/frame). Call first
 * in main(), before MPI_Init and before any thread is started. Keeps an OPENBLAS_CORETYPE or
 * OMP_WAIT_POLICY the user set; does nothing when DM_NO_BLAS_REEXEC is set or after one
 * re-execution (DM_BLAS_REEXEC marks it). Returns only when no re-execution happened (also if
 * execv failed: the program then runs as before). */
void dm_cpu_tune_blas(int argc, char **argv);

/* The OpenBLAS kernel set in use ("SkylakeX", "Prescott", ...), for logs and benchmarks. */
const char *dm_cpu_blas_corename(void);

#endif

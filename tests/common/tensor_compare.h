/* The one tensor-compare helper for all tests: max abs error, max rel error, NMSE, the golden
 * tensor's std, and the first mismatches. */
#ifndef DM_TESTS_TENSOR_COMPARE_H
#define DM_TESTS_TENSOR_COMPARE_H

#include <stdint.h>
#include <stdio.h>

typedef struct tc_result {
    double max_abs;  /* max |got - want| */
    double max_rel;  /* max |got - want| / max(|want|, 1e-6) */
    double mean_abs; /* mean |got - want| */
    double nmse;     /* sum (got-want)^2 / sum want^2 */
    double std;      /* standard deviation of want */
    int64_t worst;   /* index of max_abs */
    int64_t nonfinite_mismatch; /* with match_nonfinite: elements whose NaN / sign of inf
                                 * differ (or got non-finite where want is finite) */
} tc_result;

/* Options of tc_compare_opts. Zero-initialised = tc_compare's behaviour. */
typedef struct tc_opts {
    /* 0 (default): every non-finite `got` fails the comparison.
     * 1: non-finite values must agree element by element, as ggml's test-backend-ops requires:
     *    want NaN <-> got NaN, want +inf <-> got +inf, want -inf <-> got -inf; such elements
     *    are then excluded from the error statistics, and every finite pair is compared with
     *    `tol` as usual. For ops whose contract says what happens to NaN/Inf (activation,
     *    binary, matting_compose's "NaN stays NaN"). */
    int match_nonfinite;
    int quiet; /* 1: print nothing (for tests of this helper); failures are still counted */
} tc_opts;

/* Compares n floats; prints one line "name: max_abs .. (tol ..) std .. nmse .. PASS/FAIL" and,
 * on failure, the first few indices over tolerance. Passes when max_abs <= tol. Returns 1 on
 * pass, 0 on fail. */
int tc_compare(const char *name, const float *got, const float *want, int64_t n, double tol,
               tc_result *out);

/* tc_compare with options (opts may be NULL: same as tc_compare). */
int tc_compare_opts(const char *name, const float *got, const float *want, int64_t n, double tol,
                    const tc_opts *opts, tc_result *out);

/* Standard deviation of n floats (non-finite values included: the result is then NaN). */
double tc_std(const float *x, int64_t n);

/* Test-harness helpers: CHECK prints file:line and counts a failure; tests return
 * tc_failures() != 0 from main. */
extern int tc_failure_count;
#define CHECK(cond)                                                                            \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);           \
            tc_failure_count++;                                                                \
        }                                                                                      \
    } while (0)
#define CHECK_OK(expr)                                                                         \
    do {                                                                                       \
        int st_ = (int)(expr);                                                                 \
        if (st_ != 0) {                                                                        \
            fprintf(stderr, "%s:%d: %s returned %d: %s\n", __FILE__, __LINE__, #expr, st_,      \
                    dm_error_message());                                                       \
            tc_failure_count++;                                                                \
        }                                                                                      \
    } while (0)

/* Path of the shared data folder (../shared beside the repo, or $DM_SHARED). */
const char *tc_shared_dir(void);

/* Builds "<shared>/<rel>" into a static buffer (one at a time). */
const char *tc_shared_path(const char *rel);

/* Recipe weights of ../shared/<rel> (a recipe.json; the VDA recipe gets the golden
 * pe_buffers) written to $TMPDIR (or /tmp) as dm_test_<tag>_<pid>.safetensors; the path goes
 * to path[size]. Returns 1 when written, 0 when the recipe is absent (the caller skips);
 * a failed write is counted as a test failure. */
int tc_recipe_file(const char *rel, const char *tag, char *path, size_t size);

/* Prints a loud SKIP line and returns the CTest skip code 77. */
int tc_skip(const char *why);

#endif

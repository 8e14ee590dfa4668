#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tensor_compare.h"

int tc_failure_count = 0;

double tc_std(const float *x, int64_t n) {
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < n; i++) s += x[i];
    double mean = n ? s / n : 0;
    for (int64_t i = 0; i < n; i++) s2 += (x[i] - mean) * (x[i] - mean);
    return n ? sqrt(s2 / n) : 0;
}

int tc_compare(const char *name, const float *got, const float *want, int64_t n, double tol,
               tc_result *out) {
    tc_result r = {0};
    double se = 0, sw = 0, sa = 0;
    int nonfinite = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(got[i])) nonfinite++;
        double d = fabs((double)got[i] - want[i]);
        double rel = d / fmax(fabs(want[i]), 1e-6);
        if (d > r.max_abs || !isfinite(d)) {
            r.max_abs = isfinite(d) ? d : INFINITY;
            r.worst = i;
        }
        if (rel > r.max_rel) r.max_rel = rel;
        se += d * d;
        sw += (double)want[i] * want[i];
        sa += d;
    }
    r.nmse = sw > 0 ? se / sw : se;
    r.mean_abs = n ? sa / n : 0;
    r.std = tc_std(want, n);
    int pass = r.max_abs <= tol && !nonfinite;
    printf("%-28s n=%-8lld max_abs %.3e (tol %.3e, %.2e*std) mean_abs %.3e max_rel %.2e "
           "nmse %.2e std %.4g %s\n",
           name, (long long)n, r.max_abs, tol, r.std > 0 ? r.max_abs / r.std : 0, r.mean_abs,
           r.max_rel, r.nmse, r.std, pass ? "PASS" : "FAIL");
    if (!pass) {
        int shown = 0;
        for (int64_t i = 0; i < n && shown < 5; i++) {
            double d = fabs((double)got[i] - want[i]);
            if (d > tol || !isfinite(got[i])) {
                printf("    [%lld] got %.7g want %.7g\n", (long long)i, got[i], want[i]);
                shown++;
            }
        }
        if (nonfinite) printf("    %d non-finite values\n", nonfinite);
        tc_failure_count++;
    }
    if (out) *out = r;
    return pass;
}

const char *tc_shared_dir(void) {
    const char *env = getenv("DM_SHARED");
    if (env && *env) return env;
#ifdef DM_SOURCE_DIR
    return DM_SOURCE_DIR "/../shared";
#else
    return "../shared";
#endif
}

const char *tc_shared_path(const char *rel) {
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s", tc_shared_dir(), rel);
    return buf;
}

int tc_skip(const char *why) {
    printf("\n*** SKIPPED: %s ***\n\n", why);
    fflush(stdout);
    return 77;
}

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "depthmatte/recipe.h"
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
    return tc_compare_opts(name, got, want, n, tol, NULL, out);
}

/* 1 when got and want are the same non-finite value class (NaN, +inf, -inf). */
static int same_nonfinite(float got, float want) {
    if (isnan(want)) return isnan(got);
    return isinf(got) && (got > 0) == (want > 0);
}

int tc_compare_opts(const char *name, const float *got, const float *want, int64_t n, double tol,
                    const tc_opts *opts, tc_result *out) {
    const int match = opts && opts->match_nonfinite, quiet = opts && opts->quiet;
    tc_result r = {0};
    double se = 0, sw = 0, sa = 0, ws = 0, ws2 = 0;
    int64_t nonfinite = 0, nfin = 0;
    for (int64_t i = 0; i < n; i++) {
        if (match && (!isfinite(want[i]) || !isfinite(got[i]))) {
            if (isfinite(want[i]) || !same_nonfinite(got[i], want[i])) {
                r.nonfinite_mismatch++;
                if (r.max_abs < INFINITY) r.worst = i;
                r.max_abs = INFINITY;
            }
            continue; /* agreeing non-finite pairs carry no error */
        }
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
        ws += want[i];
        ws2 += (double)want[i] * want[i];
        nfin++;
    }
    r.nmse = sw > 0 ? se / sw : se;
    r.mean_abs = nfin ? sa / nfin : 0;
    if (match) {
        double mean = nfin ? ws / nfin : 0;
        r.std = nfin ? sqrt(fmax(ws2 / nfin - mean * mean, 0.0)) : 0;
    } else {
        r.std = tc_std(want, n);
    }
    int pass = r.max_abs <= tol && !nonfinite && !r.nonfinite_mismatch;
    if (!quiet) {
        printf("%-28s n=%-8lld max_abs %.3e (tol %.3e, %.2e*std) mean_abs %.3e max_rel %.2e "
               "nmse %.2e std %.4g %s\n",
               name, (long long)n, r.max_abs, tol, r.std > 0 ? r.max_abs / r.std : 0,
               r.mean_abs, r.max_rel, r.nmse, r.std, pass ? "PASS" : "FAIL");
        if (match && n > nfin)
            printf("    %lld non-finite reference values, %lld disagree (NaN / sign of inf)\n",
                   (long long)(n - nfin), (long long)r.nonfinite_mismatch);
    }
    if (!pass) {
        int shown = 0;
        for (int64_t i = 0; i < n && shown < 5 && !quiet; i++) {
            int bad;
            if (match && (!isfinite(want[i]) || !isfinite(got[i])))
                bad = isfinite(want[i]) || !same_nonfinite(got[i], want[i]);
            else
                bad = fabs((double)got[i] - want[i]) > tol || !isfinite(got[i]);
            if (bad) {
                printf("    [%lld] got %.7g want %.7g\n", (long long)i, got[i], want[i]);
                shown++;
            }
        }
        if (nonfinite && !quiet) printf("    %lld non-finite values\n", (long long)nonfinite);
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

int tc_recipe_file(const char *rel, const char *tag, char *path, size_t size) {
    dm_recipe r;
    if (dm_recipe_load(&r, tc_shared_path(rel))) return 0;
    snprintf(path, size, "%s/dm_test_%s_%d.safetensors",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", tag, (int)getpid());
    if (strstr(rel, "vda_vits/")) { /* the VDA recipe's fixed buffers come from the golden */
        char pe[4096]; /* tc_shared_path's buffer is reused */
        snprintf(pe, sizeof pe, "%s", tc_shared_path("golden/vda_vits/pe_buffers.safetensors"));
        CHECK_OK(dm_recipe_set_pe_file(&r, pe));
    }
    CHECK_OK(dm_recipe_write_safetensors(&r, path));
    dm_recipe_free(&r);
    return 1;
}

int tc_skip(const char *why) {
    printf("\n*** SKIPPED: %s ***\n\n", why);
    fflush(stdout);
    return 77;
}

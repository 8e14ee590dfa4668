/* CPU unit test of the shared tensor-compare helper (tests/common/tensor_compare.c): the
 * default mode (every non-finite `got` fails, as before) and tc_opts.match_nonfinite (NaN and the
 * sign of inf must agree element by element; finite pairs within tol). */
#include <math.h>
#include <string.h>

#include "tensor_compare.h"

/* Runs one comparison quietly and undoes its effect on the failure count; returns pass. */
static int cmp(const float *got, const float *want, int n, double tol, int match, tc_result *r) {
    const int before = tc_failure_count;
    const tc_opts o = {.match_nonfinite = match, .quiet = 1};
    int pass = tc_compare_opts("t", got, want, n, tol, &o, r);
    CHECK(tc_failure_count == before + !pass); /* a failure is counted, a pass is not */
    tc_failure_count = before;
    return pass;
}

int main(void) {
    tc_result r;
    const float w[4] = {1.f, -2.f, 3.f, 0.5f};

    /* finite: pass within tol, fail just outside, max_abs / worst / mean reported */
    float g[4] = {1.f, -2.f, 3.0005f, 0.5f};
    CHECK(cmp(g, w, 4, 1e-3, 0, &r));
    CHECK(fabs(r.max_abs - 5e-4) < 1e-6 && r.worst == 2);
    CHECK(!cmp(g, w, 4, 1e-4, 0, &r));
    CHECK(cmp(g, w, 4, 1e-3, 1, &r)); /* the option does not change finite data */

    /* default mode: any non-finite got fails, even where want is the same NaN */
    const float wn[4] = {1.f, NAN, INFINITY, -INFINITY};
    float gn[4] = {1.f, NAN, INFINITY, -INFINITY};
    CHECK(!cmp(gn, wn, 4, 1e-3, 0, &r));
    CHECK(isinf(r.max_abs));

    /* match mode: the same non-finite classes agree and carry no error */
    CHECK(cmp(gn, wn, 4, 1e-3, 1, &r));
    CHECK(r.max_abs == 0 && r.nonfinite_mismatch == 0);
    /* ... and the finite part is still compared */
    gn[0] = 1.1f;
    CHECK(!cmp(gn, wn, 4, 1e-3, 1, &r));
    CHECK(r.nonfinite_mismatch == 0 && fabs(r.max_abs - 0.1) < 1e-6);
    gn[0] = 1.f;

    /* sign of inf must agree */
    gn[2] = -INFINITY;
    CHECK(!cmp(gn, wn, 4, 1e-3, 1, &r));
    CHECK(r.nonfinite_mismatch == 1 && r.worst == 2);
    gn[2] = INFINITY;
    /* NaN vs inf, inf vs NaN */
    gn[1] = INFINITY;
    CHECK(!cmp(gn, wn, 4, 1e-3, 1, &r) && r.nonfinite_mismatch == 1);
    gn[1] = NAN;
    gn[3] = NAN;
    CHECK(!cmp(gn, wn, 4, 1e-3, 1, &r) && r.nonfinite_mismatch == 1);
    gn[3] = -INFINITY;
    /* a finite got where want is NaN ("NaN stays NaN" broken), and the reverse */
    gn[1] = 0.f;
    CHECK(!cmp(gn, wn, 4, 1e-3, 1, &r) && r.nonfinite_mismatch == 1);
    gn[1] = NAN;
    float gf[4] = {NAN, -2.f, 3.f, 0.5f};
    CHECK(!cmp(gf, w, 4, 1e-3, 1, &r) && r.nonfinite_mismatch == 1 && r.worst == 0);
    CHECK(!cmp(gf, w, 4, 1e-3, 0, &r));

    /* the statistics skip the agreeing non-finite pairs: std of the finite want values */
    const float ws[4] = {1.f, NAN, 3.f, NAN};
    const float gs[4] = {1.f, NAN, 3.f, NAN};
    CHECK(cmp(gs, ws, 4, 0.0, 1, &r));
    CHECK(fabs(r.std - 1.0) < 1e-12 && r.mean_abs == 0);

    /* tc_compare (no options) is the default mode, printing its line */
    const int before = tc_failure_count;
    CHECK(tc_compare("tc_compare default pass", g, w, 4, 1e-3, NULL));
    CHECK(!tc_compare("tc_compare default fail (expected)", gn, wn, 4, 1e-3, NULL));
    CHECK(tc_failure_count == before + 1);
    tc_failure_count = before;

    printf("%s: %d failure(s)\n", tc_failure_count ? "FAIL" : "PASS", tc_failure_count);
    return tc_failure_count != 0;
}

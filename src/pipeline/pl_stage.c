/* Helpers of the stage interface (pl_stage.h): frame sets, runtime.verify. */
#include "pl_stage.h"

dm_status pl_frame_set_add(pl_frame_set *s, int64_t a, int64_t b) {
    if (b <= a) return DM_OK;
    if (s->n > 0 && a < s->a[s->n - 1])
        return dm_error_set(DM_ERR_ARG, "frame set: range [%lld, %lld) before [%lld, %lld)",
                            (long long)a, (long long)b, (long long)s->a[s->n - 1],
                            (long long)s->b[s->n - 1]);
    if (s->n > 0 && a <= s->b[s->n - 1]) {
        if (b > s->b[s->n - 1]) s->b[s->n - 1] = b;
        return DM_OK;
    }
    if (s->n == PL_FRAME_SET_MAX)
        return dm_error_set(DM_ERR_ARG, "frame set: more than %d ranges", PL_FRAME_SET_MAX);
    s->a[s->n] = a, s->b[s->n] = b;
    s->n++;
    return DM_OK;
}

int pl_frame_set_has(const pl_frame_set *s, int64_t f) {
    for (int i = 0; i < s->n; i++)
        if (f >= s->a[i] && f < s->b[i]) return 1;
    return 0;
}

/* Is this frame checked against the CPU reference? (runtime.verify; device backends only) */
int pl_verify_wanted(const pl_stage_env *env, int done_already) {
    const dm_verify_mode m = env->c->job.runtime.verify;
    if (env->be->device == DM_DEVICE_CPU || m == DM_VERIFY_OFF) return 0;
    return m == DM_VERIFY_ALL || !done_already;
}

/* pl_verify_compare, counted in this rank's statistics. */
dm_status pl_stage_verify(const pl_stage_env *env, dm_tol_model model, const char *stage,
                          const char *path, int64_t frame, const float *got, const float *ref,
                          size_t n) {
    env->stats->verified_frames++;
    return pl_verify_compare(env->be, model, stage, path, frame, got, ref, n);
}

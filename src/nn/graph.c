/* Graphs (include/depthmatte/graph.h): the backend-neutral wrapper of the op table's graph_*
 * entries and the models' runner (eager warm-up -> capture -> replay, eager on failure). */
#include <stdlib.h>

#include "depthmatte/graph.h"

struct dm_graph {
    dm_backend *be;
    void *impl; /* the backend's graph (cudaGraphExec_t holder, emulated recording) */
};

int dm_backend_supports_graphs(const dm_backend *be) {
    return be && be->ops->graph_begin && be->ops->graph_end && be->ops->graph_launch &&
           be->ops->graph_free;
}

dm_status dm_graph_begin(dm_backend *be) {
    if (!dm_backend_supports_graphs(be))
        return dm_error_set(DM_ERR_UNSUPPORTED, "backend %s: no graph capture",
                            be ? be->ops->name : "(null)");
    return be->ops->graph_begin(be);
}

dm_status dm_graph_end(dm_backend *be, dm_graph **out) {
    *out = NULL;
    if (!dm_backend_supports_graphs(be))
        return dm_error_set(DM_ERR_UNSUPPORTED, "backend %s: no graph capture",
                            be ? be->ops->name : "(null)");
    void *impl = NULL;
    dm_status st = be->ops->graph_end(be, &impl);
    if (st) return st;
    dm_graph *g = calloc(1, sizeof *g);
    if (!g) {
        be->ops->graph_free(be, impl);
        return dm_error_set(DM_ERR_NOMEM, "dm_graph_end: out of memory");
    }
    g->be = be;
    g->impl = impl;
    *out = g;
    return DM_OK;
}

dm_status dm_graph_launch(dm_backend *be, dm_graph *g) {
    if (!g) return dm_error_set(DM_ERR_ARG, "dm_graph_launch: NULL graph");
    if (g->be != be) return dm_error_set(DM_ERR_ARG, "dm_graph_launch: graph of another backend");
    return be->ops->graph_launch(be, g->impl);
}

void dm_graph_free(dm_graph *g) {
    if (!g) return;
    g->be->ops->graph_free(g->be, g->impl);
    free(g);
}

void dm_graph_runner_init(dm_graph_runner *r, dm_backend *be, int warmup) {
    const char *env = getenv("DM_CUDA_GRAPHS"); /* docs/gpu.md: 0 turns graphs off */
    *r = (dm_graph_runner){0};
    r->be = be;
    r->enabled = dm_backend_supports_graphs(be) && !(env && env[0] == '0');
    r->warmup = warmup < 1 ? 1 : warmup;
    r->eager_left = r->warmup;
}

void dm_graph_runner_reset(dm_graph_runner *r) {
    dm_graph_free(r->graph);
    r->graph = NULL;
    r->eager_left = r->warmup;
}

void dm_graph_runner_free(dm_graph_runner *r) {
    if (!r) return;
    dm_graph_free(r->graph);
    r->graph = NULL;
}

dm_status dm_graph_runner_run(dm_graph_runner *r, uint64_t key, dm_status (*body)(void *arg),
                              void *arg) {
    if (!r->enabled) {
        r->eager++;
        return body(arg);
    }
    /* a new variant starts over, also before its first capture: it warms up eagerly first
     * (a capture of a body that never ran could meet a first-use allocation and fail) */
    if (key != r->key && (r->graph || r->eager_left < r->warmup)) dm_graph_runner_reset(r);
    r->key = key;
    if (r->graph) {
        r->replays++;
        return dm_graph_launch(r->be, r->graph);
    }
    if (r->eager_left > 0) {
        r->eager_left--;
        r->eager++;
        return body(arg);
    }
    dm_status st = dm_graph_begin(r->be);
    if (!st) {
        st = body(arg); /* recorded, not run */
        const dm_status end = dm_graph_end(r->be, &r->graph);
        if (!st) st = end;
    }
    if (st || !r->graph) { /* the ops were not run: run them eagerly, and stay eager */
        dm_graph_free(r->graph);
        r->graph = NULL;
        r->enabled = 0;
        r->failed++;
        r->eager++;
        return body(arg);
    }
    r->captures++;
    return dm_graph_launch(r->be, r->graph);
}

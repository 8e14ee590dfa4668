/* depthmatte — graphs: capture a fixed-shape forward once, replay it per frame.
 *
 * A backend that supports graphs (dm_backend_supports_graphs: CUDA, where a graph is a CUDA
 * Graph of the backend's stream, and the emulated device backend, which records the ops) can
 * record the ops a forward calls and replay them with one launch. A graph bakes in what the
 * ops were given at capture: tensor pointers, shapes and every parameter. So a forward is
 * replayable only when each frame calls the same ops on the same buffers with the same
 * parameters, new inputs arriving in the same input buffers (uploaded before the launch) and
 * outputs read from the same output buffers after it. Inside a capture the backend refuses
 * what a CUDA stream capture cannot hold: allocations, host<->device copies, synchronisation.
 * Source: CUDA Programming Guide, "CUDA Graphs" (stream capture).
 *
 * Models use the runner (dm_graph_runner): eager first frame(s) (on CUDA they create scratch
 * buffers, cuDNN algorithms and cuBLASLt plans, which must exist before a capture), then one
 * capture, then replays; a failed capture falls back to eager for good, with the same results.
 * DM_CUDA_GRAPHS=0 in the environment turns graphs off (every backend). */
#ifndef DEPTHMATTE_GRAPH_H
#define DEPTHMATTE_GRAPH_H

#include <stdint.h>

#include "depthmatte/backend.h"

/* A captured sequence of one backend's ops. */
typedef struct dm_graph dm_graph;

/* Starts capturing the ops called on `be`: until dm_graph_end they are recorded, not run.
 * Errors: DM_ERR_UNSUPPORTED (no graph support), DM_ERR_ARG (already capturing), backend
 * errors (DM_ERR_BACKEND). */
dm_status dm_graph_begin(dm_backend *be);

/* Ends the capture and makes it a graph in *out (free with dm_graph_free). Always leaves
 * capture mode; when an op was refused or failed during the capture *out is NULL and the
 * result is DM_ERR_BACKEND (DM_ERR_ARG when no capture runs). */
dm_status dm_graph_end(dm_backend *be, dm_graph **out);

/* Replays g on its backend (asynchronously on CUDA, ordered with the backend's other work).
 * Errors: DM_ERR_ARG (NULL graph, another backend, called during a capture), the errors of
 * the replayed ops. */
dm_status dm_graph_launch(dm_backend *be, dm_graph *g);

/* Releases a graph (NULL is ignored). */
void dm_graph_free(dm_graph *g);

/* A model's per-context graph runner: `warmup` eager calls, then one capture, then replays,
 * for as long as the key stays the same. */
typedef struct dm_graph_runner {
    dm_backend *be;
    int enabled;     /* backend supports graphs and DM_CUDA_GRAPHS is not 0; 0 after a failed
                        capture (eager from then on) */
    int warmup;      /* eager calls before the capture (>= 1) */
    int eager_left;  /* eager calls left before the capture of `key` */
    uint64_t key;    /* what the captured graph was made for (model-defined: flags, sizes) */
    dm_graph *graph; /* NULL until captured */
    int64_t eager, captures, replays, failed; /* calls so far, for tests and statistics */
} dm_graph_runner;

/* Prepares a runner for backend be (no allocation). warmup < 1 is taken as 1. */
void dm_graph_runner_init(dm_graph_runner *r, dm_backend *be, int warmup);

/* Runs body(arg) (a fixed sequence of ops on be: no allocation, no host<->device copy, no
 * synchronisation inside) eagerly, or captures it, or replays its graph. `key` names the
 * variant of the body (e.g. "foreground wanted" flags): a different key drops the graph and
 * starts over with warm-up calls. When the capture fails the body runs eagerly instead and
 * the runner stays eager (r->failed counts it). Returns the body's or the launch's status. */
dm_status dm_graph_runner_run(dm_graph_runner *r, uint64_t key, dm_status (*body)(void *arg),
                              void *arg);

/* Drops the captured graph (the next calls warm up and capture again). */
void dm_graph_runner_reset(dm_graph_runner *r);

/* Releases the runner's graph (safe on a zeroed struct). */
void dm_graph_runner_free(dm_graph_runner *r);

#endif

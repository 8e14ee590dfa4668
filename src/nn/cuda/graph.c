/* CUDA Graph capture of the backend's stream (depthmatte/backend_cuda.h: dm_cuda_graph_*): a
 * fixed-shape forward (ViT-S at batch 1 is launch-bound: ~15 launches per block) is recorded
 * once with cudaStreamBeginCapture and replayed per frame with one cudaGraphLaunch. While
 * capturing, cuda_scratch refuses to grow and cuda_upload refuses host copies (ctx->capturing),
 * so a forward that was not run eagerly first fails cleanly instead of capturing a cudaMalloc;
 * any such refusal spoils the capture (dm_cuda_graph_end fails: the graph would lack the op).
 * These are the CUDA backend's op-table graph entries (depthmatte/graph.h). Not yet run on a
 * GPU (tests/gpu/test_cuda_ops -o graph; the emulated backend's recording runs the same case). */
#include <stdlib.h>

#include "cuda_common.h"
#include "depthmatte/backend_cuda.h"

struct dm_cuda_graph {
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    int device;
};

static cuda_ctx *graph_ctx(dm_backend *be, const char *fn) {
    if (!be || be->device != DM_DEVICE_CUDA || !be->impl) {
        dm_error_set(DM_ERR_ARG, "%s: not a CUDA backend", fn);
        return NULL;
    }
    return cuda_ctx_of(be);
}

dm_status dm_cuda_graph_begin(dm_backend *be) {
    cuda_ctx *ctx = graph_ctx(be, "dm_cuda_graph_begin");
    if (!ctx) return DM_ERR_ARG;
    if (ctx->capturing) return dm_error_set(DM_ERR_ARG, "dm_cuda_graph_begin: already capturing");
    CUDA_CHECK(cudaSetDevice(ctx->device));
    CUDA_CHECK(cudaStreamBeginCapture(ctx->stream, cudaStreamCaptureModeThreadLocal));
    ctx->capturing = 1;
    ctx->capture_failed = 0;
    return DM_OK;
}

dm_status dm_cuda_graph_end(dm_backend *be, dm_cuda_graph **out) {
    *out = NULL;
    cuda_ctx *ctx = graph_ctx(be, "dm_cuda_graph_end");
    if (!ctx) return DM_ERR_ARG;
    if (!ctx->capturing) return dm_error_set(DM_ERR_ARG, "dm_cuda_graph_end: no capture running");
    cudaGraph_t graph = NULL;
    cudaError_t e = cudaStreamEndCapture(ctx->stream, &graph);
    ctx->capturing = 0;
    if (e == cudaSuccess && ctx->capture_failed) { /* an op was refused: the graph lacks it */
        if (graph) cudaGraphDestroy(graph);
        return dm_error_set(DM_ERR_BACKEND, "dm_cuda_graph_end: capture failed: an op inside "
                            "the capture was refused (allocation, host copy, synchronisation)");
    }
    if (e != cudaSuccess || !graph) {
        (void)cudaGetLastError();
        if (graph) cudaGraphDestroy(graph);
        return dm_error_set(DM_ERR_BACKEND,
                            "dm_cuda_graph_end: capture failed: %s (an op inside "
                            "the capture synchronised, allocated or failed)",
                            cudaGetErrorString(e));
    }
    dm_cuda_graph *g = calloc(1, sizeof *g);
    if (!g) {
        cudaGraphDestroy(graph);
        return dm_error_set(DM_ERR_NOMEM, "dm_cuda_graph_end: out of memory");
    }
    g->graph = graph;
    g->device = ctx->device;
    e = cudaGraphInstantiate(&g->exec, graph, 0);
    if (e != cudaSuccess) {
        cudaGraphDestroy(graph);
        free(g);
        return dm_error_set(DM_ERR_BACKEND, "dm_cuda_graph_end: cudaGraphInstantiate: %s",
                            cudaGetErrorString(e));
    }
    ctx->graphs_made = 1; /* from now on outgrown scratch slots are retired, not freed */
    *out = g;
    return DM_OK;
}

dm_status dm_cuda_graph_launch(dm_backend *be, dm_cuda_graph *g) {
    cuda_ctx *ctx = graph_ctx(be, "dm_cuda_graph_launch");
    if (!ctx) return DM_ERR_ARG;
    if (!g) return dm_error_set(DM_ERR_ARG, "dm_cuda_graph_launch: NULL graph");
    if (g->device != ctx->device)
        return dm_error_set(DM_ERR_ARG, "dm_cuda_graph_launch: graph of device %d on device %d",
                            g->device, ctx->device);
    CUDA_CHECK(cudaSetDevice(ctx->device));
    CUDA_CHECK(cudaGraphLaunch(g->exec, ctx->stream));
    return DM_OK;
}

void dm_cuda_graph_free(dm_cuda_graph *g) {
    if (!g) return;
    if (g->exec) cudaGraphExecDestroy(g->exec);
    if (g->graph) cudaGraphDestroy(g->graph);
    free(g);
}

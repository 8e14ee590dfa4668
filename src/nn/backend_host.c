/* A backend's host side (depthmatte/backend_host.h): thread binding, pinned output buffers. */
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "depthmatte/backend_cuda.h"
#include "depthmatte/backend_host.h"

dm_status dm_backend_bind_thread(const dm_backend *be) {
#ifdef _OPENMP
    if (be->threads > 0) omp_set_num_threads(be->threads);
#endif
    return be->device == DM_DEVICE_CUDA ? dm_cuda_backend_bind_thread(be) : DM_OK;
}

void *dm_backend_host_alloc(const dm_backend *be, size_t bytes) {
    if (be && be->device == DM_DEVICE_CUDA) {
        void *p = NULL;
        return dm_cuda_host_alloc(be, bytes, &p) ? NULL : p;
    }
    return malloc(bytes ? bytes : 1);
}

void dm_backend_host_free(const dm_backend *be, void *p) {
    if (!p) return;
    if (be && be->device == DM_DEVICE_CUDA)
        dm_cuda_host_free(p);
    else
        free(p);
}

/* Asynchronous downloads (include/depthmatte/copy_async.h): the backend-neutral wrapper of the
 * op table's copy_async / copy_wait entries, with the synchronous fallback of backends that
 * have none (the CPU reference). */
#include <stdio.h>
#include <string.h>

#include "depthmatte/backend_host.h"
#include "depthmatte/copy_async.h"

int dm_backend_supports_async_copy(const dm_backend *be) {
    return be && be->ops->copy_async && be->ops->copy_wait;
}

dm_status dm_copy_async(dm_backend *be, const dm_tensor *src, dm_tensor *dst,
                        dm_copy_ticket *ticket) {
    memset(ticket, 0, sizeof *ticket);
    if (!be) return dm_error_set(DM_ERR_ARG, "dm_copy_async: NULL backend");
    if (!src || !dst || !src->data || !dst->data)
        return dm_error_set(DM_ERR_ARG, "dm_copy_async: NULL tensor or data");
    if (src->device != be->device)
        return dm_error_set(DM_ERR_ARG, "dm_copy_async: src is not a tensor of the %s backend",
                            be->ops->name);
    if (dst->device != DM_DEVICE_CPU)
        return dm_error_set(DM_ERR_ARG, "dm_copy_async: dst must be a host tensor");
    if (dm_tensor_numel(src) != dm_tensor_numel(dst))
        return dm_error_set(DM_ERR_SHAPE, "dm_copy_async: numel %lld vs %lld",
                            (long long)dm_tensor_numel(src), (long long)dm_tensor_numel(dst));
    if (!dm_backend_supports_async_copy(be)) return dm_copy(be, src, dst); /* complete */
    dm_status st = be->ops->copy_async(be, src, dst, ticket);
    if (st) memset(ticket, 0, sizeof *ticket);
    return st;
}

dm_status dm_copy_wait(dm_backend *be, dm_copy_ticket *ticket) {
    if (!ticket) return dm_error_set(DM_ERR_ARG, "dm_copy_wait: NULL ticket");
    if (!ticket->id) return DM_OK;
    if (!dm_backend_supports_async_copy(be))
        return dm_error_set(DM_ERR_ARG,
                            "dm_copy_wait: a pending ticket on the %s backend, "
                            "which has no asynchronous copies",
                            be ? be->ops->name : "(null)");
    dm_status st = be->ops->copy_wait(be, ticket);
    memset(ticket, 0, sizeof *ticket);
    return st;
}

dm_status dm_async_counts_init(dm_async_counts *c, dm_backend *be, int groups) {
    memset(c, 0, sizeof *c);
    if (!be || groups < 1) return dm_error_set(DM_ERR_ARG, "dm_async_counts_init: %d groups", groups);
    const int64_t g = groups;
    dm_status st = dm_alloc(be, &c->dev, DM_DTYPE_I64, 1, &g);
    if (st) return st;
    if (!(c->host = dm_backend_host_alloc(be, (size_t)groups * sizeof(int64_t)))) {
        char why[512]; /* a copy: dm_error_set must not read the buffer it writes */
        snprintf(why, sizeof why, "%s", be->device == DM_DEVICE_CPU ? "out of memory"
                                                                    : dm_error_message());
        dm_tensor_free(&c->dev);
        return dm_error_set(DM_ERR_NOMEM, "dm_async_counts_init: host counts: %s", why);
    }
    memset(c->host, 0, (size_t)groups * sizeof(int64_t));
    c->groups = groups;
    return DM_OK;
}

dm_status dm_async_counts_start(dm_async_counts *c, dm_backend *be, int n) {
    if (n < 1 || n > c->groups)
        return dm_error_set(DM_ERR_ARG, "dm_async_counts_start: %d of %d counts", n, c->groups);
    dm_status st = dm_copy_wait(be, &c->ticket); /* host[] is the destination once at a time */
    if (st) return st;
    const int64_t k = n;
    dm_tensor src = dm_tensor_sub(&c->dev, 0, 1, &k), dst;
    dm_tensor_view(&dst, c->host, DM_DTYPE_I64, 1, &k);
    c->n = n;
    return dm_copy_async(be, &src, &dst, &c->ticket);
}

dm_status dm_async_counts_wait(dm_async_counts *c, dm_backend *be) {
    return dm_copy_wait(be, &c->ticket);
}

void dm_async_counts_free(dm_async_counts *c, dm_backend *be) {
    if (!c) return;
    if (be) (void)dm_copy_wait(be, &c->ticket);
    dm_tensor_free(&c->dev);
    if (be) dm_backend_host_free(be, c->host);
    memset(c, 0, sizeof *c);
}

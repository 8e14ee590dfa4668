/* Asynchronous downloads (include/depthmatte/copy_async.h): the backend-neutral wrapper of the
 * op table's copy_async / copy_wait entries, with the synchronous fallback of backends that
 * have none (the CPU reference). */
#include <string.h>

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

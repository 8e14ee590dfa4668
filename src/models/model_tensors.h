/* Internal: visiting every weight tensor of a model, so that freeing and moving weights to a
 * device backend (dm_tensor_upload, once at load) share one list per model. */
#ifndef DM_MODELS_MODEL_TENSORS_H
#define DM_MODELS_MODEL_TENSORS_H

#include "depthmatte/backend.h"

/* Called once per weight tensor; a non-DM_OK return stops the visit. */
typedef dm_status (*model_tensor_fn)(dm_tensor *t, void *arg);

/* Frees t (arg unused). */
static inline dm_status model_tensor_free(dm_tensor *t, void *arg) {
    (void)arg;
    dm_tensor_free(t);
    return DM_OK;
}

/* Moves t onto the backend `arg` (a dm_backend *) in its storage dtype. */
static inline dm_status model_tensor_upload(dm_tensor *t, void *arg) {
    dm_backend *be = (dm_backend *)arg;
    return dm_tensor_upload(be, t, dm_backend_storage_dtype(be));
}

/* Argument of model_tensor_upload_mixed: the backend and the weights kept in its residual
 * dtype (dm_backend_residual_dtype: tables added into a residual stream), up to 4. */
typedef struct model_upload {
    dm_backend *be;
    const dm_tensor *residual[4];
    int nresidual;
} model_upload;

/* Moves t onto the backend of `arg` (a model_upload *): in its residual dtype when t is one of
 * arg->residual, else in its storage dtype. */
static inline dm_status model_tensor_upload_mixed(dm_tensor *t, void *arg) {
    const model_upload *u = (const model_upload *)arg;
    int residual = 0;
    for (int i = 0; i < u->nresidual; i++) residual |= t == u->residual[i];
    return dm_tensor_upload(u->be, t, residual ? dm_backend_residual_dtype(u->be)
                                               : dm_backend_storage_dtype(u->be));
}

#endif

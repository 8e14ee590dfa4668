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

#endif

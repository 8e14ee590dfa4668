/* Internal: the synthetic weight source behind dm_st_open_synthetic (src/weights/synthetic.c),
 * called by dm_st_find / dm_st_load_f32 when the file has synth_rules. */
#ifndef DM_WEIGHTS_ST_INTERNAL_H
#define DM_WEIGHTS_ST_INTERNAL_H

#include "depthmatte/safetensors.h"

dm_st_entry *dm_st_synth_find(dm_st_file *f, const char *name);
dm_status dm_st_synth_load(dm_st_file *f, const char *name, int ndim, const int64_t *shape,
                           dm_tensor *out);

#endif

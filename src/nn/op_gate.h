/* Internal: the check every op entry point (ops.c) makes before dispatching to a backend: the
 * op's descriptor (include/depthmatte/backend.h: dm_op_desc) is added to the backend's trace
 * when one is attached and asked of the backend's supports query; a refusal is one line. */
#ifndef DM_NN_OP_GATE_H
#define DM_NN_OP_GATE_H

#include "depthmatte/backend.h"

/* DM_OK, or DM_ERR_UNSUPPORTED with "backend B does not run <descriptor>: <reason>". Free on
 * an untraced backend without a supports query (the CPU reference). Operands ts[0..n) and
 * parameters iv[0..niv) as dm_op_desc_of. */
dm_status dm_op_gate(dm_backend *be, dm_op_id op, const dm_tensor *const *ts, int n,
                     const int *iv, int niv);

#define DM_OP_GATE_ARR(...) ((const dm_tensor *const[]){__VA_ARGS__})
/* DM_OP_GATE(be, op, TS(x, y), IV(k, s)) or NOIV: returns the gate's error from the caller. */
#define TS(...) DM_OP_GATE_ARR(__VA_ARGS__), \
    (int)(sizeof DM_OP_GATE_ARR(__VA_ARGS__) / sizeof(const dm_tensor *))
#define IV(...) ((const int[]){__VA_ARGS__}), (int)(sizeof((const int[]){__VA_ARGS__}) / sizeof(int))
#define NOIV NULL, 0
#define DM_OP_GATE(be, op, ts, iv)                                                             \
    do {                                                                                       \
        dm_status gate_st_ = dm_op_gate((be), (op), ts, iv);                                   \
        if (gate_st_) return gate_st_;                                                         \
    } while (0)

#endif

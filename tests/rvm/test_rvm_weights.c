/* RVM weight validation: a missing file, a truncated file, a tensor with the wrong shape, a
 * tensor with the wrong dtype, a missing tensor and an unexpected tensor must each fail with
 * the right status and a message naming the file (and the tensor where there is one). The bad
 * files are built from the real weights with dm_st_write into /tmp. project_seg.* is
 * accepted (official checkpoints hold it; it is unused). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "depthmatte/rvm.h"
#include "depthmatte/safetensors.h"
#include "tensor_compare.h"

enum { MAX_T = 400 };

/* Rewrites `src` to `dst` with tensor `drop` removed, tensor `repl_name` replaced by `repl`
 * (or appended if absent from src), all others copied unchanged. */
static int rewrite(dm_st_file *src, const char *dst, const char *drop, const char *repl_name,
                   const dm_tensor *repl) {
    const char *names[MAX_T + 1];
    const dm_tensor *ptrs[MAX_T + 1];
    static dm_tensor views[MAX_T];
    int n = 0, replaced = 0;
    for (int i = 0; i < src->count && n < MAX_T; i++) {
        dm_st_entry *e = &src->entries[i];
        if (drop && !strcmp(e->name, drop)) continue;
        names[n] = e->name;
        if (repl_name && !strcmp(e->name, repl_name)) {
            ptrs[n++] = repl;
            replaced = 1;
            continue;
        }
        dm_tensor_view(&views[n], (void *)e->data, e->dtype, e->ndim, e->shape);
        ptrs[n] = &views[n];
        n++;
    }
    if (repl_name && !replaced) {
        names[n] = repl_name;
        ptrs[n++] = repl;
    }
    return dm_st_write(dst, n, names, ptrs, NULL) == DM_OK;
}

/* Loads `path`, expects status `want` and a message containing `path` and `needle`. */
static void expect_fail(const char *what, const char *path, dm_status want, const char *needle) {
    dm_backend *be = dm_backend_cpu_create(1);
    rvm_model *m = NULL;
    dm_status st = rvm_model_load(&m, path, be);
    const char *msg = dm_error_message();
    printf("%-16s -> %s: %s\n", what, dm_status_name(st), msg);
    CHECK(st == want);
    CHECK(m == NULL);
    CHECK(strstr(msg, path) != NULL);
    if (needle) CHECK(strstr(msg, needle) != NULL);
    rvm_model_free(m);
    dm_backend_destroy(be);
}

int main(void) {
    const char *real = tc_shared_path("models/rvm_mobilenetv3.safetensors");
    char realp[1024];
    snprintf(realp, sizeof realp, "%s", real);
    dm_st_file f;
    if (access(realp, R_OK) != 0) return tc_skip("RVM weights not found (../shared/models)");
    CHECK_OK(dm_st_open(&f, realp));
    char path[256];
    const int pid = (int)getpid();

    /* the real file loads */
    dm_backend *be = dm_backend_cpu_create(1);
    rvm_model *m = NULL;
    CHECK_OK(rvm_model_load(&m, realp, be));
    CHECK(m != NULL);
    rvm_model_free(m);

    snprintf(path, sizeof path, "/tmp/rvm_missing_%d.safetensors", pid);
    expect_fail("missing file", path, DM_ERR_IO, NULL);

    /* truncated: the last 1000 bytes cut off; the tensor whose data no longer fits is named */
    snprintf(path, sizeof path, "/tmp/rvm_trunc_%d.safetensors", pid);
    {
        FILE *in = fopen(realp, "rb"), *out = fopen(path, "wb");
        CHECK(in && out);
        fseek(in, 0, SEEK_END);
        long size = ftell(in);
        fseek(in, 0, SEEK_SET);
        char *buf = malloc((size_t)size);
        CHECK(buf && fread(buf, 1, (size_t)size, in) == (size_t)size);
        CHECK(fwrite(buf, 1, (size_t)size - 1000, out) == (size_t)size - 1000);
        free(buf);
        fclose(in);
        fclose(out);
    }
    expect_fail("truncated", path, DM_ERR_FORMAT, "tensor");
    remove(path);

    /* wrong shape: decode3 conv with 170 input channels instead of 171 */
    const char *tname = "decoder.decode3.conv.0.weight";
    dm_tensor bad;
    const int64_t bshape[4] = {80, 170, 3, 3};
    CHECK_OK(dm_tensor_alloc(&bad, DM_DTYPE_F16, 4, bshape));
    snprintf(path, sizeof path, "/tmp/rvm_shape_%d.safetensors", pid);
    CHECK(rewrite(&f, path, NULL, tname, &bad));
    expect_fail("wrong shape", path, DM_ERR_SHAPE, tname);
    remove(path);
    dm_tensor_free(&bad);

    /* wrong dtype: a weight stored as U8 */
    const int64_t ushape[4] = {4, 16, 1, 1};
    CHECK_OK(dm_tensor_alloc(&bad, DM_DTYPE_U8, 4, ushape));
    snprintf(path, sizeof path, "/tmp/rvm_dtype_%d.safetensors", pid);
    CHECK(rewrite(&f, path, NULL, "project_mat.conv.weight", &bad));
    expect_fail("wrong dtype", path, DM_ERR_DTYPE, "project_mat.conv.weight");
    remove(path);
    dm_tensor_free(&bad);

    /* missing tensor */
    snprintf(path, sizeof path, "/tmp/rvm_drop_%d.safetensors", pid);
    CHECK(rewrite(&f, path, "backbone.features.13.block.1.1.running_var", NULL, NULL));
    expect_fail("missing tensor", path, DM_ERR_NAME, "backbone.features.13.block.1.1.running_var");
    remove(path);

    /* unexpected tensor */
    const int64_t xshape[1] = {16};
    CHECK_OK(dm_tensor_alloc(&bad, DM_DTYPE_F32, 1, xshape));
    snprintf(path, sizeof path, "/tmp/rvm_extra_%d.safetensors", pid);
    CHECK(rewrite(&f, path, NULL, "decoder.decode0.extra.bias", &bad));
    expect_fail("unexpected", path, DM_ERR_NAME, "decoder.decode0.extra.bias");
    remove(path);

    /* project_seg.* is allowed (the official state_dict has it) */
    snprintf(path, sizeof path, "/tmp/rvm_seg_%d.safetensors", pid);
    CHECK(rewrite(&f, path, NULL, "project_seg.conv.bias", &bad));
    m = NULL;
    CHECK_OK(rvm_model_load(&m, path, be));
    CHECK(m != NULL);
    rvm_model_free(m);
    remove(path);
    dm_tensor_free(&bad);

    /* state arguments */
    rvm_state *s = NULL;
    CHECK(rvm_state_init(&s, NULL, be, 720, 1280, 0) == DM_ERR_ARG && !s);

    dm_backend_destroy(be);
    dm_st_close(&f);
    return tc_failure_count != 0;
}

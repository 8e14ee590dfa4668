/* The selftest command shared by `depthmatte selftest` (src/cli/cmd_selftest.c) and the
 * engine-only `dm_selftest` (src/tools/dm_selftest.c): options, backend creation, table / JSON
 * output, exit status (include/depthmatte/selftest.h). */
#include <stdlib.h>
#include <string.h>

#include "depthmatte/backend_cuda.h"
#include "depthmatte/backend_emu.h"
#include "models/selftest_internal.h"

typedef struct cmd_opts {
    const char *backend; /* "cpu", "cuda", "emulated"; NULL: cuda if a GPU is visible */
    dm_dtype precision;
    int device, threads, json;
    int ops, models;
    const char *filter, *perturb;
} cmd_opts;

static void usage(FILE *f, const char *prog) {
    fprintf(
        f,
        "usage: %s [--backend cpu|cuda|emulated] [--precision float32|float16|bfloat16]\n"
        "       %*s [--device N] [-o OP[,OP...]] [--models|--ops-only] [--json]\n"
        "       %*s [--threads N] [--perturb OP]\n\n"
        "Checks every op of a backend against the CPU reference on small random inputs with\n"
        "the models' shapes, then RVM MobileNetV3, Depth Anything V2 Small and Video Depth\n"
        "Anything Small on tiny inputs with deterministic weights made in memory (no files),\n"
        "against the CPU backend. Prints one row per check: op or model, case, dtype, max\n"
        "abs / max rel / mean abs error, tolerance, PASS/FAIL (tolerances per precision:\n"
        "src/nn/tolerance.c). Exit status 0: all pass; 1: any failure; 2: usage error or\n"
        "the backend cannot be created.\n\n"
        "  --backend B     cpu (the reference itself), cuda (GPU), emulated (the CPU ops\n"
        "                  behind a device interface, rounding every op output to the\n"
        "                  precision); default: cuda when a GPU is visible, else cpu\n"
        "  --precision P   compute precision under test (default float32; cpu: float32 only)\n"
        "  --device N      CUDA device index (default 0)\n"
        "  -o LIST         only these ops / networks, comma-separated (e.g. -o linear,da2_vits)\n"
        "  --models        networks only;  --ops-only  ops only\n"
        "  --json          one JSON object on stdout instead of the table\n"
        "  --threads N     CPU threads of the reference (default: OpenMP's)\n"
        "  --perturb OP    emulated backend only: deliberately falsify op OP (OP:nan,\n"
        "                  OP:nan-always: a NaN in its output), to test that it is caught\n\n"
        "ops:",
        prog, (int)strlen(prog), "", (int)strlen(prog), "");
    for (const char *const *n = dm_selftest_op_names(); *n; n++)
        fprintf(f, " %s", *n);
    fprintf(f, "\nnetworks:");
    for (const char *const *n = dm_selftest_network_names(); *n; n++)
        fprintf(f, " %s", *n);
    fprintf(f, "\n");
}

static int parse_int(const char *s, int lo, int hi, int *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi) return 0;
    *out = (int)v;
    return 1;
}

/* Returns 0 on success, 2 on a usage error (message printed), 3 for --help. */
static int parse(int argc, char **argv, const char *prog, cmd_opts *o) {
    memset(o, 0, sizeof *o);
    o->precision = DM_DTYPE_F32;
    o->ops = o->models = 1;
    int only_models = 0, only_ops = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int takes = !strcmp(a, "--backend") || !strcmp(a, "--precision") ||
                    !strcmp(a, "--device") || !strcmp(a, "-o") || !strcmp(a, "--threads") ||
                    !strcmp(a, "--perturb");
        if (takes && !v) {
            fprintf(stderr, "%s: option %s needs a value\n", prog, a);
            return 2;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return 3;
        if (!strcmp(a, "--backend")) {
            if (strcmp(v, "cpu") && strcmp(v, "cuda") && strcmp(v, "emulated")) {
                fprintf(stderr, "%s: --backend must be cpu, cuda or emulated, not '%s'\n", prog, v);
                return 2;
            }
            o->backend = v;
        } else if (!strcmp(a, "--precision")) {
            /* the dtype short names too, as error messages print them (dm_dtype_name) */
            if (!strcmp(v, "float32") || !strcmp(v, "f32"))
                o->precision = DM_DTYPE_F32;
            else if (!strcmp(v, "float16") || !strcmp(v, "f16"))
                o->precision = DM_DTYPE_F16;
            else if (!strcmp(v, "bfloat16") || !strcmp(v, "bf16"))
                o->precision = DM_DTYPE_BF16;
            else {
                fprintf(stderr, "%s: --precision must be float32, float16 or bfloat16, not '%s'\n",
                        prog, v);
                return 2;
            }
        } else if (!strcmp(a, "--device")) {
            if (!parse_int(v, 0, 1023, &o->device)) {
                fprintf(stderr, "%s: --device must be an integer 0..1023, not '%s'\n", prog, v);
                return 2;
            }
        } else if (!strcmp(a, "--threads")) {
            if (!parse_int(v, 0, 4096, &o->threads)) {
                fprintf(stderr, "%s: --threads must be an integer 0..4096, not '%s'\n", prog, v);
                return 2;
            }
        } else if (!strcmp(a, "-o")) {
            o->filter = v;
        } else if (!strcmp(a, "--perturb")) {
            o->perturb = v;
        } else if (!strcmp(a, "--models")) {
            only_models = 1;
        } else if (!strcmp(a, "--ops-only")) {
            only_ops = 1;
        } else if (!strcmp(a, "--json")) {
            o->json = 1;
        } else {
            fprintf(stderr, "%s: unknown argument '%s'\n", prog, a);
            return 2;
        }
        if (takes) i++;
    }
    if (only_models && only_ops) {
        fprintf(stderr, "%s: --models and --ops-only exclude each other\n", prog);
        return 2;
    }
    o->ops = !only_models;
    o->models = !only_ops;
    if (o->filter) { /* every name must exist: a typo must not pass as "0 checks failed" */
        const char *p = o->filter;
        for (;;) {
            const char *e = strchr(p, ',');
            const size_t len = e ? (size_t)(e - p) : strlen(p);
            char name[64];
            if (len == 0 || len >= sizeof name) {
                fprintf(stderr, "%s: -o: bad list '%s'\n", prog, o->filter);
                return 2;
            }
            memcpy(name, p, len);
            name[len] = '\0';
            if (!st_is_op_name(name) && !st_is_network_name(name)) {
                fprintf(stderr, "%s: -o: unknown op or network '%s' (see %s --help)\n", prog, name,
                        prog);
                return 2;
            }
            if (!e) break;
            p = e + 1;
        }
    }
    if (o->perturb && (!o->backend || strcmp(o->backend, "emulated"))) {
        fprintf(stderr, "%s: --perturb needs --backend emulated\n", prog);
        return 2;
    }
    return 0;
}

/* Creates the backend under test; on failure prints one line and returns NULL. *storage gets
 * the dtype its tensors are allocated in; desc a description for the table. */
static dm_backend *make_backend(const cmd_opts *o, const char *prog, dm_dtype *storage, char *desc,
                                size_t size) {
    const char *name = o->backend;
    if (!name) {
        int n = 0;
        name = dm_cuda_device_count(&n) == DM_OK && n > 0 ? "cuda" : "cpu";
    }
    if (!strcmp(name, "cpu")) {
        if (o->precision != DM_DTYPE_F32) {
            fprintf(stderr,
                    "%s: --backend cpu computes in float32 only (use --backend emulated "
                    "for %s numerics)\n",
                    prog, o->precision == DM_DTYPE_F16 ? "float16" : "bfloat16");
            return NULL;
        }
        dm_backend *be = dm_backend_cpu_create(o->threads);
        if (!be) fprintf(stderr, "%s: cannot create the CPU backend: out of memory\n", prog);
        *storage = DM_DTYPE_F32;
        snprintf(desc, size, "cpu");
        return be;
    }
    if (!strcmp(name, "cuda")) {
        int n = 0;
        dm_status st = dm_cuda_device_count(&n);
        if (st != DM_OK) {
            fprintf(stderr, "%s: --backend cuda: %s\n", prog, dm_error_message());
            return NULL;
        }
        if (n == 0) {
            fprintf(stderr,
                    "%s: --backend cuda: no CUDA device visible (cudaGetDeviceCount "
                    "found 0)\n",
                    prog);
            return NULL;
        }
        if (o->device >= n) {
            fprintf(stderr, "%s: --device %d: only %d CUDA device%s visible\n", prog, o->device, n,
                    n == 1 ? "" : "s");
            return NULL;
        }
        dm_backend *be = NULL;
        if ((st = dm_backend_cuda_create(o->device, o->precision, &be))) {
            fprintf(stderr, "%s: --backend cuda: %s\n", prog, dm_error_message());
            return NULL;
        }
        char gpu[128] = "?";
        dm_cuda_device_name(o->device, gpu, sizeof gpu);
        *storage = dm_backend_storage_dtype(be);
        snprintf(desc, size, "cuda device %d (%s)", o->device, gpu);
        return be;
    }
    dm_backend *be = NULL;
    dm_status st = dm_backend_emu_create(o->threads, o->precision, o->perturb, &be);
    if (st) {
        fprintf(stderr, "%s: --backend emulated: %s\n", prog, dm_error_message());
        return NULL;
    }
    *storage = dm_backend_storage_dtype(be);
    snprintf(desc, size, "emulated%s%s", o->perturb ? ", perturbed op " : "",
             o->perturb ? o->perturb : "");
    return be;
}

int dm_selftest_command(int argc, char **argv, const char *prog) {
    cmd_opts o;
    const int pr = parse(argc, argv, prog, &o);
    if (pr == 3) {
        usage(stdout, prog);
        return 0;
    }
    if (pr) {
        usage(stderr, prog);
        return 2;
    }
    dm_dtype storage = DM_DTYPE_F32;
    char desc[192];
    dm_backend *be = make_backend(&o, prog, &storage, desc, sizeof desc);
    if (!be) return 2;
    dm_backend *ref = dm_backend_cpu_create(o.threads);
    if (!ref) {
        fprintf(stderr, "%s: cannot create the CPU reference backend: out of memory\n", prog);
        dm_backend_destroy(be);
        return 2;
    }
    const char *prec = o.precision == DM_DTYPE_F32
                           ? "float32"
                           : (o.precision == DM_DTYPE_F16 ? "float16" : "bfloat16");
    if (!o.json) {
        printf("%s: backend %s, precision %s, against the CPU reference\n", prog, desc, prec);
        dm_selftest_print_header(stdout);
    }
    dm_selftest_opts so = {o.precision, storage, o.ops, o.models, o.filter, o.json ? NULL : stdout};
    dm_selftest_report r = {0};
    dm_status st = dm_selftest_run(be, ref, &so, &r);
    int rc = r.failed ? 1 : 0;
    if (st) {
        fprintf(stderr, "%s: %s\n", prog, dm_error_message());
        rc = st == DM_ERR_ARG ? 2 : 1;
    } else if (o.json) {
        if (dm_selftest_print_json(stdout, &r, desc, o.precision)) {
            fprintf(stderr, "%s: %s\n", prog, dm_error_message());
            rc = 1;
        }
    } else {
        dm_selftest_print_summary(stdout, &r, desc);
        for (int i = 0; i < r.count; i++)
            if (r.rows[i].result == DM_SELFTEST_FAIL)
                printf("FAILED: %s %s (%s)%s%s\n", r.rows[i].name, r.rows[i].what,
                       dm_dtype_name(r.rows[i].dtype), r.rows[i].note[0] ? ": " : "",
                       r.rows[i].note);
    }
    dm_selftest_report_free(&r);
    dm_backend_destroy(ref);
    dm_backend_destroy(be);
    return rc;
}

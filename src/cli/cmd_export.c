/* depthmatte export FILE.h5 --kind KIND[,KIND...] --out DIR [options]
 * Turns a depthmatte output file into files people use (docs/export.md). Under mpirun the
 * selected videos are spread over the ranks (video j on rank j mod N); rank 0 checks
 * everything first (file, videos, datasets, done rows, sources, DIR), so bad input is one
 * error line before any work, prints progress and the summary, and lists what was written
 * (stdout, or --json). Exit status: 0 done, 1 error, 2 bad usage. */
#include <errno.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <libavutil/log.h>

#include "cli/commands.h"
#include "depthmatte/video_writer.h"
#include "export/export_internal.h"

enum { TAG_DONE = 11 };

static void usage(FILE *f) {
    fprintf(
        f, "usage: depthmatte export FILE.h5 --kind KIND[,KIND...] --out DIR [--video ID]...\n"
           "                         [--frames A:B] [--allow-partial] [--source ID=PATH]...\n"
           "                         [--json] [--quiet] [kind options]\n"
           "Writes DIR/<video id>/... for every video (or each --video ID: \"00002\" or \"2\").\n"
           "Run with mpirun -np N to spread the videos over N ranks. Details: docs/export.md.\n"
           "kinds:\n"
           "  alpha-webm     transparent VP9 WebM (yuva420p): colour = foreground (or source)\n"
           "  alpha-prores   ProRes 4444 MOV with alpha (yuva444p10le), for video editors\n"
           "  composite      foreground over --background as H.264 MP4\n"
           "  rgba-png       RGBA PNG sequence (colour + matte)\n"
           "  alpha-png      8-bit greyscale PNG sequence of the matte\n"
           "  depth-png16    16-bit PNG sequence + depth16.json (scale/offset to restore depth)\n"
           "  depth-exr      float32 OpenEXR per frame, exact depth values\n"
           "  depth-vis      depth as an H.264 MP4 (palette, video-wide normalisation, CRF 18)\n"
           "  preview        side-by-side H.264 MP4: source | composite | depth-vis\n"
           "  contact-sheet  one PNG: evenly spaced frames, rows source / alpha / depth\n"
           "  transcode      H.264 copy of the source scaled to --height\n"
           "options:\n"
           "  --frames A:B          rows A..B-1 only (audio cut to match)\n"
           "  --allow-partial       export the done rows of incomplete videos (gaps listed)\n"
           "  --source ID=PATH      the source of video ID moved to PATH\n"
           "  --no-audio            no audio stream in video outputs\n"
           "  --lossless            alpha-webm: lossless VP9 (bit-exact alpha)\n"
           "  --crf N               quality of VP9 (default 30) / H.264 (default 18) outputs\n"
           "  --background R,G,B    composite background (default 120,255,155, RVM's green)\n"
           "  --palette P           depth-vis palette: inferno (default), turbo, grey\n"
           "  --percentiles LO,HI   depth-vis normalisation percentiles (default 0,100 = min/max)\n"
           "  --height N            transcode height in pixels (default 360)\n"
           "  --sheet-frames N      contact-sheet frames (default 8)\n"
           "  --sheet-width N       contact-sheet thumbnail width in pixels (default 240)\n"
           "  --json                list the outputs as one JSON array on stdout\n"
           "  --quiet               no progress lines\n"
           "Exit status: 0 done, 1 error (one line naming the file and the cause), 2 bad usage.\n");
}

static int parse_int(const char *s, int lo, int hi, int *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end || v < lo || v > hi) return 0;
    *out = (int)v;
    return 1;
}

typedef struct args {
    ex_options o;
    const char *h5;
    char **videos;
    int n_videos;
    int json, quiet;
} args;

/* Returns NULL on success, else the offending argument (message printed by the caller). */
static const char *parse(int argc, char **argv, args *a, char *why, size_t nwhy) {
    ex_options *o = &a->o;
    o->frame_a = o->frame_b = -1;
    o->crf = -1;
    o->background[0] = 120, o->background[1] = 255, o->background[2] = 155;
    o->palette = EX_PAL_INFERNO;
    o->pct_lo = 0, o->pct_hi = 100;
    o->height = 360;
    o->sheet_frames = 8;
    o->sheet_width = 240;
    a->videos = calloc((size_t)argc, sizeof *a->videos);
    o->sources = calloc((size_t)argc, sizeof *o->sources);
    if (!a->videos || !o->sources) return "out of memory";
    why[0] = 0;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEEDV()                                                                                    \
    do {                                                                                           \
        if (!v) {                                                                                  \
            snprintf(why, nwhy, "needs a value");                                                  \
            return s;                                                                              \
        }                                                                                          \
        i++;                                                                                       \
    } while (0)
        if (!strcmp(s, "--kind")) {
            NEEDV();
            char buf[512];
            snprintf(buf, sizeof buf, "%s", v);
            for (char *t = strtok(buf, ","); t; t = strtok(NULL, ",")) {
                int k = ex_kind_parse(t);
                if (k < 0) {
                    snprintf(why, nwhy, "unknown kind '%s' (see --help)", t);
                    return s;
                }
                o->kinds |= 1u << k;
            }
        } else if (!strcmp(s, "--out")) {
            NEEDV();
            snprintf(o->out_dir, sizeof o->out_dir, "%s", v);
        } else if (!strcmp(s, "--video")) {
            NEEDV();
            a->videos[a->n_videos++] = argv[i];
        } else if (!strcmp(s, "--frames")) {
            NEEDV();
            long long x, y;
            char c;
            if (sscanf(v, "%lld:%lld%c", &x, &y, &c) != 2 || x < 0 || y <= x) {
                snprintf(why, nwhy, "'%s' is not A:B with 0 <= A < B", v);
                return s;
            }
            o->frame_a = x, o->frame_b = y;
        } else if (!strcmp(s, "--source")) {
            NEEDV();
            const char *eq = strchr(v, '=');
            if (!eq || eq == v || !eq[1] || (size_t)(eq - v) >= sizeof o->sources[0].id) {
                snprintf(why, nwhy, "'%s' is not ID=PATH", v);
                return s;
            }
            ex_source_override *so = &o->sources[o->n_sources++];
            snprintf(so->id, sizeof so->id, "%.*s", (int)(eq - v), v);
            snprintf(so->path, sizeof so->path, "%s", eq + 1);
        } else if (!strcmp(s, "--crf")) {
            NEEDV();
            if (!parse_int(v, 0, 63, &o->crf)) return snprintf(why, nwhy, "0..63"), s;
        } else if (!strcmp(s, "--background")) {
            NEEDV();
            int r, g, b;
            char c;
            if (sscanf(v, "%d,%d,%d%c", &r, &g, &b, &c) != 3 || r < 0 || r > 255 || g < 0 ||
                g > 255 || b < 0 || b > 255)
                return snprintf(why, nwhy, "'%s' is not R,G,B in 0..255", v), s;
            o->background[0] = (uint8_t)r, o->background[1] = (uint8_t)g,
            o->background[2] = (uint8_t)b;
        } else if (!strcmp(s, "--palette")) {
            NEEDV();
            if (!strcmp(v, "inferno"))
                o->palette = EX_PAL_INFERNO;
            else if (!strcmp(v, "turbo"))
                o->palette = EX_PAL_TURBO;
            else if (!strcmp(v, "grey") || !strcmp(v, "gray"))
                o->palette = EX_PAL_GREY;
            else
                return snprintf(why, nwhy, "'%s': inferno, turbo or grey", v), s;
        } else if (!strcmp(s, "--percentiles")) {
            NEEDV();
            double lo, hi;
            char c;
            if (sscanf(v, "%lf,%lf%c", &lo, &hi, &c) != 2 || lo < 0 || hi > 100 || lo >= hi)
                return snprintf(why, nwhy, "'%s' is not LO,HI with 0 <= LO < HI <= 100", v), s;
            o->pct_lo = lo, o->pct_hi = hi;
        } else if (!strcmp(s, "--height")) {
            NEEDV();
            if (!parse_int(v, 2, 8192, &o->height)) return snprintf(why, nwhy, "2..8192"), s;
        } else if (!strcmp(s, "--sheet-frames")) {
            NEEDV();
            if (!parse_int(v, 1, 64, &o->sheet_frames)) return snprintf(why, nwhy, "1..64"), s;
        } else if (!strcmp(s, "--sheet-width")) {
            NEEDV();
            if (!parse_int(v, 16, 1920, &o->sheet_width)) return snprintf(why, nwhy, "16..1920"), s;
        } else if (!strcmp(s, "--allow-partial"))
            o->allow_partial = 1;
        else if (!strcmp(s, "--no-audio"))
            o->no_audio = 1;
        else if (!strcmp(s, "--lossless"))
            o->lossless = 1;
        else if (!strcmp(s, "--json"))
            a->json = 1;
        else if (!strcmp(s, "--quiet"))
            a->quiet = 1;
        else if (s[0] == '-' || a->h5)
            return snprintf(why, nwhy, "unexpected argument"), s;
        else
            a->h5 = s;
#undef NEEDV
    }
    if (!a->h5) return snprintf(why, nwhy, "missing FILE.h5"), "";
    if (!o->kinds) return snprintf(why, nwhy, "missing --kind"), "";
    if (!o->out_dir[0]) return snprintf(why, nwhy, "missing --out DIR"), "";
    return NULL;
}

/* mkdir -p DIR, then create and remove a file in it: an unwritable DIR fails here, before
 * any work. */
static dm_status check_out_dir(const char *dir) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return dm_error_set(DM_ERR_IO, "%s: cannot create folder: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
        return dm_error_set(DM_ERR_IO, "%s: cannot create folder: %s", dir, strerror(errno));
    char probe[1100];
    snprintf(probe, sizeof probe, "%s/.depthmatte-write-test-%ld", dir, (long)getpid());
    FILE *f = fopen(probe, "w");
    if (!f) return dm_error_set(DM_ERR_IO, "%s: not writable: %s", dir, strerror(errno));
    fclose(f);
    unlink(probe);
    return DM_OK;
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct progress {
    int rank, quiet, videos, videos_done;
    int64_t total, others, mine_base, mine;
    double t0, last;
} progress;

static void progress_print(progress *p, int force) {
    double t = now_s();
    if (p->quiet || (!force && t - p->last < 2.0)) return;
    p->last = t;
    int64_t done = p->others + p->mine_base + p->mine;
    double fps = done / (t - p->t0 + 1e-9);
    double eta = fps > 0 ? (double)(p->total - done) / fps : 0;
    fprintf(stderr, "export: %d/%d videos, %lld/%lld frames, %.1f frames/s, ETA %.0f s\n",
            p->videos_done, p->videos, (long long)done, (long long)p->total, fps, eta);
}

/* Rank 0: takes the per-video completion messages of the other ranks that have arrived. */
static void poll_others(progress *p, int block) {
    for (;;) {
        int flag = 1;
        MPI_Status st;
        if (!block) MPI_Iprobe(MPI_ANY_SOURCE, TAG_DONE, MPI_COMM_WORLD, &flag, &st);
        if (!flag) return;
        int64_t rows;
        MPI_Recv(&rows, 1, MPI_INT64_T, MPI_ANY_SOURCE, TAG_DONE, MPI_COMM_WORLD, &st);
        p->others += rows;
        p->videos_done++;
        progress_print(p, 1);
        if (block) return;
    }
}

static void on_row(void *ctx, int64_t rows) {
    progress *p = ctx;
    p->mine = rows;
    if (p->rank == 0) {
        poll_others(p, 0);
        progress_print(p, 0);
    }
}

int cmd_export(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
    MPI_Init(&argc, &argv);
    int rank = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    av_log_set_level(AV_LOG_ERROR); /* not the encoders' statistics; our errors name the file */
    args a = {0};
    char why[256];
    const char *bad = parse(argc, argv, &a, why, sizeof why);
    if (bad) {
        if (rank == 0) {
            fprintf(stderr, "depthmatte export: %s%s%s\n", bad, bad[0] ? ": " : "", why);
            usage(stderr);
        }
        free(a.videos);
        free(a.o.sources);
        MPI_Finalize();
        return 2;
    }
    /* rank 0 checks everything; the plans go to every rank */
    dm_h5r_file *f = NULL;
    int n = 0;
    ex_plan *plans = NULL;
    dm_status s = DM_OK;
    if (rank == 0) {
        s = ex_check_encoders(&a.o);
        if (s == DM_OK) s = dm_h5r_open(a.h5, &f);
        if (s == DM_OK) {
            int count = dm_h5r_video_count(f);
            n = a.n_videos ? a.n_videos : count;
            plans = calloc((size_t)(n ? n : 1), sizeof *plans);
            if (!plans) s = dm_error_set(DM_ERR_NOMEM, "out of memory");
            for (int j = 0; j < n && s == DM_OK; j++) {
                int idx = j;
                if (a.n_videos) s = dm_h5r_find_video(f, a.videos[j], &idx);
                for (int q = 0; q < j && s == DM_OK; q++)
                    if (plans[q].index == idx)
                        s = dm_error_set(DM_ERR_ARG, "%s: video %s given twice", a.h5, a.videos[j]);
                if (s == DM_OK) s = ex_check_video(f, idx, &a.o, &plans[j]);
            }
            if (s == DM_OK && n == 0) s = dm_error_set(DM_ERR_ARG, "%s: no videos", a.h5);
        }
        if (s == DM_OK) s = check_out_dir(a.o.out_dir);
        if (s != DM_OK) fprintf(stderr, "depthmatte export: %s\n", dm_error_message());
    }
    int ok = s == DM_OK;
    MPI_Bcast(&ok, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (ok) MPI_Bcast(&n, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (ok && rank != 0) {
        plans = calloc((size_t)n, sizeof *plans);
        s = plans ? dm_h5r_open(a.h5, &f) : DM_ERR_NOMEM;
        if (s != DM_OK) {
            fprintf(stderr, "depthmatte export: rank %d: %s\n", rank, dm_error_message());
            fflush(stderr);
            MPI_Abort(MPI_COMM_WORLD, 1); /* rank 0 opened it a moment ago: no way to agree */
        }
    }
    if (ok) MPI_Bcast(plans, (int)((size_t)n * sizeof *plans), MPI_BYTE, 0, MPI_COMM_WORLD);
    if (!ok) {
        dm_h5r_close(f);
        free(plans);
        free(a.videos);
        free(a.o.sources);
        MPI_Finalize();
        return 1;
    }
    /* work: video j on rank j mod size */
    progress pr = {.rank = rank, .quiet = a.quiet, .videos = n, .t0 = now_s()};
    for (int j = 0; j < n; j++)
        pr.total += plans[j].n_rows;
    ex_result res = {0};
    int failed = 0;
    char err[1200] = "";
    for (int j = rank; j < n; j += size) {
        int64_t before = res.frames;
        if (!failed) {
            pr.mine = 0;
            s = ex_export_video(f, &plans[j], &a.o, &res, on_row, &pr);
            if (s != DM_OK) {
                failed = 1;
                snprintf(err, sizeof err, "%s", dm_error_message());
            }
        }
        int64_t rows = res.frames - before;
        if (rank != 0) {
            MPI_Send(&rows, 1, MPI_INT64_T, 0, TAG_DONE, MPI_COMM_WORLD);
        } else {
            pr.mine_base += rows;
            pr.mine = 0;
            pr.videos_done++;
            poll_others(&pr, 0);
            progress_print(&pr, 1);
        }
    }
    if (rank == 0) /* the others' videos not reported yet */
        while (pr.videos_done < n)
            poll_others(&pr, 1);
    dm_h5r_close(f);
    /* gather listings and errors as JSON text */
    cJSON *mine = cJSON_CreateObject();
    cJSON *outs = cJSON_AddArrayToObject(mine, "outputs");
    for (int i = 0; i < res.n_out; i++) {
        cJSON *o = cJSON_CreateObject();
        const char *p = res.out[i].path + strlen(a.o.out_dir) + 1;
        char vid[16];
        snprintf(vid, sizeof vid, "%.*s", (int)(strchr(p, '/') ? strchr(p, '/') - p : 0), p);
        cJSON_AddStringToObject(o, "video", vid);
        cJSON_AddStringToObject(o, "kind", res.out[i].kind);
        cJSON_AddStringToObject(o, "path", res.out[i].path);
        cJSON_AddNumberToObject(o, "frames", (double)res.out[i].frames);
        cJSON_AddItemToArray(outs, o);
    }
    cJSON_AddStringToObject(mine, "error", err);
    char *txt = cJSON_PrintUnformatted(mine);
    cJSON_Delete(mine);
    int len = (int)strlen(txt) + 1, *lens = NULL, *offs = NULL, total = 0;
    char *all = NULL;
    if (rank == 0) {
        lens = calloc((size_t)size, sizeof *lens);
        offs = calloc((size_t)size, sizeof *offs);
    }
    MPI_Gather(&len, 1, MPI_INT, lens, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (rank == 0) {
        for (int r = 0; r < size; r++)
            offs[r] = total, total += lens[r];
        all = malloc((size_t)total);
    }
    MPI_Gatherv(txt, len, MPI_CHAR, all, lens, offs, MPI_CHAR, 0, MPI_COMM_WORLD);
    free(txt);
    int status = 0;
    if (rank == 0) {
        cJSON *list = cJSON_CreateArray();
        int errors = 0, n_out = 0;
        for (int r = 0; r < size; r++) {
            cJSON *j = cJSON_Parse(all + offs[r]);
            cJSON *e = cJSON_GetObjectItem(j, "error");
            if (cJSON_IsString(e) && e->valuestring[0]) {
                fprintf(stderr, "depthmatte export: rank %d: %s\n", r, e->valuestring);
                errors++;
            }
            cJSON *o;
            cJSON_ArrayForEach(o, cJSON_GetObjectItem(j, "outputs")) {
                cJSON_AddItemToArray(list, cJSON_Duplicate(o, 1));
                n_out++;
            }
            cJSON_Delete(j);
        }
        if (a.json) {
            char *p = cJSON_Print(list);
            printf("%s\n", p);
            free(p);
        } else {
            cJSON *o;
            cJSON_ArrayForEach(o, list) {
                printf("%s\t%s\t%lld\t%s\n", cJSON_GetObjectItem(o, "video")->valuestring,
                       cJSON_GetObjectItem(o, "kind")->valuestring,
                       (long long)cJSON_GetObjectItem(o, "frames")->valuedouble,
                       cJSON_GetObjectItem(o, "path")->valuestring);
            }
        }
        cJSON_Delete(list);
        double dt = now_s() - pr.t0;
        if (!a.quiet || errors) {
            fprintf(stderr,
                    "export: %d videos, %lld frames, %d outputs in %.1f s (%.1f frames/s)%s\n", n,
                    (long long)(pr.others + pr.mine_base), n_out, dt,
                    (double)(pr.others + pr.mine_base) / (dt + 1e-9), errors ? ", FAILED" : "");
            for (int j = 0; j < n; j++)
                if (plans[j].gaps[0])
                    fprintf(stderr,
                            "export: video %s partial (--allow-partial): %s not done, "
                            "not exported\n",
                            plans[j].v.id, plans[j].gaps);
        }
        fflush(stdout);
        status = errors ? 1 : 0;
        free(lens);
        free(offs);
        free(all);
    }
    MPI_Bcast(&status, 1, MPI_INT, 0, MPI_COMM_WORLD);
    ex_result_free(&res);
    free(plans);
    free(a.videos);
    free(a.o.sources);
    MPI_Finalize();
    return status;
}

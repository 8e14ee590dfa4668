/* Rank 0 reads the job, checks the output path, probes the inputs and plans; the result is
 * broadcast so that every rank works from the same bytes (DESIGN.md "Data flow"). */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pl_internal.h"

/* The output must be creatable before any work starts: its folder exists and is writable,
 * and an existing file is only touched with --resume or output.overwrite. */
static dm_status check_output(const pl_ctx *c) {
    const char *path = c->job.output.path;
    char *copy = strdup(path);
    if (!copy) return dm_error_set(DM_ERR_NOMEM, "%s: out of memory", path);
    const char *dir = dirname(copy);
    struct stat sd;
    dm_status st = DM_OK;
    if (stat(dir, &sd) != 0 || !S_ISDIR(sd.st_mode))
        st = dm_error_set(DM_ERR_IO, "%s: output folder %s does not exist", path, dir);
    else if (access(dir, W_OK | X_OK) != 0)
        st = dm_error_set(DM_ERR_IO, "%s: output folder %s is not writable: %s", path, dir,
                          strerror(errno));
    free(copy);
    if (st) return st;
    struct stat sf;
    if (stat(path, &sf) == 0) {
        if (S_ISDIR(sf.st_mode))
            return dm_error_set(DM_ERR_IO, "%s: output path is a directory", path);
        if (access(path, W_OK) != 0)
            return dm_error_set(DM_ERR_IO, "%s: output file is not writable: %s", path,
                                strerror(errno));
        if (!c->opt.resume && !c->job.output.overwrite)
            return dm_error_set(DM_ERR_IO, "%s: output file exists; pass --resume to continue "
                                "it or set output.overwrite: true to replace it", path);
    }
    return DM_OK;
}

/* A frame rate given as a decimal number -> num/den (exact for up to 6 decimals). */
static void rate_of(double fps, int *num, int *den) {
    int64_t n = llround(fps * 1e6), d = 1000000;
    for (int64_t a = n, b = d; b;) { /* gcd */
        int64_t t = a % b;
        a = b, b = t;
        if (!b) n /= a, d /= a;
    }
    while (n > INT_MAX)
        n /= 10, d /= 10; /* absurd rates only */
    *num = (int)n, *den = d > 0 ? (int)d : 1;
}

dm_status pl_video_options(const dm_job *job, int i, dm_video_options *o) {
    const char *path = job->inputs[i];
    *o = (dm_video_options)DM_VIDEO_OPTIONS_INIT;
    o->stream_index = job->video_stream;
    o->target_fps = job->target_fps;
    o->max_res = job->max_res;
    o->images = dm_video_is_image_sequence(path);
    const double item = job->input_fps ? job->input_fps[i] : 0.0;
    struct stat sb;
    if (!o->images && item > 0.0 && stat(path, &sb) != 0)
        return dm_error_set(DM_ERR_IO,
                            "%s: inputs[%d]: image sequence not found (%s; a folder or a "
                            "glob of frames)", path, i, strerror(errno));
    if (!o->images && item > 0.0)
        return dm_error_set(DM_ERR_ARG,
                            "%s: inputs[%d].fps is for image sequences (a folder or "
                            "a glob of frames); a video file keeps its own frame rate",
                            path, i);
    if (!o->images) return DM_OK;
    const double fps = item > 0.0 ? item : job->image_fps;
    if (!(fps > 0.0))
        return dm_error_set(DM_ERR_ARG,
                            "%s: image sequence without a frame rate: give it as "
                            "`- {path: ..., fps: RATE}` in inputs, or set image_fps",
                            path);
    rate_of(fps, &o->fps_num, &o->fps_den);
    return DM_OK;
}

static dm_status probe_inputs(pl_ctx *c) {
    c->inputs = calloc(c->job.n_inputs, sizeof *c->inputs);
    if (!c->inputs) return dm_error_set(DM_ERR_NOMEM, "out of memory");
    c->n_inputs = c->job.n_inputs;
    for (int i = 0; i < c->n_inputs; i++) {
        pl_input *in = &c->inputs[i];
        dm_video_options o;
        dm_status st = pl_video_options(&c->job, i, &o);
        if (st == DM_OK) st = dm_video_probe_opts(c->job.inputs[i], &o, &in->info);
        snprintf(in->info.path, sizeof in->info.path, "%s", c->job.inputs[i]);
        if (st == DM_OK && in->info.frames <= 0)
            st = dm_error_set(DM_ERR_FORMAT, "%s: no decodable frames", c->job.inputs[i]);
        if (st) {
            if (!c->opt.keep_going) return st;
            in->ok = 0;
            snprintf(in->error, sizeof in->error, "%s", dm_error_message());
            fprintf(stderr, "depthmatte: rank 0: %s (skipped: --keep-going)\n", in->error);
            continue;
        }
        in->ok = 1;
        if (c->job.max_frames > 0 && in->info.frames > c->job.max_frames)
            in->info.frames = c->job.max_frames;
    }
    return DM_OK;
}

dm_status pl_load_and_probe(pl_ctx *c, const char *job_path, const char *const *sets,
                            int n_sets, int check_output_path) {
    dm_status st = dm_config_load_with_sets(job_path, sets, n_sets, &c->job);
    if (st) return st;
    /* Model-size rows are the DA-V2 head output on its input grid (da2_input_size); the VDA
     * paths only produce source-size depth. */
    if (c->job.depth.enabled && c->job.depth.output_size == DM_DEPTH_SIZE_MODEL &&
        c->job.depth.model != DM_DEPTH_DA2_VITS)
        return dm_error_set(DM_ERR_UNSUPPORTED, "%s: depth.output_size: model is only supported "
                            "with depth.model da2_vits", job_path);
    /* --max-frames overrides the job's max_frames; the effective configuration stored in the
     * file then records the limit actually used. */
    if (c->opt.max_frames > 0)
        c->job.max_frames = c->opt.max_frames > INT_MAX ? INT_MAX : (int)c->opt.max_frames;
    if (check_output_path && (st = check_output(c))) return st;
    if ((st = dm_config_to_string(&c->job, &c->config_text))) return st;
    return probe_inputs(c);
}

static dm_status setup_root(pl_ctx *c, const char *job_path, const char *const *sets,
                            int n_sets) {
    dm_status st = pl_load_and_probe(c, job_path, sets, n_sets, 1);
    return st ? st : pl_make_plan(c);
}

/* Broadcast of a byte buffer whose length rank 0 knows. */
static dm_status bcast_bytes(void **buf, int64_t *len, int rank) {
    if (MPI_Bcast(len, 1, MPI_INT64_T, 0, MPI_COMM_WORLD) != MPI_SUCCESS)
        return dm_error_set(DM_ERR_MPI, "MPI_Bcast of the job failed");
    if (rank != 0) {
        *buf = malloc(*len > 0 ? (size_t)*len : 1);
        if (!*buf) return dm_error_set(DM_ERR_NOMEM, "out of memory");
    }
    /* Chunks of <= 1 GiB: MPI counts are int. */
    for (int64_t off = 0; off < *len; off += 1 << 30) {
        int n = (int)(*len - off < (1 << 30) ? *len - off : (1 << 30));
        if (MPI_Bcast((char *)*buf + off, n, MPI_BYTE, 0, MPI_COMM_WORLD) != MPI_SUCCESS)
            return dm_error_set(DM_ERR_MPI, "MPI_Bcast of the job failed");
    }
    return DM_OK;
}

dm_status pl_setup(pl_ctx *c, const char *job_path, const char *const *sets, int n_sets) {
    int32_t st = DM_OK;
    if (c->rank == 0) st = setup_root(c, job_path, sets, n_sets);
    /* Everybody learns whether rank 0 succeeded before any other collective. */
    if (MPI_Bcast(&st, 1, MPI_INT32_T, 0, MPI_COMM_WORLD) != MPI_SUCCESS)
        return dm_error_set(DM_ERR_MPI, "MPI_Bcast of the setup status failed");
    if (st) return (dm_status)st;

    int64_t sizes[3] = {0, c->n_inputs, c->n_chunks};
    if (c->rank == 0) sizes[0] = (int64_t)strlen(c->config_text) + 1;
    if (MPI_Bcast(sizes, 3, MPI_INT64_T, 0, MPI_COMM_WORLD) != MPI_SUCCESS)
        return dm_error_set(DM_ERR_MPI, "MPI_Bcast of the job sizes failed");
    int64_t n;
    void *p = c->config_text;
    n = sizes[0];
    if ((st = bcast_bytes(&p, &n, c->rank))) return st;
    c->config_text = p;
    p = c->inputs;
    n = sizes[1] * (int64_t)sizeof(pl_input);
    if ((st = bcast_bytes(&p, &n, c->rank))) return st;
    c->inputs = p;
    c->n_inputs = (int)sizes[1];
    p = c->chunks;
    n = sizes[2] * (int64_t)sizeof(pl_chunk);
    if ((st = bcast_bytes(&p, &n, c->rank))) return st;
    c->chunks = p;
    c->n_chunks = (int)sizes[2];
    if (c->rank != 0) {
        /* Paths in the effective configuration are already resolved. */
        st = dm_config_parse_string(c->config_text, job_path ? job_path : "job", NULL, 1, &c->job);
        if (st) return (dm_status)st;
    }
    return pl_make_blocks(c, c->job.output.chunk_frames);
}

/* VDA: this rank's units are its windows of the schedule, in round order, each with the chunk
 * that holds its rows (a whole video, or the window itself) and its neighbours' ranks. */
static dm_status vda_blocks(pl_ctx *c) {
    const dm_vda_schedule *sc = &c->vda;
    c->n_blocks = 0;
    for (int i = 0; i < sc->n; i++) c->n_blocks += sc->slot[i].rank == c->rank;
    c->blocks = calloc(c->n_blocks > 0 ? c->n_blocks : 1, sizeof *c->blocks);
    if (!c->blocks) return dm_error_set(DM_ERR_NOMEM, "out of memory");
    int nb = 0;
    for (int i = 0; i < sc->n; i++) { /* slots sorted by video, window */
        const dm_vda_slot *s = &sc->slot[i];
        if (s->rank != c->rank) continue;
        int k = 0;
        while (k < c->n_chunks && !(c->chunks[k].video == s->video && c->chunks[k].rank == s->rank &&
                                    c->chunks[k].begin <= s->begin && s->begin < c->chunks[k].end))
            k++;
        if (k == c->n_chunks)
            return dm_error_set(DM_ERR_ARG, "plan: VDA window %d of video %d has no chunk",
                                s->window, s->video);
        const dm_vda_slot *p = s->window > 0 ? &sc->slot[i - 1] : NULL;
        const dm_vda_slot *n = i + 1 < sc->n && sc->slot[i + 1].video == s->video ? &sc->slot[i + 1]
                                                                                 : NULL;
        c->blocks[nb++] = (pl_block){k, s->begin, s->end - s->begin, s->begin == c->chunks[k].begin,
                                     s->window, s->round, n == NULL, p ? p->rank : -1,
                                     p ? p->round : -1, n ? n->rank : -1};
    }
    /* in round order (the schedule numbers each rank's windows in its chunk order) */
    for (int i = 1; i < nb; i++)
        for (int j = i; j > 0 && c->blocks[j].round < c->blocks[j - 1].round; j--) {
            pl_block t = c->blocks[j];
            c->blocks[j] = c->blocks[j - 1], c->blocks[j - 1] = t;
        }
    return DM_OK;
}

dm_status pl_make_blocks(pl_ctx *c, int chunk_frames) {
    if (chunk_frames < 1) return dm_error_set(DM_ERR_ARG, "output.chunk_frames must be >= 1");
    int *per_rank = calloc(c->size, sizeof *per_rank);
    if (!per_rank) return dm_error_set(DM_ERR_NOMEM, "out of memory");
    c->total_frames = 0;
    c->is_vda = pl_is_vda(&c->job);
    if (c->is_vda) {
        /* VDA: one window per round (pl_stage_vda.c); the schedule is the same on every rank. */
        free(per_rank);
        dm_plan p = {0};
        int n_videos = c->n_inputs > 0 ? c->n_inputs : 1;
        int64_t *frames = calloc((size_t)n_videos, sizeof *frames);
        if (!frames) return dm_error_set(DM_ERR_NOMEM, "out of memory");
        for (int i = 0; i < c->n_inputs; i++) frames[i] = c->inputs[i].ok ? c->inputs[i].info.frames : 0;
        dm_chunk *ch = calloc((size_t)(c->n_chunks > 0 ? c->n_chunks : 1), sizeof *ch);
        if (!ch) {
            free(frames);
            return dm_error_set(DM_ERR_NOMEM, "out of memory");
        }
        for (int k = 0; k < c->n_chunks; k++) {
            const pl_chunk *x = &c->chunks[k];
            /* (RVM's warm-up context is the worker's business, not the schedule's) */
            ch[k] = (dm_chunk){x->video, x->rank, x->begin, x->end, x->begin};
            c->total_frames += x->end - x->begin;
        }
        p.n_videos = n_videos, p.nranks = c->size, p.n_chunks = c->n_chunks;
        p.frames = frames, p.chunks = ch;
        dm_status st = dm_vda_schedule_make(&p, &c->vda);
        free(frames), free(ch);
        if (st) return st;
        c->n_rounds = c->vda.n_rounds;
        return vda_blocks(c);
    }
    for (int k = 0; k < c->n_chunks; k++) {
        const pl_chunk *ch = &c->chunks[k];
        if (ch->rank < 0 || ch->rank >= c->size || ch->begin >= ch->end) continue;
        per_rank[ch->rank] += (int)((ch->end - ch->begin + chunk_frames - 1) / chunk_frames);
        c->total_frames += ch->end - ch->begin;
    }
    c->n_rounds = 0;
    for (int r = 0; r < c->size; r++)
        if (per_rank[r] > c->n_rounds) c->n_rounds = per_rank[r];
    c->n_blocks = per_rank[c->rank];
    free(per_rank);
    c->blocks = calloc(c->n_blocks > 0 ? c->n_blocks : 1, sizeof *c->blocks);
    if (!c->blocks) return dm_error_set(DM_ERR_NOMEM, "out of memory");
    int nb = 0;
    for (int k = 0; k < c->n_chunks; k++) {
        const pl_chunk *ch = &c->chunks[k];
        if (ch->rank != c->rank || ch->begin >= ch->end) continue;
        for (int64_t b = ch->begin; b < ch->end; b += chunk_frames) {
            int64_t n = ch->end - b < chunk_frames ? ch->end - b : chunk_frames;
            c->blocks[nb++] = (pl_block){k, b, n, b == ch->begin, -1, -1, b + n >= ch->end,
                                         -1, -1, -1};
        }
    }
    return DM_OK;
}

void pl_ctx_free(pl_ctx *c) {
    dm_job_free(&c->job);
    free(c->config_text);
    free(c->inputs);
    free(c->chunks);
    free(c->blocks);
    dm_vda_schedule_free(&c->vda);
    memset(c, 0, sizeof *c);
}

/* The pipeline's double-buffered output downloads (pl_dl, src/pipeline/pl_stage.h) on the
 * emulated device backend, where a download's destination holds NaN until its wait:
 * - frame i's rows are written when frame i + 1 is committed (after its forward), the last
 *   frame's at flush (pop), each from the values its frame had on the device; at most one
 *   frame's download is pending between pushes, and the next frame's ops ran beside it;
 * - the waits happen there: a slot read straight after the queued download (no pl_dl_ready)
 *   holds NaN, so a stage that skipped the wait would write NaN rows;
 * - a slot is never refilled while pending (pl_dl_next refuses), drop forgets pending rows,
 *   and a download of a push that failed before its commit is waited for before its slot is
 *   reused;
 * - on the CPU backend the same calls write the same rows. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "depthmatte/backend_emu.h"
#include "pipeline/pl_stage.h"
#include "tensor_compare.h"

enum { PX = 32, FRAMES = 5 };

typedef struct fake_stage {
    pl_stage base;
    int writes[FRAMES]; /* rows_out calls per row */
} fake_stage;

static dm_status fake_rows(pl_stage *s, const pl_unit *u, const pl_dl_slot *sl, pl_rows *rows) {
    (void)u;
    fake_stage *f = (fake_stage *)s;
    for (int64_t j = 0; j < sl->count; j++) {
        memcpy((float *)rows->depth + (sl->row + j) * PX, sl->host + j * PX, PX * sizeof(float));
        f->writes[sl->row + j]++;
    }
    return DM_OK;
}

static float value(int frame, int i) {
    return (float)(frame * 1000 + i) * 0.5f;
}

/* One "forward": the frame's values into the device output, relu'd in place (an op). */
static void forward(dm_backend *be, dm_tensor *out, int frame) {
    float v[PX];
    for (int i = 0; i < PX; i++)
        v[i] = value(frame, i);
    dm_tensor h;
    const int64_t s[] = {PX};
    dm_tensor_view(&h, v, DM_DTYPE_F32, 1, s);
    if (be->device == DM_DEVICE_CPU) {
        memcpy(out->data, v, sizeof v);
    } else {
        CHECK_OK(dm_copy(be, &h, out));
    }
    CHECK_OK(dm_activation(be, out, DM_ACT_RELU, out));
}

static void run(dm_backend *be, float *rows_out) {
    const int emu = be->device == DM_DEVICE_EMU;
    fake_stage f = {0};
    pl_dl q;
    CHECK_OK(pl_dl_init(&q, be, 2, PX, fake_rows));
    const int64_t s[] = {PX};
    dm_tensor out = {0};
    CHECK_OK(dm_alloc(be, &out, DM_DTYPE_F32, 1, s));
    pl_unit u = {0};
    pl_rows rows = {.depth = rows_out, .cap = FRAMES};
    for (int i = 0; i < FRAMES; i++) {
        pl_dl_slot *sl = NULL;
        CHECK_OK(pl_dl_next(&q, &sl));
        if (!sl) break;
        forward(be, &out, i);
        dm_tensor h;
        dm_tensor_view(&h, sl->host, DM_DTYPE_F32, 1, s);
        CHECK_OK(dm_copy_async(be, &out, &h, &sl->ticket));
        if (emu) CHECK(isnan(sl->host[0])); /* without the wait a stage would read NaN */
        sl->row = i, sl->count = 1;
        CHECK_OK(pl_dl_commit(&q, &f.base, &u, &rows));
        /* frame i - 1 written now, frame i not yet */
        for (int r = 0; r < FRAMES; r++)
            CHECK(f.writes[r] == (r < i ? 1 : 0));
        if (emu) {
            dm_emu_copy_stats cs;
            dm_backend_emu_copy_stats(be, &cs);
            CHECK(cs.pending == 1);
        }
    }
    CHECK_OK(pl_dl_flush(&q, &f.base, &u, &rows));
    for (int r = 0; r < FRAMES; r++)
        CHECK(f.writes[r] == 1);
    if (emu) {
        dm_emu_copy_stats cs;
        dm_backend_emu_copy_stats(be, &cs);
        /* each frame's ops (upload + relu) after the first ran beside a pending download */
        CHECK(cs.pending == 0 && cs.enqueued == FRAMES && cs.early_writes == 0);
        CHECK(cs.ops_overlapped >= 2 * (FRAMES - 1));
        CHECK(cs.max_pending == 2); /* frame i queued before frame i - 1 was waited for */
    }

    /* a pending slot is never handed out again (one slot, as VDA's window); drop forgets it */
    pl_dl q1;
    CHECK_OK(pl_dl_init(&q1, be, 1, PX, fake_rows));
    pl_dl_slot *sl = NULL;
    CHECK_OK(pl_dl_next(&q1, &sl));
    dm_tensor h;
    dm_tensor_view(&h, sl->host, DM_DTYPE_F32, 1, s);
    CHECK_OK(dm_copy_async(be, &out, &h, &sl->ticket));
    sl->row = 0, sl->count = 1;
    CHECK_OK(pl_dl_commit(&q1, &f.base, &u, &rows));
    CHECK(f.writes[0] == 1); /* one slot: the rows wait for the flush */
    pl_dl_slot *again = NULL;
    CHECK(pl_dl_next(&q1, &again) == DM_ERR_ARG && again == NULL);
    CHECK_OK(pl_dl_drop(&q1));
    CHECK(f.writes[0] == 1);
    CHECK_OK(pl_dl_next(&q1, &again));
    pl_dl_free(&q1);

    /* a push that failed after queueing its download (no commit): the slot's next use waits */
    CHECK_OK(pl_dl_next(&q, &sl));
    dm_tensor_view(&h, sl->host, DM_DTYPE_F32, 1, s);
    CHECK_OK(dm_copy_async(be, &out, &h, &sl->ticket));
    pl_dl_slot *same = NULL;
    CHECK_OK(pl_dl_next(&q, &same)); /* the same slot: its download waited for, not refused */
    CHECK(same == sl && sl->ticket.id == 0);
    pl_dl_free(&q);
    dm_tensor_free(&out);
}

int main(void) {
    float emu_rows[FRAMES * PX], cpu_rows[FRAMES * PX];
    dm_backend *be = NULL;
    CHECK_OK(dm_backend_emu_create(1, DM_DTYPE_F32, NULL, &be));
    if (be) run(be, emu_rows);
    dm_backend_destroy(be);
    dm_backend *cpu = dm_backend_cpu_create(1);
    if (cpu) run(cpu, cpu_rows);
    dm_backend_destroy(cpu);
    for (int r = 0; r < FRAMES; r++)
        for (int i = 0; i < PX; i++)
            CHECK(emu_rows[r * PX + i] == value(r, i));
    CHECK(memcmp(emu_rows, cpu_rows, sizeof emu_rows) == 0);
    printf("%s\n", tc_failure_count ? "FAIL" : "PASS");
    return tc_failure_count != 0;
}

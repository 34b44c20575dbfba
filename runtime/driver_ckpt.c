/*
 * driver_ckpt.c: the checkpoint, DIR/checkpoint.bin: its format (the
 * head ckpt_head in driver_impl.h, then the payload ibrt_drv_ckpt_write lists),
 * writing it atomically, reading it back with every refusal named (not a
 * regular file, another format version, corrupt, another trainer, other
 * options, other data files, another BLAS thread count), restoring a run
 * from it, and stopping a run with one (a signal, --stop-after) or
 * because one could not be written.  A checkpoint is resumed only by the
 * trainer that wrote it, on the same data, with the same options: the
 * resumed run is then bit for bit the uninterrupted one.
 */
#include "driver_impl.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------ checkpoint */

/* "IBRTCKP" and the format's version: 2 added blas_threads, 3 the hashes
 * of the data and operator files read and --snapshots.  A checkpoint of another version
 * is refused by name (ckpt_read). */
#define CKPT_MAGIC "IBRTCKP"
#define CKPT_VERSION '3'

static uint64_t ckpt_layout(const ibrt_problem *p)
{
    uint64_t h = ibrt_fnv1a(IBRT_FNV1A_BASIS, p->name, strlen(p->name));
    h = ibrt_fnv1a(h, &p->fingerprint, sizeof p->fingerprint);   /* the spec's bytes and the ibc version */
    long dims[4] = { p->in, p->out, p->bmax, (long)p->nmodels };
    h = ibrt_fnv1a(h, dims, sizeof dims);
    for (size_t k = 0; k < p->nmodels; k++) {
        const ibrt_model *m = &p->models[k];
        long md[5] = { m->nth, m->tape, m->root, m->nbal, m->nquad };
        double hp[2] = { m->lr_auto ? 0 : m->lr, m->l1 };   /* lr = auto: chosen again on resume */
        h = ibrt_fnv1a(h, md, sizeof md);
        h = ibrt_fnv1a(h, hp, sizeof hp);
    }
    return h;
}

/* The model a checkpoint's index k refers to; k == nmodels (every model
 * trained, the run finishing) holds no parameters. */
static const ibrt_model *ckpt_model(const ibrt_problem *p, long k)
{
    static const ibrt_model none = { .nth = 0, .nbal = 0 };
    return (size_t)k < p->nmodels ? &p->models[k] : &none;
}

static bool write_all(FILE *f, const void *data, size_t n, uint64_t *h)
{
    *h = ibrt_fnv1a(*h, data, n);
    return n == 0 || fwrite(data, 1, n, f) == n;
}

ibrt_status ibrt_drv_ckpt_write(run_state *R, ibrt_error *err)
{
    const ibrt_problem *p = R->p;
    /* R->k == nmodels: every model is trained, the run is finishing */
    const ibrt_model *m = ckpt_model(p, R->k);
    ckpt_head h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, CKPT_MAGIC, 7);
    h.magic[7] = CKPT_VERSION;
    h.blas_threads = R->blas_threads;
    h.layout = ckpt_layout(p);
    h.seed = R->o.seed;
    h.steps = R->o.steps;
    h.model = R->k;
    h.step = R->step;
    h.loss = R->loss;
    h.loss0 = R->loss0;
    h.elapsed = R->elapsed + ibrt_time_now() - R->t0;
    h.max_growth = R->o.max_growth;
    h.snapshots = R->o.snapshots;
    h.rb = R->rb;
    h.rs = R->rs;
    h.x_is_buffer = R->X == p->bx;
    h.json_comma = ibrt_json_need_comma(R->j);
    h.json_len = strlen(ibrt_json_text(R->j));
    const ibrt_io_files *fr = ibrt_io_files_read();
    h.nfiles = fr->n;
    memcpy(h.file_path, fr->path_hash, sizeof h.file_path);
    memcpy(h.file_bytes, fr->bytes_hash, sizeof h.file_bytes);
    h.files_rest = fr->rest;
    if (R->tr_open && ibrt_csv_sync(&R->tr, &h.trace_len, err) != IBRT_OK)
        return IBRT_EIO;
    if (R->bt_open && ibrt_csv_sync(&R->bt, &h.balance_len, err) != IBRT_OK)
        return IBRT_EIO;
    if (R->sv_open && ibrt_csv_sync(&R->sv, &h.sv_len, err) != IBRT_OK)
        return IBRT_EIO;
    snprintf(R->path, sizeof R->path, "%s/checkpoint.bin", R->o.out_dir);
    ibrt_atomic a;
    if (ibrt_atomic_open(&a, R->path, err) != IBRT_OK)
        return IBRT_EIO;
    uint64_t hash = 14695981039346656037ULL;
    errno = 0;
    bool ok = write_all(a.f, &h, sizeof h, &hash) && write_all(a.f, &R->checks, sizeof R->checks, &hash) &&
              write_all(a.f, &ibrt_drv_metrics, sizeof ibrt_drv_metrics, &hash) &&
              write_all(a.f, m->th, sizeof(double) * (size_t)m->nth, &hash) &&
              write_all(a.f, p->bx, sizeof(double) * (size_t)(p->bmax * p->in), &hash) &&
              (!p->bmask || write_all(a.f, p->bmask, sizeof(double) * (size_t)p->out, &hash)) &&
              write_all(a.f, R->chi0, sizeof(double) * (size_t)m->nbal, &hash) &&
              write_all(a.f, R->nA0, sizeof(double) * (size_t)m->nbal, &hash) &&
              write_all(a.f, R->nB0, sizeof(double) * (size_t)m->nbal, &hash) &&
              write_all(a.f, R->contr, sizeof(double) * (size_t)m->nbal, &hash) &&
              write_all(a.f, R->q0, sizeof(double) * (size_t)m->nquad, &hash) &&
              write_all(a.f, R->qacc, sizeof(double) * (size_t)m->nquad, &hash) &&
              write_all(a.f, R->qaccabs, sizeof(double) * (size_t)m->nquad, &hash) &&
              write_all(a.f, ibrt_json_text(R->j), (size_t)h.json_len, &hash);
    uint64_t sum = hash;
    ok = ok && fwrite(&sum, sizeof sum, 1, a.f) == 1;
    if (!ok) {
        ibrt_io_write_error(err->msg, sizeof err->msg, R->path, errno, a.f);
        ibrt_atomic_abort(&a);
        return IBRT_EIO;
    }
    return ibrt_atomic_commit(&a, err);
}

/* Whether the files this process read since set-up are those of REF (a
 * checkpoint's or the first seed's), byte for byte; if not, a message in
 * ERR: WHAT, the first file that differs, SINCE (when REF read it) and
 * FIX. */
bool ibrt_drv_same_files(const ibrt_io_files *ref, const char *what, const char *since, const char *fix,
                         ibrt_error *err)
{
    const ibrt_io_files *fr = ibrt_io_files_read();
    size_t n = fr->n < ref->n ? fr->n : ref->n;
    if (n > IBRT_IO_FILES_MAX)
        n = IBRT_IO_FILES_MAX;
    for (size_t i = 0; i < n; i++) {
        if (fr->path_hash[i] != ref->path_hash[i] || fr->bytes_hash[i] != ref->bytes_hash[i]) {
            snprintf(err->msg, sizeof err->msg, "%.150s: the data file '%.180s' %s %s; %s", what, fr->path[i],
                     fr->path_hash[i] != ref->path_hash[i] ? "is not the one read" : "changed", since, fix);
            return false;
        }
    }
    if (fr->n != ref->n || fr->rest != ref->rest) {
        snprintf(err->msg, sizeof err->msg, "%.150s: %zu data or operator files were read %s, %zu now%s; %s", what,
                 ref->n, since, fr->n, fr->n == ref->n ? " (one after the 16th changed)" : "", fix);
        return false;
    }
    return true;
}

/* ibrt_drv_same_files against checkpoint CK of DIR */
bool ibrt_drv_ckpt_same_files(const ckpt_head *ck, const char *dir, ibrt_error *err)
{
    ibrt_io_files ref;
    memset(&ref, 0, sizeof ref);
    ref.n = (size_t)ck->nfiles;
    memcpy(ref.path_hash, ck->file_path, sizeof ref.path_hash);
    memcpy(ref.bytes_hash, ck->file_bytes, sizeof ref.bytes_hash);
    ref.rest = ck->files_rest;
    char what[200];
    snprintf(what, sizeof what, "cannot resume from '%.120s/checkpoint.bin'", dir);
    return ibrt_drv_same_files(&ref, what, "since the checkpoint was written", "the resumed run would mix two data "
                               "sets: restore the file, or run again without --resume", err);
}

/* Reads DIR/checkpoint.bin into a malloc'ed buffer, checking its size,
 * its hash and that this trainer wrote it. */
static ibrt_status ckpt_read(const ibrt_problem *p, const char *dir, unsigned char **buf, size_t *size,
                             ibrt_error *err)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/checkpoint.bin", dir);
    /* opened without blocking and read only if a regular file: a FIFO
     * there blocked the trainer for good (SIGTERM could not end it), a
     * symbolic link to /dev/zero was read until memory ran out */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    FILE *f = NULL;
    if (fd >= 0 && fstat(fd, &st) == 0 && !S_ISREG(st.st_mode)) {
        close(fd);
        snprintf(err->msg, sizeof err->msg, "cannot resume from '%.400s': not a regular file (%s)", path,
                 S_ISDIR(st.st_mode) ? "a directory" : S_ISFIFO(st.st_mode) ? "a FIFO" : "a device or a socket");
        return IBRT_EIO;
    }
    if (fd < 0 || !(f = fdopen(fd, "rb"))) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        snprintf(err->msg, sizeof err->msg, "cannot resume from '%.400s': %s", path, strerror(e));
        return IBRT_EIO;
    }
    size_t cap = 1 << 16, n = 0;
    unsigned char *b = malloc(cap);
    while (b) {
        n += fread(b + n, 1, cap - n, f);
        if (n < cap)
            break;
        unsigned char *nb = cap < ((size_t)1 << 34) ? realloc(b, cap * 2) : NULL;
        if (!nb) {
            free(b);
            b = NULL;
            break;
        }
        b = nb;
        cap *= 2;
    }
    bool rerr = ferror(f);
    fclose(f);
    if (!b || rerr) {
        free(b);
        snprintf(err->msg, sizeof err->msg, "cannot read '%.400s': %s", path, b ? "read error" : "out of memory");
        return IBRT_EIO;
    }
    ckpt_head h;
    uint64_t sum;
    const char *why = NULL;
    if (n >= 8 && !memcmp(b, CKPT_MAGIC, 7) && b[7] != CKPT_VERSION) {
        /* another format: its layout is not this one, so nothing else is read */
        snprintf(err->msg, sizeof err->msg, "cannot resume from '%.250s': checkpoint format %c, this trainer reads "
                 "format %c (written by another version of ibc): finish that run with the trainer that wrote it, or "
                 "run again without --resume", path, isprint(b[7]) ? b[7] : '?', CKPT_VERSION);
        free(b);
        return IBRT_EFORMAT;
    }
    if (n < sizeof h + sizeof sum)
        why = "too short to be a checkpoint";
    else {
        memcpy(&h, b, sizeof h);
        memcpy(&sum, b + n - sizeof sum, sizeof sum);
        if (memcmp(h.magic, CKPT_MAGIC, 7))
            why = "not an ibc checkpoint";
        else if (ibrt_fnv1a(IBRT_FNV1A_BASIS, b, n - sizeof sum) != sum)
            why = "corrupt (its checksum does not match)";
        else if (h.layout != ckpt_layout(p))
            why = "written by a different trainer (the spec or ibc changed since); run it again from the start";
        else if (h.model < 0 || (size_t)h.model > p->nmodels || h.step < -1 || h.step > h.steps ||
                 ((size_t)h.model == p->nmodels && h.step != -1) ||
                 h.steps < 1 || h.trace_len < 0 || h.balance_len < 0 || h.sv_len < 0 || h.snapshots < 0)
            why = "corrupt (values out of range)";
        else {
            const ibrt_model *m = ckpt_model(p, h.model);
            size_t want = sizeof h + sizeof(ibrt_checks) + sizeof(ibrt_metrics) +
                          sizeof(double) * (size_t)(m->nth + p->bmax * p->in + (p->bmask ? p->out : 0) + 4 * m->nbal + 3 * m->nquad) +
                          (size_t)h.json_len + sizeof sum;
            if (h.json_len > n || want != n)
                why = "truncated or corrupt (its size does not match its contents)";
        }
    }
    if (why) {
        free(b);
        snprintf(err->msg, sizeof err->msg, "cannot resume from '%.380s': %s", path, why);
        return IBRT_EFORMAT;
    }
    *buf = b;
    *size = n;
    return IBRT_OK;
}

/* A checkpoint could not be written (a full disk, the file size limit):
 * the run stops here rather than go on with no way to resume, keeping
 * the last checkpoint written (if any) and the traces it refers to;
 * results.json says where and why (status "output_error").  Exit 1. */
int ibrt_drv_stop_output_error(run_state *R, const ibrt_error *err)
{
    ibrt_drv_output_failed(R, err);
    ibrt_drv_write_partial(R, "output_error", "stopped_at", (double)R->step, R->loss);
    ibrt_drv_leave_traces(R);
    snprintf(R->path, sizeof R->path, "%s/checkpoint.bin", R->o.out_dir);
    if (access(R->path, F_OK) == 0)
        fprintf(stderr, "%s: stopped: the checkpoint could not be written; the last one written, in %s, is kept: "
                "once there is room, continue with: --resume %s\n", R->p->name, R->path, R->o.out_dir);
    else
        fprintf(stderr, "%s: stopped: no checkpoint could be written; results so far in %s/results.json\n",
                R->p->name, R->o.out_dir);
    return 1;
}

/* Stops a run for a checkpoint: writes it and the partial results; the
 * traces stay as TRACE.part, which the checkpoint refers to. */
int ibrt_drv_stop_run(run_state *R, int status)
{
    ibrt_error err;
    if (ibrt_drv_ckpt_write(R, &err) != IBRT_OK)
        return ibrt_drv_stop_output_error(R, &err);
    ibrt_drv_write_partial(R, "interrupted", "stopped_at", (double)R->step, R->loss);
    if (ibrt_drv_stop_signal)
        fprintf(stderr, "%s: %s received: checkpoint written\n", R->p->name,
                ibrt_drv_stop_signal_name(ibrt_drv_stop_signal));
    if (R->step >= 0)
        fprintf(stderr, "%s: stopped at step %ld of model '%s'", R->p->name, R->step, R->p->models[R->k].name);
    else if ((size_t)R->k < R->p->nmodels)
        fprintf(stderr, "%s: stopped before model '%s'", R->p->name, R->p->models[R->k].name);
    else
        fprintf(stderr, "%s: stopped after training every model", R->p->name);
    fprintf(stderr, "; checkpoint in %s/checkpoint.bin\ncontinue with: --resume %s\n", R->o.out_dir, R->o.out_dir);
    ibrt_drv_leave_traces(R);
    return status;
}

/* --resume DIR: DIR/checkpoint.bin read (ckpt_read) into *data (*size
 * bytes, freed by the caller; NULL after a refusal) and its head into
 * *ck; refused when the options given differ from the run's (--steps,
 * --seed, --max-growth, --snapshots) or the BLAS thread count does.
 * R's options become the run's, with its elapsed time, checks and
 * metrics.  0, or the exit status after a message. */
int ibrt_drv_ckpt_resume_begin(run_state *R, ibrt_opts o, ckpt_head *ck, unsigned char **data, size_t *size)
{
    ibrt_error err;
    unsigned char *ckdata = NULL;
    if (ckpt_read(R->p, o.resume, &ckdata, size, &err) != IBRT_OK) {
        ibrt_drv_errmsg(&err);
        return 1;
    }
    memcpy(ck, ckdata, sizeof *ck);
    int rc = 0;
    if ((o.steps_given && o.steps != ck->steps) || (o.seed_given && o.seed != ck->seed)) {
        fprintf(stderr, "error: %s/checkpoint.bin is a run of %ld steps at seed %llu; drop --steps/--seed to "
                "resume it\n", o.resume, ck->steps, (unsigned long long)ck->seed);
        rc = 2;
    } else if (o.max_growth_given && o.max_growth != ck->max_growth) {
        fprintf(stderr, "error: %s/checkpoint.bin is a run with --max-growth %g; drop --max-growth to resume it\n",
                o.resume, ck->max_growth);
        rc = 2;
    } else if (o.snapshots && o.snapshots != ck->snapshots) {
        if (ck->snapshots)
            fprintf(stderr, "error: %s/checkpoint.bin is a run with --snapshots %ld; drop --snapshots (the resumed "
                    "run goes on writing them every %ld steps)\n", o.resume, ck->snapshots, ck->snapshots);
        else
            fprintf(stderr, "error: %s/checkpoint.bin is a run without --snapshots: its snapshots would start "
                    "mid-run; drop --snapshots to resume it, or run again from the start with it\n", o.resume);
        rc = 2;
    } else if (ck->blas_threads != ibrt_drv_blas_threads) {
        fprintf(stderr, "error: %s/checkpoint.bin is a run with %d BLAS thread%s and this process has %d: the "
                "sums inside a product may depend on it, and the resumed run would match neither; resume with "
                "OPENBLAS_NUM_THREADS=%d\n", o.resume, ck->blas_threads, ck->blas_threads == 1 ? "" : "s",
                ibrt_drv_blas_threads, ck->blas_threads);
        rc = 2;
    }
    if (rc) {
        free(ckdata);
        return rc;
    }
    R->o.steps = ck->steps;
    R->o.seed = ck->seed;
    R->o.max_growth = ck->max_growth;
    R->o.snapshots = ck->snapshots;
    R->o.out_dir = o.resume;
    R->elapsed = ck->elapsed;
    memcpy(&R->checks, ckdata + sizeof *ck, sizeof R->checks);
    memcpy(&ibrt_drv_metrics, ckdata + sizeof *ck + sizeof R->checks, sizeof ibrt_drv_metrics);
    if (R->checks.n > IBRT_MAX_CHECKS || ibrt_drv_metrics.n > IBRT_MAX_METRICS) {
        fprintf(stderr, "error: %s/checkpoint.bin: corrupt (table sizes out of range)\n", o.resume);
        free(ckdata);
        return 1;
    }
    *data = ckdata;
    return 0;
}

/* results.json under construction, as the checkpoint DATA (SIZE bytes,
 * head CK) left it; false: out of memory (after a message). */
bool ibrt_drv_ckpt_restore_json(run_state *R, const ckpt_head *ck, const unsigned char *data, size_t size)
{
    const char *text = (const char *)data + size - sizeof(uint64_t) - ck->json_len;
    char *t = malloc((size_t)ck->json_len + 1);
    if (!t) {
        fprintf(stderr, "error: out of memory\n");
        return false;
    }
    memcpy(t, text, (size_t)ck->json_len);
    t[ck->json_len] = '\0';
    ibrt_json_restore(R->j, t, ck->json_comma);
    free(t);
    return true;
}

/* Model m (the checkpoint's model in training) as the checkpoint DATA
 * (head CK) left it: its parameters, the batch buffer and mask, the
 * sums from its initial point (ibrt_drv_ckpt_write's order), its streams and
 * losses. */
void ibrt_drv_ckpt_restore_model(run_state *R, ibrt_model *m, const ckpt_head *ck, const unsigned char *data)
{
    const ibrt_problem *p = R->p;
    /* the payload after the head, checks and metrics (ibrt_drv_ckpt_write's order) */
    const unsigned char *q = data + sizeof *ck + sizeof(ibrt_checks) + sizeof(ibrt_metrics);
    size_t nbx = (size_t)(p->bmax * p->in), nbal = (size_t)m->nbal;
    memcpy(m->th, q, sizeof(double) * (size_t)m->nth);
    q += sizeof(double) * (size_t)m->nth;
    memcpy(p->bx, q, sizeof(double) * nbx);
    q += sizeof(double) * nbx;
    if (p->bmask) {
        memcpy(p->bmask, q, sizeof(double) * (size_t)p->out);
        q += sizeof(double) * (size_t)p->out;
    }
    memcpy(R->chi0, q, sizeof(double) * nbal);
    memcpy(R->nA0, q + sizeof(double) * nbal, sizeof(double) * nbal);
    memcpy(R->nB0, q + 2 * sizeof(double) * nbal, sizeof(double) * nbal);
    memcpy(R->contr, q + 3 * sizeof(double) * nbal, sizeof(double) * nbal);
    q += 4 * sizeof(double) * nbal;
    size_t nq = (size_t)m->nquad;
    memcpy(R->q0, q, sizeof(double) * nq);
    memcpy(R->qacc, q + sizeof(double) * nq, sizeof(double) * nq);
    memcpy(R->qaccabs, q + 2 * sizeof(double) * nq, sizeof(double) * nq);
    R->rb = ck->rb;
    R->rs = ck->rs;
    R->loss = ck->loss;
    R->loss0 = ck->loss0;
}

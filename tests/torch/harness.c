/*
 * harness.c: the C side of tests/torch/run.sh.  Compiled with the trainer
 * that `ibc emit` wrote for a spec included (-DIBC_TRAINER='"FILE.c"'),
 * whose main becomes trainer_main, so that the numbers come from the
 * generated code itself:
 *
 *   harness train FLAGS      the trainer, unchanged (e.g. --snapshots 10)
 *   harness probe RUN OUT    for every model k: its parameters at step 0
 *                            of RUN's snapshots (RUN/snapshots/MODEL/
 *                            step_0000000000/NAME.npy, the trainer's own),
 *                            the first batch of its batch stream (the
 *                            training set for a full batch), and into
 *                            OUT/MODEL/: X.npy, Y.npy (and mask.npy), the
 *                            predictor pred.npy and loss.npy there, each
 *                            parameter's gradient of the loss (with the
 *                            L1 baseline's subgradient) NAME.grad.npy, and
 *                            100 SGD steps on that one batch with the
 *                            generated reverse pass, every 10th as
 *                            traj/step_S/NAME.npy
 */
#define main trainer_main
#include IBC_TRAINER
#undef main

#include <sys/stat.h>

static int fail(const char *what, const ibrt_error *err)
{
    fprintf(stderr, "harness: %s: %s\n", what, err ? err->msg : "");
    return 1;
}

static int write_npy(const char *dir, const char *name, const double *v, size_t rows, size_t cols)
{
    char path[2048];
    ibrt_error err;
    size_t shp[2] = { rows, cols };
    snprintf(path, sizeof path, "%s/%s.npy", dir, name);
    return ibrt_npy_write(path, v, cols ? 2 : 1, shp, &err) == IBRT_OK ? 0 : fail(path, &err);
}

static int write_params(const char *dir, const ibrt_model *m, const double *v, const char *suffix)
{
    char name[512];
    ibrt_error err;
    if (ibrt_mkdir_p(dir, &err) != IBRT_OK)
        return fail(dir, &err);
    for (size_t q = 0; q < m->nparams; q++) {
        const ibrt_param *pv = &m->params[q];
        snprintf(name, sizeof name, "%s%s", pv->name, suffix);
        if (write_npy(dir, name, v + pv->off, pv->rows, pv->ndim == 2 ? pv->cols : 0))
            return 1;
    }
    return 0;
}

static int probe(const char *run, const char *out)
{
    const ibrt_problem *p = &problem;
    ibrt_dataset ds;
    ibrt_error err;
    memset(&ds, 0, sizeof ds);
    if (p->setup(&ds, p->default_seed, true, &err) != IBRT_OK)
        return fail("setup", &err);
    for (size_t k = 0; k < p->nmodels; k++) {
        ibrt_model *m = &p->models[k];
        char dir[1200], path[1600];
        /* the trainer's initial parameters */
        for (size_t q = 0; q < m->nparams; q++) {
            const ibrt_param *pv = &m->params[q];
            size_t ndim, shape[2];
            double *v;
            snprintf(path, sizeof path, "%s/snapshots/%s/step_0000000000/%s.npy", run, m->name, pv->name);
            if (ibrt_npy_read(path, &ndim, shape, &v, &err) != IBRT_OK)
                return fail(path, &err);
            memcpy(m->th + pv->off, v, sizeof(double) * pv->rows * pv->cols);
            free(v);
        }
        ibrt_rng rb;
        ibrt_rng_fork(&rb, p->default_seed, 3 + 2 * k);
        const double *X, *Y;
        long nb = p->draw_batch(&ds, &rb, &X, &Y);
        snprintf(dir, sizeof dir, "%s/%s", out, m->name);
        if (ibrt_mkdir_p(dir, &err) != IBRT_OK)
            return fail(dir, &err);
        if (write_npy(dir, "X", X, (size_t)nb, (size_t)p->in) || write_npy(dir, "Y", Y, (size_t)nb, (size_t)p->out) ||
            (p->bmask && write_npy(dir, "mask", p->bmask, (size_t)p->out, 0)))
            return 1;
        double loss = ibrt_driver_loss(p, m, X, Y, nb, true);
        if (write_npy(dir, "pred", m->tp + m->root, m->root_batched ? (size_t)nb : 1, (size_t)p->out) ||
            write_npy(dir, "loss", &loss, 1, 0) || write_params(dir, m, m->g, ".grad"))
            return 1;
        for (long t = 0; t <= 100; t++) {
            if (t % 10 == 0) {
                snprintf(path, sizeof path, "%s/traj/step_%010ld", dir, t);
                if (write_params(path, m, m->th, ""))
                    return 1;
            }
            if (t == 100)
                break;
            ibrt_driver_loss(p, m, X, Y, nb, true);
            for (long e = 0; e < m->nth; e++)
                m->th[e] -= m->lr * m->g[e];
        }
    }
    ibrt_dataset_free(&ds);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "train"))
        return trainer_main(argc - 1, argv + 1);
    if (argc == 4 && !strcmp(argv[1], "probe"))
        return probe(argv[2], argv[3]);
    fprintf(stderr, "usage: harness train TRAINER-FLAGS | harness probe RUN OUT\n");
    return 2;
}

/*
 * sweep_plan.c: from the parsed command line to the whole plan.
 * sweep_plan derives each grid point's text (the spec with every edited
 * axis at its value), checks each distinct text once with the ordinary
 * front end (diagnostics at the spec's own lines), names it by hash
 * (DIR/models/HASH), and lists the runs with their state on disk (new,
 * to resume, finished), refusing a DIR that holds another sweep's runs.
 * Nothing is built or run here; sweep_print_plan is --dry-run's output.
 */
#include "sweep_impl.h"

/* ------------------------------------------------------------------ plan */

/* The spec's text with every edited axis at its value vi[k]; vbegin[k]
 * receives where value k starts in the result. */
static char *derive_text(const sweep *s, const size_t *vi, size_t *len, uint32_t *vbegin)
{
    size_t order[SWEEP_MAX_AXES], n = 0;
    for (size_t k = 0; k < s->naxes; k++)
        if (!s->axes[k].runtime)
            order[n++] = k;
    /* by position; at one position insertions first, then in axis order */
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0; j--) {
            const edit *a = &s->axes[order[j - 1]].e, *b = &s->axes[order[j]].e;
            bool swap = a->begin > b->begin ||
                        (a->begin == b->begin && (a->end > a->begin) && b->end == b->begin);
            if (!swap)
                break;
            size_t t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    sbuf b = { 0 };
    uint32_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        const axis *ax = &s->axes[order[i]];
        sweep_sb_add(&b, s->src.text + pos, ax->e.begin - pos);
        sweep_sb_puts(&b, ax->e.prefix);
        vbegin[order[i]] = (uint32_t)b.n;
        sweep_sb_puts(&b, ax->values[vi[order[i]]]);
        sweep_sb_puts(&b, ax->e.suffix);
        pos = ax->e.end;
    }
    sweep_sb_add(&b, s->src.text + pos, s->src.len - pos);
    *len = b.n;
    return sweep_sb_take(&b);
}

static char *point_settings(const sweep *s, const size_t *vi, const char *sep)
{
    sbuf b = { 0 };
    for (size_t k = 0; k < s->naxes; k++)
        sweep_sb_printf(&b, "%s%s=%s", k ? sep : "", s->axes[k].key, s->axes[k].values[vi[k]]);
    if (!s->naxes)
        sweep_sb_puts(&b, "default");
    return sweep_sb_take(&b);
}

/* Checks the derived spec of model m (its first grid point's values vi,
 * starting at vbegin in its text):
 * it parses, every value is exactly the expression of its setting, it
 * checks; under SWEEP_PREPARE also the design, the derivation and the
 * trainer's C (kept in m->code).  Diagnostics are held and shown, after
 * a line naming the settings, only when there is an error. */
static bool check_model(sweep *s, model *m, const size_t *vi, const uint32_t *vbegin)
{
    ibc_source src = { s->spec_path, m->text, m->len };
    ibc_arena *a = arena_new();
    char *held = NULL;
    size_t hlen = 0;
    FILE *hf = open_memstream(&held, &hlen);
    if (!hf)
        sweep_oom();
    ibc_diag d;
    diag_init(&d, &src, hf);
    ast_node *root = parse_spec(a, &src, &d);
    bool ok = d.errors == 0 && root;
    for (size_t k = 0; ok && k < s->naxes; k++) {
        const axis *ax = &s->axes[k];
        if (ax->runtime)
            continue;
        edit e;
        sbuf err = { 0 };
        int r = sweep_resolve_key(a, &src, root, ax->key, &e, &err);
        size_t vlen = strlen(ax->values[vi[k]]);
        if (r != KEY_EDIT || e.end - e.begin != vlen || e.begin != vbegin[k] || *e.prefix) {
            ibc_loc at = { vbegin[k], vbegin[k] + (uint32_t)vlen };
            diag_error(&d, at, "'%s' is not one expression: it does not stand as the value of %s", ax->values[vi[k]],
                       ax->e.canon);
            ok = false;
        }
        free(err.s);
    }
    ibc_spec *sp = ok ? sema_check(a, root, &d) : NULL;
    ok = sp != NULL;
    if (ok) {
        m->steps = sp->train.steps;
        m->extend_steps = sp->train.extend_steps;
    }
    if (ok && s->mode == SWEEP_PREPARE) {
        FILE *code = open_memstream(&m->code, &m->code_len);
        if (!code)
            sweep_oom();
        design_result *r = NULL;
        if (sp->design.kind != DESIGN_NONE)
            r = design_synthesise(a, sp, &d);
        sym_derivation *dv = sym_derive(a, sp, &d);
        ok = (sp->design.kind == DESIGN_NONE || r) && dv && emit_program(code, sp, r, dv, &d);
        fclose(code);
        ok = ok && d.errors == 0;
    }
    if (!ok)
        diag_summary(&d);
    fclose(hf);
    if (!ok) {
        char *set = point_settings(s, vi, ", ");
        fprintf(stderr, "ibc sweep: error: %s with %s does not check (the lines are the spec's, with the values "
                "in place):\n", s->spec_path, set);
        fwrite(held, 1, hlen, stderr);
        free(set);
        free(m->code);
        m->code = NULL;
    }
    free(held);
    arena_free(a);
    return ok;
}

static void model_hash(model *m)
{
    unsigned long long h = ibrt_fnv1a(SWEEP_FNV_BASIS, m->text, m->len);
    h = ibrt_fnv1a(h, "\0" IBC_VERSION, sizeof IBC_VERSION);
    snprintf(m->hex, sizeof m->hex, "%016llx", h);
}

char *sweep_run_identity(const sweep *s, const run *r)
{
    const point *p = &s->points[r->point];
    return sweep_xprintf("model %s\nseed %llu\nsteps %ld\nmax_growth %s\n", s->models[p->model].hex, r->seed, p->steps,
                         s->max_growth ? s->max_growth : "default");
}

/* sweep_status: "status WORD\nexit N\n..." -> WORD into status (NULL when absent) */
bool sweep_read_status(const char *dir, char *status, size_t ssize, char *exitv, size_t esize, double *t0,
                       double *t1)
{
    char *path = sweep_xprintf("%s/sweep_status", dir);
    char *t = sweep_read_text(path, NULL);
    free(path);
    if (!t)
        return false;
    char w[64] = "", e[64] = "";
    double a = 0, b = 0;
    for (char *line = strtok(t, "\n"); line; line = strtok(NULL, "\n")) {
        if (!strncmp(line, "status ", 7))
            snprintf(w, sizeof w, "%s", line + 7);
        else if (!strncmp(line, "exit ", 5))
            snprintf(e, sizeof e, "%s", line + 5);
        else if (!strncmp(line, "started ", 8))
            a = strtod(line + 8, NULL);
        else if (!strncmp(line, "ended ", 6))
            b = strtod(line + 6, NULL);
    }
    free(t);
    if (!*w)
        return false;
    if (status)
        snprintf(status, ssize, "%s", w);
    if (exitv)
        snprintf(exitv, esize, "%s", e);
    if (t0)
        *t0 = a;
    if (t1)
        *t1 = b;
    return true;
}

/* The spec read and checked (its warnings once), the first seed and the
 * default --out. */
static int plan_spec(sweep *s)
{
    const char *err;
    if (!diag_source_read(&s->src, s->spec_path, &err)) {
        fprintf(stderr, "ibc sweep: error: cannot read '%s': %s\n", s->spec_path, err);
        return 1;
    }
    s->arena = arena_new();
    ibc_diag d;
    /* its warnings once: not again from every MPI rank */
    FILE *quiet = s->mode == SWEEP_ATTACH ? fopen("/dev/null", "w") : NULL;
    diag_init(&d, &s->src, quiet ? quiet : stderr);
    s->ast = parse_spec(s->arena, &s->src, &d);
    if (d.errors == 0)
        s->spec = sema_check(s->arena, s->ast, &d);
    diag_summary(&d);
    if (quiet)
        fclose(quiet);
    if (!s->spec) {
        fprintf(stderr, "ibc sweep: error: %s does not check (above): fix it before sweeping it\n", s->spec_path);
        return 1;
    }
    if (!s->seed_given)
        s->seed0 = s->spec->train.seed;
    if (s->seed0 + (unsigned long long)s->seeds - 1 > 2147483647ull) {
        fprintf(stderr, "ibc sweep: error: seeds %llu..%llu pass the trainer's largest seed, 2147483647: lower --seed\n",
                s->seed0, s->seed0 + (unsigned long long)s->seeds - 1);
        return 2;
    }
    if (!s->out)
        s->out = s->out_alloc = sweep_xprintf("results/%s-sweep", s->spec->model);
    return 0;
}

/* Every key to an edit (or to the trainer's --steps), refusing two axes on
 * one setting and grids past SWEEP_MAX_RUNS; the number of points. */
static int plan_axes(sweep *s, size_t *npoints_out)
{
    size_t npoints = 1;
    for (size_t k = 0; k < s->naxes; k++) {
        axis *ax = &s->axes[k];
        sbuf msg = { 0 };
        int r = sweep_resolve_key(s->arena, &s->src, s->ast, ax->key, &ax->e, &msg);
        if (r == KEY_ERROR) {
            fprintf(stderr, "ibc sweep: error: --set %s: %s\n", ax->key, msg.s);
            free(msg.s);
            return 2;
        }
        free(msg.s);
        if (r == KEY_STEPS) {
            ax->runtime = true;
            ax->e.canon = "train.steps";
            ax->steps = sweep_xcalloc(ax->nvalues, sizeof *ax->steps);
            for (size_t v = 0; v < ax->nvalues; v++)
                if (!sweep_parse_whole(ax->values[v], 1, IBC_MAX_STEPS, &ax->steps[v])) {
                    fprintf(stderr, "ibc sweep: error: --set %s: '%s' is not a number of steps (a whole number from 1 "
                            "to %ld; steps are the trainer's --steps)\n", ax->key, ax->values[v], IBC_MAX_STEPS);
                    return 2;
                }
        }
        for (size_t j = 0; j < k; j++) {
            const edit *a = &s->axes[j].e, *b = &ax->e;
            bool same = !strcmp(a->canon, b->canon);
            bool overlap = !s->axes[j].runtime && !ax->runtime &&
                           ((a->begin < b->end && b->begin < a->end) || (a->begin < b->begin && b->begin < a->end) ||
                            (b->begin < a->begin && a->begin < b->end));
            if (same || overlap) {
                fprintf(stderr, "ibc sweep: error: --set %s and --set %s change the same setting (%s): keep one\n",
                        s->axes[j].key, ax->key, same ? a->canon : "one inside the other");
                return 2;
            }
            /* two keys of a block the spec lacks (extend.steps and
             * extend.lr without an extend block): each edit would add
             * its own block at the same place, and the derived spec
             * would be refused */
            bool both_add_block = !s->axes[j].runtime && !ax->runtime && a->begin == a->end && b->begin == b->end &&
                                  a->begin == b->begin && strchr(a->prefix, '{') && strchr(b->prefix, '{');
            if (both_add_block) {
                const char *dot = strrchr(a->canon, '.');
                int blen = dot ? (int)(dot - a->canon) : (int)strlen(a->canon);
                fprintf(stderr, "ibc sweep: error: --set %s and --set %s: the spec has no %.*s block, and each would "
                        "add its own; write the block in the spec (e.g. extend { steps = 1000 }) and sweep both "
                        "keys of it\n", s->axes[j].key, ax->key, blen, a->canon);
                return 2;
            }
        }
        if (npoints > SWEEP_MAX_RUNS / ax->nvalues) {
            fprintf(stderr, "ibc sweep: error: the grid has more than %d points: sweep fewer values\n", SWEEP_MAX_RUNS);
            return 2;
        }
        npoints *= ax->nvalues;
    }
    if (npoints * (size_t)s->seeds > SWEEP_MAX_RUNS) {
        fprintf(stderr, "ibc sweep: error: %zu grid points x %ld seeds is more than %d runs: sweep fewer\n", npoints,
                s->seeds, SWEEP_MAX_RUNS);
        return 2;
    }
    *npoints_out = npoints;
    return 0;
}

/* The points (axis 0 slowest), their texts and the distinct models, each
 * checked once. */
static int plan_points(sweep *s, size_t npoints)
{
    s->npoints = npoints;
    s->points = sweep_xcalloc(npoints, sizeof *s->points);
    size_t mcap = 8;
    s->models = sweep_xcalloc(mcap, sizeof *s->models);
    size_t bad = 0;
    for (size_t p = 0; p < npoints; p++) {
        point *pt = &s->points[p];
        pt->vi = sweep_xcalloc(s->naxes ? s->naxes : 1, sizeof *pt->vi);
        size_t rem = p;
        for (size_t k = s->naxes; k-- > 0;) {
            pt->vi[k] = rem % s->axes[k].nvalues;
            rem /= s->axes[k].nvalues;
        }
        for (size_t k = 0; k < s->naxes; k++)
            if (s->axes[k].runtime)
                pt->steps = s->axes[k].steps[pt->vi[k]];
        uint32_t vbegin[SWEEP_MAX_AXES];
        model m;
        memset(&m, 0, sizeof m);
        m.text = derive_text(s, pt->vi, &m.len, vbegin);
        model_hash(&m);
        size_t j = 0;
        while (j < s->nmodels && (strcmp(s->models[j].hex, m.hex) || s->models[j].len != m.len ||
                                  memcmp(s->models[j].text, m.text, m.len)))
            j++;
        if (j == s->nmodels) {
            m.first_point = p;
            if (!check_model(s, &m, pt->vi, vbegin)) {
                free(m.text);
                if (++bad >= 5) {
                    fprintf(stderr, "ibc sweep: error: stopping after 5 grid points that do not check\n");
                    return 2;
                }
                pt->model = (size_t)-1;
                continue;
            }
            if (s->nmodels == mcap)
                s->models = sweep_xrealloc(s->models, (mcap *= 2) * sizeof *s->models);
            s->models[s->nmodels++] = m;
        } else
            free(m.text);
        pt->model = j;
        char *raw = point_settings(s, pt->vi, "_");
        pt->settings = point_settings(s, pt->vi, ", ");
        pt->label = sweep_safe_name(raw, 80);
        if (strcmp(pt->label, raw)) {
            unsigned long long h = ibrt_fnv1a(SWEEP_FNV_BASIS, raw, strlen(raw));
            char *l = sweep_xprintf("%s-%08llx", pt->label, h & 0xffffffffull);
            free(pt->label);
            pt->label = l;
        }
        free(raw);
    }
    if (bad) {
        fprintf(stderr, "ibc sweep: error: %zu grid point%s above do%s not check: change the --set values; nothing "
                "was run\n", bad, bad > 1 ? "s" : "", bad > 1 ? "" : "es");
        return 2;
    }
    return 0;
}

/* The runs and what each directory holds (new, to resume, finished),
 * refusing directories of another sweep. */
static int plan_runs(sweep *s, size_t npoints)
{
    s->nruns = npoints * (size_t)s->seeds;
    s->runs = sweep_xcalloc(s->nruns, sizeof *s->runs);
    size_t foreign = 0;
    for (size_t i = 0; i < s->nruns; i++) {
        run *r = &s->runs[i];
        r->point = i / (size_t)s->seeds;
        r->seed = s->seed0 + i % (size_t)s->seeds;
        r->rel = sweep_xprintf("runs/%s/seed_%llu", s->points[r->point].label, r->seed);
        r->dir = sweep_xprintf("%s/%s", s->out, r->rel);
        char *idp = sweep_xprintf("%s/sweep_run", r->dir), *have = sweep_read_text(idp, NULL);
        char *want = sweep_run_identity(s, r);
        if (have && strcmp(have, want)) {
            if (foreign++ < 3)
                fprintf(stderr, "ibc sweep: error: %s holds a run of another spec text or settings (was the spec "
                        "changed?)\n", r->dir);
        }
        free(idp);
        free(have);
        free(want);
        char st[64];
        if (sweep_read_status(r->dir, st, sizeof st, NULL, 0, NULL, NULL)) {
            r->state = RUN_FINISHED;
            r->failed = strcmp(st, "complete") != 0;
        } else {
            char *ck = sweep_xprintf("%s/checkpoint.bin", r->dir);
            r->state = sweep_exists(ck) ? RUN_RESUME : RUN_NEW;
            free(ck);
        }
    }
    if (foreign) {
        fprintf(stderr, "ibc sweep: error: %zu run director%s in %s belong%s to another sweep: sweep into another "
                "--out, or remove %s/runs to start over\n", foreign, foreign > 1 ? "ies" : "y", s->out,
                foreign > 1 ? "" : "s", s->out);
        return 2;
    }
    return 0;
}

/* The grid: axes resolved, points, models (checked), runs and their state. */
int sweep_plan(sweep *s)
{
    size_t npoints;
    int status = plan_spec(s);
    if (!status)
        status = plan_axes(s, &npoints);
    if (!status)
        status = plan_points(s, npoints);
    if (!status)
        status = plan_runs(s, npoints);
    return status;
}

void sweep_print_plan(const sweep *s)
{
    size_t done = 0, resume = 0;
    for (size_t i = 0; i < s->nruns; i++) {
        done += s->runs[i].state == RUN_FINISHED;
        resume += s->runs[i].state == RUN_RESUME;
    }
    printf("sweep of %s into %s: %zu grid point%s x %ld seed%s (%llu..%llu) = %zu run%s, %zu trainer%s\n",
           s->spec_path, s->out, s->npoints, s->npoints == 1 ? "" : "s", s->seeds, s->seeds == 1 ? "" : "s",
           s->seed0, s->seed0 + (unsigned long long)s->seeds - 1, s->nruns, s->nruns == 1 ? "" : "s", s->nmodels,
           s->nmodels == 1 ? "" : "s");
    for (size_t k = 0; k < s->naxes; k++) {
        printf("  axis %s (%s%s):", s->axes[k].key, s->axes[k].e.canon,
               s->axes[k].runtime ? ", the trainer's --steps" : "");
        for (size_t v = 0; v < s->axes[k].nvalues; v++)
            printf(" %s", s->axes[k].values[v]);
        printf("\n");
    }
    for (size_t p = 0; p < s->npoints; p++)
        printf("  point %zu: %s -> models/%s, runs/%s\n", p, s->points[p].settings,
               s->models[s->points[p].model].hex, s->points[p].label);
    printf("runs: %zu finished, %zu to resume from a checkpoint, %zu to start\n", done, resume,
           s->nruns - done - resume);
}

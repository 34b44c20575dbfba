/*
 * sweep_grid.c: the sweep's command line and its axes.  sweep_parse_args
 * fills the command-line half of struct sweep (axes with their values,
 * seeds, jobs, --out, --plot, ...) and refuses bad usage with exit status
 * 2; sweep_resolve_key turns one --set KEY into an edit of the spec's text
 * (where the value goes, with what around it), found in the spec's syntax
 * tree, or into the trainer's --steps.  Nothing is read but the command
 * line and the parsed spec; the edits are applied by sweep_plan.c.
 */
#include "sweep_impl.h"

/* ------------------------------------------------------- the command line */

static int usage_error(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "ibc sweep: error: ");
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, "\nusage: %s\nrun 'ibc sweep --help' for the options\n", sweep_usage);
    return 2;
}

bool sweep_parse_whole(const char *v, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (!*v || *end || errno || x < lo || x > hi)
        return false;
    *out = x;
    return true;
}

/* Splits a comma-separated list at its top-level commas (not inside
 * brackets or strings); false when brackets or quotes do not balance. */
static bool split_values(const char *list, char ***out, size_t *n)
{
    size_t cap = 4;
    char **v = sweep_xmalloc(cap * sizeof *v);
    *n = 0;
    int depth = 0;
    bool quote = false;
    const char *start = list;
    for (const char *c = list;; c++) {
        if (quote) {
            if (!*c)
                goto bad;
            if (*c == '"')
                quote = false;
            continue;
        }
        if (*c == '"')
            quote = true;
        else if (*c == '(' || *c == '[')
            depth++;
        else if (*c == ')' || *c == ']') {
            if (--depth < 0)
                goto bad;
        } else if ((*c == ',' && depth == 0) || !*c) {
            if (!*c && depth)
                goto bad;
            const char *b = start, *e = c;
            while (b < e && (*b == ' ' || *b == '\t'))
                b++;
            while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
                e--;
            if (*n == cap)
                v = sweep_xrealloc(v, (cap *= 2) * sizeof *v);
            v[*n] = sweep_xmalloc((size_t)(e - b) + 1);
            memcpy(v[*n], b, (size_t)(e - b));
            v[*n][e - b] = '\0';
            (*n)++;
            if (!*c)
                break;
            start = c + 1;
        }
    }
    *out = v;
    return true;
bad:
    for (size_t i = 0; i < *n; i++)
        free(v[i]);
    free(v);
    *n = 0;
    return false;
}

/* A value must be one expression of the spec language and nothing else:
 * NULL when it is, else what is wrong. */
static const char *value_problem(const char *v)
{
    if (!*v)
        return "an empty value";
    for (const unsigned char *c = (const unsigned char *)v; *c; c++) {
        if (*c < 0x20 || *c == 0x7f)
            return "a control character (a newline, a tab ...)";
        if (strchr(";#{}\\", *c))
            return "one of ; # { } \\ (a value is one expression)";
    }
    return NULL;
}

/* The command line as sweep.md shows it: quoted where a shell would need
 * it, "ibc sweep ..." when main passes argv[0] "sweep". */
static char *shown_cmdline(int argc, char **argv)
{
    sbuf cmd = { 0 };
    for (int i = 0; i < argc; i++) {
        if (i)
            sweep_sb_add(&cmd, " ", 1);
        /* shown quoted where a shell would need it (sweep.md) */
        if (strpbrk(argv[i], " \t\n'\"\\$`*?[]()<>|&;#~!{}") || !*argv[i]) {
            sweep_sb_add(&cmd, "'", 1);
            for (const char *c = argv[i]; *c; c++)
                if (*c == '\'')
                    sweep_sb_puts(&cmd, "'\\''");
                else
                    sweep_sb_add(&cmd, c, 1);
            sweep_sb_add(&cmd, "'", 1);
        } else
            sweep_sb_puts(&cmd, argv[i]);
    }
    char *line = sweep_sb_take(&cmd);
    if (!strcmp(argv[0], "sweep")) {   /* `ibc sweep`, as main passes it */
        char *c = sweep_xprintf("ibc %s", line);
        free(line);
        line = c;
    }
    return line;
}

/* --set KEY=V1,V2,...: a new axis (its values split and each checked to be
 * one expression); 0, or 2 after a message. */
static int parse_set(sweep *s, const char *v)
{
    const char *eq = strchr(v, '=');
    if (!eq || eq == v)
        return usage_error("--set '%s': expected KEY=V1,V2,... (e.g. --set lr=1e-4,1e-3)%s", v, "");
    if (s->naxes == SWEEP_MAX_AXES)
        return usage_error("more than %s axes%s", "16", "");
    axis *ax = &s->axes[s->naxes];
    char *key = sweep_xmalloc((size_t)(eq - v) + 1);
    memcpy(key, v, (size_t)(eq - v));
    key[eq - v] = '\0';
    for (size_t k = 0; k < s->naxes; k++)
        if (!strcmp(s->axes[k].key, key)) {
            free(key);
            return usage_error("--set %s is given twice: put every value in one list (--set %s=V1,V2,...)",
                               s->axes[k].key, s->axes[k].key);
        }
    ax->key = key;
    s->naxes++;
    if (!split_values(eq + 1, &ax->values, &ax->nvalues))
        return usage_error("--set %s: brackets or quotes do not balance in '%s'", key, eq + 1);
    for (size_t k = 0; k < ax->nvalues; k++) {
        const char *p = value_problem(ax->values[k]);
        if (p) {
            fprintf(stderr, "ibc sweep: error: --set %s: value %zu ('%s') holds %s\n", key, k + 1,
                    ax->values[k], p);
            return 2;
        }
        for (size_t j = 0; j < k; j++)
            if (!strcmp(ax->values[j], ax->values[k]))
                return usage_error("--set %s: the value '%s' is given twice", key, ax->values[k]);
    }
    return 0;
}

int sweep_parse_args(sweep *s, int argc, char **argv)
{
    s->cmdline = shown_cmdline(argc, argv);
    s->seeds = 1;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    s->jobs = ncpu > 0 ? (int)ncpu : 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long x;
        bool takes = !strcmp(a, "--set") || !strcmp(a, "--seeds") || !strcmp(a, "--seed") || !strcmp(a, "--jobs") ||
                     !strcmp(a, "--out") || !strcmp(a, "--plot") || !strcmp(a, "--checkpoint-every") ||
                     !strcmp(a, "--max-growth");
        if (takes && !v)
            return usage_error("%s needs a value%s", a, "");
        if (!strcmp(a, "--set")) {
            int r = parse_set(s, v);
            if (r)
                return r;
            i++;
        } else if (!strcmp(a, "--seeds")) {
            if (!sweep_parse_whole(v, 1, 10000, &x))
                return usage_error("--seeds '%s': expected a whole number from 1 to 10000%s", v, "");
            s->seeds = x;
            i++;
        } else if (!strcmp(a, "--seed")) {
            if (!sweep_parse_whole(v, 0, 2147483647L, &x))
                return usage_error("--seed '%s': expected a whole number from 0 to 2147483647%s", v, "");
            s->seed0 = (unsigned long long)x;
            s->seed_given = true;
            i++;
        } else if (!strcmp(a, "--jobs")) {
            if (!sweep_parse_whole(v, 1, 4096, &x))
                return usage_error("--jobs '%s': expected a whole number from 1 to 4096%s", v, "");
            s->jobs = (int)x;
            i++;
        } else if (!strcmp(a, "--out")) {
            if (!*v)
                return usage_error("--out needs a directory%s%s", "", "");
            s->out = v;
            i++;
        } else if (!strcmp(a, "--plot")) {
            char **names;
            size_t n;
            if (!split_values(v, &names, &n))
                return usage_error("--plot '%s': expected metric names separated by commas%s", v, "");
            for (size_t k = 0; k < n; k++)
                if (!*names[k])
                    return usage_error("--plot '%s': an empty metric name%s", v, "");
            s->plot = names;
            s->nplot = n;
            i++;
        } else if (!strcmp(a, "--checkpoint-every")) {
            if (!sweep_parse_whole(v, 1, 1000000000L, &x))
                return usage_error("--checkpoint-every '%s': expected a whole number from 1 to 1000000000%s", v, "");
            s->checkpoint_every = x;
            i++;
        } else if (!strcmp(a, "--max-growth")) {
            char *end;
            double g = strtod(v, &end);
            if (!*v || *end || !(g > 1) || !isfinite(g))
                return usage_error("--max-growth '%s': expected a finite number greater than 1%s", v, "");
            s->max_growth = v;
            i++;
        } else if (!strcmp(a, "--dry-run")) {
            s->dry_run = true;
        } else if (a[0] == '-' && a[1]) {
            return usage_error("unknown option '%s'%s", a, "");
        } else if (s->spec_path) {
            return usage_error("a second spec '%s' (one spec per sweep)%s", a, "");
        } else
            s->spec_path = a;
    }
    if (!s->spec_path)
        return usage_error("no spec given%s%s", "", "");
    return 0;
}

/* ------------------------------------------------- keys: edits of the text */

static ast_node *find_stmt(ast_node *root, ast_kind kind, const char *name)
{
    for (size_t i = 0; i < root->nkids; i++) {
        ast_node *n = root->kids[i];
        if (n && n->kind == kind && (!name || (n->name && !strcmp(n->name, name))))
            return n;
    }
    return NULL;
}

/* The '{' of a block that starts at or after `from` on the same line, or -1. */
static long block_brace(const ibc_source *src, uint32_t from, uint32_t limit)
{
    for (uint32_t i = from; i < limit && i < src->len; i++) {
        char c = src->text[i];
        if (c == '{')
            return (long)i;
        if (c == '\n' || c == ';')
            return -1;
    }
    return -1;
}

/* A setting `name op value` of a block statement: its value replaced, or
 * inserted after the '{' (or as a new block when the statement has none). */
static void edit_block(ibc_arena *a, const ibc_source *src, ast_node *stmt, long brace, const char *name, int op,
                       edit *e)
{
    for (size_t i = 0; i < stmt->nkids; i++) {
        ast_node *k = stmt->kids[i];
        if (k && k->kind == AST_SETTING && !k->rhs && k->name && !strcmp(k->name, name) && k->lhs) {
            e->begin = k->lhs->loc.begin;
            e->end = k->lhs->loc.end;
            e->prefix = e->suffix = "";
            return;
        }
    }
    (void)src;
    if (brace >= 0) {
        e->begin = e->end = (uint32_t)brace + 1;
        e->prefix = arena_printf(a, "%s %c ", name, op);
        e->suffix = "; ";
    } else {
        e->begin = e->end = stmt->loc.end;
        e->prefix = arena_printf(a, " { %s %c ", name, op);
        e->suffix = " }";
    }
}

/* A keyword argument of a call: its value replaced, or added before ')'. */
static bool edit_kwarg(ibc_arena *a, const ibc_source *src, ast_node *call, const char *name, edit *e)
{
    for (size_t i = 0; i < call->nkids; i++) {
        ast_node *k = call->kids[i];
        if (k && k->kind == AST_KWARG && k->name && !strcmp(k->name, name) && k->lhs) {
            e->begin = k->lhs->loc.begin;
            e->end = k->lhs->loc.end;
            e->prefix = e->suffix = "";
            return true;
        }
    }
    if (call->loc.end == 0 || call->loc.end > src->len || src->text[call->loc.end - 1] != ')')
        return false;
    e->begin = e->end = call->loc.end - 1;
    e->prefix = arena_printf(a, "%s%s = ", call->nkids ? ", " : "", name);
    e->suffix = "";
    return true;
}

static bool in_list(const char *w, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(w, list[i]))
            return true;
    return false;
}

static const char *const train_keys[] = { "lr", "batch", "record_every" };
static const char *const design_eq_keys[] = { "depth", "strength", "rank", "lr" };
static const char *const verify_keys[] = { "invariance_tol", "gradient_tol", "logdet_tol", "stationary_beta",
                                           "stationary_eps" };

/* Every key this spec accepts, for "did you mean" and the error's list. */
static size_t key_candidates(ibc_arena *a, ast_node *root, const char **c, size_t cap)
{
    size_t n = 0;
#define ADD(s)            \
    do {                  \
        if (n < cap)      \
            c[n++] = (s); \
    } while (0)
    ADD("lr");
    ADD("steps");
    ADD("batch");
    ADD("record_every");
    ADD("extend.steps");
    ADD("extend.lr");
    if (find_stmt(root, AST_DESIGN, NULL)) {
        ADD("depth");
        ADD("strength");
        ADD("rank");
        ADD("design.lr");
        ADD("design.init");
    }
    for (size_t i = 0; i < root->nkids; i++) {
        ast_node *s = root->kids[i];
        if (!s)
            continue;
        if (s->kind == AST_DIM && s->name)
            ADD(s->name);
        else if (s->kind == AST_PARAM && s->name)
            ADD(arena_printf(a, "param.%s", s->name));
        else if ((s->kind == AST_DATA || s->kind == AST_INIT) && s->lhs && s->lhs->kind == AST_CALL)
            for (size_t k = 0; k < s->lhs->nkids; k++)
                if (s->lhs->kids[k]->kind == AST_KWARG)
                    ADD(arena_printf(a, "%s.%s", s->kind == AST_DATA ? "data" : "init", s->lhs->kids[k]->name));
        if (s->kind == AST_BASELINE && s->lhs && s->lhs->name) {
            ADD(arena_printf(a, "%s.lr", s->lhs->name));
            if (s->lhs->kind == AST_CALL)
                for (size_t k = 0; k < s->lhs->nkids; k++)
                    if (s->lhs->kids[k]->kind == AST_KWARG)
                        ADD(arena_printf(a, "%s.%s", s->lhs->name, s->lhs->kids[k]->name));
        }
    }
    for (size_t i = 0; i < sizeof verify_keys / sizeof *verify_keys; i++)
        ADD(arena_printf(a, "verify.%s", verify_keys[i]));
#undef ADD
    return n;
}

/* train.KEY: a setting of the train block (steps: the trainer's --steps) */
static int key_train(ibc_arena *a, const ibc_source *src, ast_node *root, const char *rest, edit *e, sbuf *err)
{
    ast_node *t = find_stmt(root, AST_TRAIN, NULL);
    if (!strcmp(rest, "steps"))
        return KEY_STEPS;
    if (!strcmp(rest, "seed")) {
        sweep_sb_puts(err, "the seed is not an axis: --seeds K runs seeds S..S+K-1 at every grid point "
                           "(--seed S sets S)");
        return KEY_ERROR;
    }
    if (!in_list(rest, train_keys, 3)) {
        sweep_sb_printf(err, "'%s' is not a setting of train (lr, steps, batch, record_every, extend.steps, extend.lr)",
                        rest);
        return KEY_ERROR;
    }
    if (!t)
        return sweep_sb_puts(err, "the spec has no train block"), KEY_ERROR;
    edit_block(a, src, t, block_brace(src, t->loc.begin, t->loc.end), rest, '=', e);
    e->canon = arena_printf(a, "train.%s", rest);
    return KEY_EDIT;
}

/* extend.KEY (train.extend.KEY): in the train block's extend block, made
 * when absent */
static int key_extend(ibc_arena *a, const ibc_source *src, ast_node *root, const char *rest, edit *e, sbuf *err)
{
    ast_node *t = find_stmt(root, AST_TRAIN, NULL);
    if (strcmp(rest, "steps") && strcmp(rest, "lr")) {
        sweep_sb_printf(err, "'%s' is not a setting of extend (steps, lr)", rest);
        return KEY_ERROR;
    }
    if (!t)
        return sweep_sb_puts(err, "the spec has no train block"), KEY_ERROR;
    ast_node *x = NULL;
    for (size_t i = 0; i < t->nkids; i++)
        if (t->kids[i] && t->kids[i]->kind == AST_BLOCK && t->kids[i]->name && !strcmp(t->kids[i]->name, "extend"))
            x = t->kids[i];
    if (x)
        edit_block(a, src, x, block_brace(src, x->name_loc.end, x->loc.end), rest, '=', e);
    else {
        long brace = block_brace(src, t->loc.begin, t->loc.end);
        if (brace < 0)
            return sweep_sb_puts(err, "the train block has no '{'"), KEY_ERROR;
        e->begin = e->end = (uint32_t)brace + 1;
        e->prefix = arena_printf(a, "extend { %s = ", rest);
        e->suffix = " }; ";
    }
    e->canon = arena_printf(a, "train.extend.%s", rest);
    return KEY_EDIT;
}

/* design.KEY: depth/strength/rank/lr settings (depth and strength replace
 * each other), init or a factor's distribution */
static int key_design(ibc_arena *a, const ibc_source *src, ast_node *root, const char *rest, edit *e, sbuf *err)
{
    ast_node *d = find_stmt(root, AST_DESIGN, NULL);
    if (!d) {
        sweep_sb_printf(err, "the spec has no design statement, so no design setting ('%s')", rest);
        return KEY_ERROR;
    }
    long brace = d->lhs ? block_brace(src, d->lhs->loc.end, d->loc.end) : -1;
    if (in_list(rest, design_eq_keys, 4)) {
        /* depth and strength say the same: setting one replaces the other */
        const char *other = !strcmp(rest, "depth") ? "strength" : !strcmp(rest, "strength") ? "depth" : NULL;
        bool has = false;
        ast_node *o = NULL;
        for (size_t i = 0; i < d->nkids; i++) {
            ast_node *k = d->kids[i];
            if (k && k->kind == AST_SETTING && k->name && !strcmp(k->name, rest))
                has = true;
            if (k && k->kind == AST_SETTING && k->name && other && !strcmp(k->name, other))
                o = k;
        }
        if (!has && o) {
            e->begin = o->loc.begin;
            e->end = o->loc.end;
            e->prefix = arena_printf(a, "%s = ", rest);
            e->suffix = "";
        } else
            edit_block(a, src, d, brace, rest, '=', e);
    } else {
        /* init or a factor: a distribution */
        bool ident = (rest[0] >= 'a' && rest[0] <= 'z') || (rest[0] >= 'A' && rest[0] <= 'Z') || rest[0] == '_';
        for (const char *c = rest; *c && ident; c++)
            ident = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_';
        if (!ident) {
            sweep_sb_printf(err, "'%s' is not a setting of design (depth, strength, rank, lr, init or a factor's name)",
                            rest);
            return KEY_ERROR;
        }
        edit_block(a, src, d, brace, rest, '~', e);
    }
    e->canon = arena_printf(a, "design.%s", rest);
    return KEY_EDIT;
}

/* data.ARG, init.ARG: a keyword argument of the data or init statement's
 * call */
static int key_call(ibc_arena *a, const ibc_source *src, ast_node *root, const char *key, const char *head,
                    const char *rest, edit *e, sbuf *err)
{
    ast_node *st = find_stmt(root, !strcmp(head, "data") ? AST_DATA : AST_INIT, NULL);
    if (!st || !st->lhs || st->lhs->kind != AST_CALL) {
        sweep_sb_printf(err, "the spec has no %s statement", head);
        return KEY_ERROR;
    }
    if (!edit_kwarg(a, src, st->lhs, rest, e)) {
        sweep_sb_printf(err, "cannot place %s in the %s statement", key, head);
        return KEY_ERROR;
    }
    e->canon = arena_printf(a, "%s.%s", head, rest);
    return KEY_EDIT;
}

/* dim.NAME: a dim's value */
static int key_dim(ibc_arena *a, ast_node *root, const char *rest, edit *e, sbuf *err)
{
    ast_node *d = find_stmt(root, AST_DIM, rest);
    if (!d || !d->lhs) {
        sweep_sb_printf(err, "the spec has no dim '%s'", rest);
        return KEY_ERROR;
    }
    e->begin = d->lhs->loc.begin;
    e->end = d->lhs->loc.end;
    e->prefix = e->suffix = "";
    e->canon = arena_printf(a, "dim.%s", rest);
    return KEY_EDIT;
}

/* param.NAME: a parameter's initialisation */
static int key_param(ibc_arena *a, ast_node *root, const char *rest, edit *e, sbuf *err)
{
    ast_node *p = find_stmt(root, AST_PARAM, rest);
    if (!p) {
        sweep_sb_printf(err, "the spec has no param '%s'", rest);
        return KEY_ERROR;
    }
    if (p->lhs) {
        e->begin = p->lhs->loc.begin;
        e->end = p->lhs->loc.end;
        e->prefix = e->suffix = "";
    } else {
        e->begin = e->end = p->loc.end;
        e->prefix = " ~ ";
        e->suffix = "";
    }
    e->canon = arena_printf(a, "param.%s", rest);
    return KEY_EDIT;
}

/* verify.KEY: a setting of the verify block, made after the last line when
 * absent */
static int key_verify(ibc_arena *a, const ibc_source *src, ast_node *root, const char *rest, edit *e, sbuf *err)
{
    if (!in_list(rest, verify_keys, sizeof verify_keys / sizeof *verify_keys)) {
        sweep_sb_printf(err, "'%s' is not a setting of verify", rest);
        return KEY_ERROR;
    }
    ast_node *v = find_stmt(root, AST_VERIFY, NULL);
    if (v)
        edit_block(a, src, v, block_brace(src, v->loc.begin, v->loc.end), rest, '=', e);
    else {
        /* a new statement after the last line */
        e->begin = e->end = (uint32_t)src->len;
        bool nl = src->len && src->text[src->len - 1] == '\n';
        e->prefix = arena_printf(a, "%sverify { %s = ", nl ? "" : "\n", rest);
        e->suffix = " }\n";
    }
    e->canon = arena_printf(a, "verify.%s", rest);
    return KEY_EDIT;
}

/* NAME.KEY: a baseline by its name (vanilla.lr, l1.lr, l1.weight); -1 when
 * no baseline has that name */
static int key_baseline(ibc_arena *a, const ibc_source *src, ast_node *root, const char *key, const char *head,
                        const char *rest, edit *e, sbuf *err)
{
    /* a baseline by its name: vanilla.lr, l1.lr, l1.weight */
    ast_node *b = NULL;
    size_t count = 0;
    for (size_t i = 0; i < root->nkids; i++) {
        ast_node *s = root->kids[i];
        if (s && s->kind == AST_BASELINE && s->lhs && s->lhs->name && !strcmp(s->lhs->name, head)) {
            b = b ? b : s;
            count++;
        }
    }
    if (b && count > 1) {
        sweep_sb_printf(err, "the spec has %zu baselines named '%s': a key names one", count, head);
        return KEY_ERROR;
    }
    if (b && !strcmp(rest, "lr")) {
        edit_block(a, src, b, block_brace(src, b->lhs->loc.end, b->loc.end), "lr", '=', e);
        e->canon = arena_printf(a, "baseline.%s.lr", head);
        return KEY_EDIT;
    }
    if (b && b->lhs->kind == AST_CALL) {
        if (!edit_kwarg(a, src, b->lhs, rest, e)) {
            sweep_sb_printf(err, "cannot place %s in the baseline", key);
            return KEY_ERROR;
        }
        e->canon = arena_printf(a, "baseline.%s.%s", head, rest);
        return KEY_EDIT;
    }
    if (b) {
        sweep_sb_printf(err, "baseline %s takes no argument '%s' (only lr)", head, rest);
        return KEY_ERROR;
    }
    return -1;
}

/* KEY against the spec's syntax tree (sweep_impl.h): a short key (lr,
 * depth, a dim's or a parameter's name) is resolved as its long form,
 * then HEAD.REST goes to the resolver of HEAD. */
int sweep_resolve_key(ibc_arena *a, const ibc_source *src, ast_node *root, const char *key, edit *e, sbuf *err)
{
    memset(e, 0, sizeof *e);
    const char *dot = strchr(key, '.');
    char head[128];
    const char *rest = dot ? dot + 1 : NULL;
    snprintf(head, sizeof head, "%.*s", dot ? (int)(dot - key) : (int)strlen(key), key);
    if (!rest && in_list(key, design_eq_keys, 3))   /* depth, strength, rank: the design's */
        return sweep_resolve_key(a, src, root, arena_printf(a, "design.%s", key), e, err);
    if (!rest && (!strcmp(key, "lr") || !strcmp(key, "batch") || !strcmp(key, "record_every") ||
                  !strcmp(key, "steps") || !strcmp(key, "seed")))
        return sweep_resolve_key(a, src, root, arena_printf(a, "train.%s", key), e, err);
    if (!rest) {
        ast_node *d = find_stmt(root, AST_DIM, key);
        if (d)
            return sweep_resolve_key(a, src, root, arena_printf(a, "dim.%s", key), e, err);
        if (find_stmt(root, AST_PARAM, key)) {
            sweep_sb_printf(err, "'%s' is a parameter: its initialisation is param.%s "
                            "(e.g. --set 'param.%s=normal(0, 0.1)')", key, key, key);
            return KEY_ERROR;
        }
    }
    e->canon = key;
    if (rest && !strcmp(head, "train"))
        return key_train(a, src, root, rest, e, err);
    if (rest && !strcmp(head, "extend"))
        return key_extend(a, src, root, rest, e, err);
    if (rest && !strcmp(head, "design"))
        return key_design(a, src, root, rest, e, err);
    if (rest && (!strcmp(head, "data") || !strcmp(head, "init")))
        return key_call(a, src, root, key, head, rest, e, err);
    if (rest && !strcmp(head, "dim"))
        return key_dim(a, root, rest, e, err);
    if (rest && !strcmp(head, "param"))
        return key_param(a, root, rest, e, err);
    if (rest && !strcmp(head, "verify"))
        return key_verify(a, src, root, rest, e, err);
    if (rest) {
        int r = key_baseline(a, src, root, key, head, rest, e, err);
        if (r >= 0)
            return r;
    }
    const char *cand[256];
    size_t n = key_candidates(a, root, cand, 256);
    const char *best = diag_suggest(key, cand, n);
    sweep_sb_printf(err, "'%s' is not a setting of this spec", key);
    if (best)
        sweep_sb_printf(err, "; did you mean '%s'?", best);
    sweep_sb_puts(err, "\n  keys of this spec:");
    for (size_t i = 0; i < n; i++)
        sweep_sb_printf(err, " %s", cand[i]);
    return KEY_ERROR;
}

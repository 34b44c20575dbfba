/*
 * emit_torch.c: the PyTorch export (emit_torch.h), `ibc emit --target torch`.
 *
 * Contract.  In: a checked spec, its design (or NULL) and the derivation
 * of its own model, exactly what emit.c's C trainer is generated from.
 * Out: one Python module (torch and the standard library only) with
 *
 *   - a torch.nn.Module per model of the C trainer, named Designed,
 *     Vanilla, L1 (a design target and its baselines) or Model (a spec
 *     without one): the spec's parameters (names, shapes, initial
 *     distributions; the C trainer's random stream is not reproduced),
 *     `forward` the predictor, `penalty` the baseline's L1 term, LR the
 *     model's learning rate in the trainer, and at its current parameters
 *     `dual_slices` (chi per torus family, C = Gram(A) - Gram(B) per GL(r)
 *     junction), `balance` (the ratio of each two-block family, with the
 *     two exact predictions of docs/theory.md §4) and `predicted_bias`;
 *   - loss_fn, the spec's loss as the trainer computes it;
 *   - Reparam and register_design (design targets): the designed
 *     reparameterisation on any tensor of the right size, through
 *     torch.nn.utils.parametrize; requested_bias, the penalty asked for;
 *   - write_snapshot: parameters (and gradients) in the layout `ibc verify`
 *     reads (docs/interop.md);
 *   - the derivation (`ibc derive`'s text) as the module's docstring.
 *
 * How.  The export is three files (emit_torch_impl.h says which owns
 * what).  This one writes the module top to bottom: the models as emit.c's
 * trainer has them, the docstring, the constants, the fixed helpers (no
 * spec text in them), loss_fn and the models' base class, then each
 * model's class (emit_torch_model.c), the design's Reparam, the
 * module-level functions and MODELS.  The predictor and the design's
 * expressions are translated by emit_torch_expr.c from the checked AST
 * the C lowering (emit_lower.c) starts from; each intermediate is one
 * line `vN = ...` with the expression it computes as a comment.
 * Constructs the C code generator refuses (an operator C cannot apply, a
 * constant operand of '@') are refused here too, with a located error.
 *
 * Safety: spec text reaches Python only through py_str/py_str_body
 * (escaped, ASCII only) and py_comment (no line breaks, ASCII only);
 * parameter and input names through py_name (see emit_torch.h).
 */
#include "emit_torch_impl.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------- fixed helpers */

/* The fixed helpers every module has (no spec text in them). */
static const char *const py_helpers =
    "# ---------------------------------------------------------------- operators\n"
    "# A fixed operator applied along dimension `dim` of z: -1 for a vector's\n"
    "# entries, -2 for each column of a matrix (the batch dimension first, as\n"
    "# everywhere in this module).  O(n) where the structure allows, as in the\n"
    "# C trainer (runtime/ops.c); the DCT in O(n log n) through the FFT;\n"
    "# operators read from files are dense matrices.\n"
    "\n\n"
    "def _ibc_diff(z, dim):\n"
    "    \"\"\"diff(n) z: z_0, z_1 - z_0, ..., z_(n-1) - z_(n-2).\"\"\"\n"
    "    return torch.diff(z, dim=dim, prepend=torch.zeros_like(z.narrow(dim, 0, 1)))\n"
    "\n\n"
    "def _ibc_diff_t(z, dim):\n"
    "    \"\"\"diff(n)' z: z_i - z_(i+1), and z_(n-1) last.\"\"\"\n"
    "    return -torch.diff(z, dim=dim, append=torch.zeros_like(z.narrow(dim, 0, 1)))\n"
    "\n\n"
    "def _ibc_cumsum(z, dim):\n"
    "    \"\"\"diff(n)^-1 z: the running sum.\"\"\"\n"
    "    return torch.cumsum(z, dim=dim)\n"
    "\n\n"
    "def _ibc_cumsum_t(z, dim):\n"
    "    \"\"\"(diff(n)^-1)' z: the running sum from the end.\"\"\"\n"
    "    return torch.flip(torch.cumsum(torch.flip(z, (dim,)), dim=dim), (dim,))\n"
    "\n\n"
    "def _ibc_apply(m, z, dim):\n"
    "    \"\"\"The matrix m applied along dimension dim of z.\"\"\"\n"
    "    return m @ z if dim == -2 else z @ m.transpose(0, 1)\n"
    "\n\n"
    "def _ibc_scale(z, d, dim, inverse=False):\n"
    "    \"\"\"diag(d) z, or diag(d)^-1 z.\"\"\"\n"
    "    if dim == -2:\n"
    "        d = d.unsqueeze(-1)\n"
    "    return z / d if inverse else z * d\n"
    "\n\n"
    "def _ibc_dct_matrix(n, dtype):\n"
    "    \"\"\"dct(n) as a matrix, its definition: the orthonormal DCT-II of\n"
    "    runtime/ops.c, row k is c_k cos(pi (i + 1/2) k / n), c_0 = sqrt(1/n),\n"
    "    c_k = sqrt(2/n), the argument pi (2i + 1) k / (2n) with (2i + 1) k\n"
    "    reduced modulo 4n first, as there.  Not used by the models (_ibc_dct\n"
    "    applies it in O(n log n)); tests/torch compares the two.\"\"\"\n"
    "    i = torch.arange(n, dtype=torch.int64).unsqueeze(0)\n"
    "    k = torch.arange(n, dtype=torch.int64).unsqueeze(1)\n"
    "    r = ((2 * i + 1) * k % (4 * n)).to(torch.float64)\n"
    "    c = torch.full((n, 1), math.sqrt(2.0 / n), dtype=torch.float64)\n"
    "    c[0, 0] = math.sqrt(1.0 / n)\n"
    "    return (c * torch.cos(math.pi * r / (2 * n))).to(dtype)\n"
    "\n\n"
    "def _ibc_dct(z, dim, transpose=False):\n"
    "    \"\"\"dct(n) z along dimension dim (n = its length), or dct(n)' z, which is\n"
    "    also dct(n)^-1 z (the DCT is orthonormal); O(n log n) through the FFT.\n"
    "    With c_k as in _ibc_dct_matrix and theta_k = pi k / (2 n),\n"
    "    cos(pi (i + 1/2) k / n) = Re(e^(-i theta_k) e^(-2 pi i i k / (2 n))), so\n"
    "      (dct z)_k  = c_k Re(e^(-i theta_k) F_k), F the DFT of length 2n of z\n"
    "                   (zero-padded);\n"
    "      (dct' y)_i = Re sum_k c_k y_k e^(i theta_k) e^(2 pi i i k / (2 n)), 2n times\n"
    "                   the inverse DFT of length 2n of (c_k y_k e^(i theta_k)).\"\"\"\n"
    "    if dim == -2:\n"
    "        return _ibc_dct(z.transpose(-1, -2), -1, transpose).transpose(-1, -2)\n"
    "    n = z.shape[-1]\n"
    "    theta = (math.pi / (2 * n)) * torch.arange(n, dtype=z.dtype, device=z.device)\n"
    "    c = torch.full((n,), math.sqrt(2.0 / n), dtype=z.dtype, device=z.device)\n"
    "    c[0] = math.sqrt(1.0 / n)\n"
    "    if not transpose:\n"
    "        f = torch.fft.rfft(z, n=2 * n, dim=-1)[..., :n]\n"
    "        return c * (torch.cos(theta) * f.real + torch.sin(theta) * f.imag)\n"
    "    y = c * z\n"
    "    w = torch.complex(y * torch.cos(theta), y * torch.sin(theta))\n"
    "    return torch.fft.ifft(w, n=2 * n, dim=-1)[..., :n].real * (2 * n)\n"
    "\n\n"
    "def _ibc_read_matrix(path, rows, cols, dtype):\n"
    "    \"\"\"A dense operator from its file, .npy when the name ends so and CSV\n"
    "    otherwise, as the C trainer reads it; it must be rows x cols.\"\"\"\n"
    "    if path.endswith(\".npy\"):\n"
    "        shape, values = _ibc_read_npy(path)\n"
    "        if len(shape) == 1:\n"
    "            shape = (shape[0], 1)\n"
    "    else:\n"
    "        shape, values = _ibc_read_csv(path)\n"
    "    if tuple(shape) != (rows, cols):\n"
    "        raise ValueError(\"%s: the operator must be %d x %d, the file holds %s\"\n"
    "                         % (path, rows, cols, \" x \".join(str(s) for s in shape)))\n"
    "    return torch.tensor(values, dtype=torch.float64).reshape(rows, cols).to(dtype)\n"
    "\n\n"
    "def _ibc_read_csv(path):\n"
    "    \"\"\"Rows of comma-separated numbers; '#' comment lines, blank lines and\n"
    "    one header line before the numbers are skipped.\"\"\"\n"
    "    rows, header = [], False\n"
    "    with open(path, encoding=\"utf-8-sig\") as f:\n"
    "        for number, line in enumerate(f, 1):\n"
    "            line = line.strip()\n"
    "            if not line or line.startswith(\"#\"):\n"
    "                continue\n"
    "            try:\n"
    "                rows.append([float(cell) for cell in line.split(\",\")])\n"
    "            except ValueError:\n"
    "                if rows or header:\n"
    "                    raise ValueError(\"%s:%d: expected numbers, got %r\" % (path, number, line)) from None\n"
    "                header = True\n"
    "    if not rows or any(len(r) != len(rows[0]) for r in rows):\n"
    "        raise ValueError(\"%s: expected rows of numbers, all of the same length\" % path)\n"
    "    return (len(rows), len(rows[0])), [v for r in rows for v in r]\n"
    "\n\n"
    "def _ibc_read_npy(path):\n"
    "    \"\"\"A little-endian float64, float32, int64 or int32 .npy array in C order:\n"
    "    (shape, values as a flat list).\"\"\"\n"
    "    with open(path, \"rb\") as f:\n"
    "        data = f.read()\n"
    "    if data[:6] != b\"\\x93NUMPY\" or len(data) < 10:\n"
    "        raise ValueError(\"%s: not a .npy file\" % path)\n"
    "    wide = data[6] >= 2\n"
    "    start = 12 if wide else 10\n"
    "    size = struct.unpack(\"<I\" if wide else \"<H\", data[8:start])[0]\n"
    "    header = ast.literal_eval(data[start:start + size].decode(\"latin1\"))\n"
    "    codes = {\"<f8\": \"d\", \"<f4\": \"f\", \"<i8\": \"q\", \"<i4\": \"i\"}\n"
    "    if not isinstance(header, dict) or header.get(\"descr\") not in codes or header.get(\"fortran_order\"):\n"
    "        raise ValueError(\"%s: expected a little-endian float or int array in C order\" % path)\n"
    "    shape = tuple(header[\"shape\"])\n"
    "    count = 1\n"
    "    for s in shape:\n"
    "        count *= s\n"
    "    code = codes[header[\"descr\"]]\n"
    "    body = data[start + size:start + size + count * struct.calcsize(code)]\n"
    "    if len(body) != count * struct.calcsize(code):\n"
    "        raise ValueError(\"%s: the file ends before its %d values\" % (path, count))\n"
    "    return shape, [float(v) for v in struct.unpack(\"<%d%s\" % (count, code), body)]\n"
    "\n\n"
    "def _ibc_write_npy(path, tensor, shape):\n"
    "    \"\"\"tensor as a little-endian float64 .npy file of the given shape,\n"
    "    written beside and renamed: never a half-written file.\"\"\"\n"
    "    values = tensor.detach().to(device=\"cpu\", dtype=torch.float64).reshape(-1).tolist()\n"
    "    header = \"{'descr': '<f8', 'fortran_order': False, 'shape': %r, }\" % (tuple(shape),)\n"
    "    header += \" \" * (-(len(header) + 11) % 64) + \"\\n\"\n"
    "    tmp = \"%s.tmp.%d\" % (path, os.getpid())\n"
    "    with open(tmp, \"wb\") as f:\n"
    "        f.write(b\"\\x93NUMPY\\x01\\x00\" + struct.pack(\"<H\", len(header)) + header.encode(\"latin1\"))\n"
    "        f.write(struct.pack(\"<%dd\" % len(values), *values))\n"
    "    os.replace(tmp, path)\n"
    "\n\n"
    "# ------------------------------------------------------ initialisation\n"
    "\n\n"
    "def _ibc_normal(shape, mean, std, generator, dtype):\n"
    "    return mean + std * torch.randn(shape, generator=generator, dtype=dtype)\n"
    "\n\n"
    "def _ibc_uniform(shape, lo, hi, generator, dtype):\n"
    "    return lo + (hi - lo) * torch.rand(shape, generator=generator, dtype=dtype)\n"
    "\n\n"
    "def _ibc_draw(kind, a, b, generator):\n"
    "    \"\"\"One scalar draw of normal(a, b) or uniform(a, b).\"\"\"\n"
    "    if kind == \"normal\":\n"
    "        return a + b * torch.randn((), generator=generator, dtype=torch.float64).item()\n"
    "    return a + (b - a) * torch.rand((), generator=generator, dtype=torch.float64).item()\n"
    "\n\n"
    "# ------------------------------------------------------ symmetry blocks\n"
    "\n\n"
    "def _ibc_block_sq(p, rows, cols, kind, count, sets=None):\n"
    "    \"\"\"The squared norm n_p of a block of a symmetry family at each of the\n"
    "    family's `count` indices: p as rows x cols in row-major order (the C\n"
    "    trainer's layout); kind is \"whole\", \"row\", \"col\", \"entry\" or \"set\" (sets:\n"
    "    the owning index of each entry, and the entries).\"\"\"\n"
    "    q = p.reshape(rows, cols)\n"
    "    q = q * q\n"
    "    if kind == \"row\":\n"
    "        return q.sum(1)\n"
    "    if kind == \"col\":\n"
    "        return q.sum(0)\n"
    "    if kind == \"entry\":\n"
    "        return q.reshape(-1)\n"
    "    if kind == \"set\":\n"
    "        owner = torch.tensor(sets[0], device=p.device)\n"
    "        entries = torch.tensor(sets[1], device=p.device)\n"
    "        return torch.zeros(count, dtype=p.dtype, device=p.device).index_add(0, owner, q.reshape(-1)[entries])\n"
    "    return q.sum().expand(count)\n"
    "\n\n"
    "def _ibc_leg(p, rows, cols, along_rows, left):\n"
    "    \"\"\"A GL junction's factor p (rows x cols) as the matrix of the product\n"
    "    A B it takes part in: the contracted index last (left) or first (right);\n"
    "    along_rows: the index runs over p's rows (a vector: its entries).\"\"\"\n"
    "    q = p.reshape(rows, cols)\n"
    "    if left:\n"
    "        return q.transpose(0, 1) if along_rows else q\n"
    "    return q if along_rows else q.transpose(0, 1)\n"
    "\n\n"
    "def _ibc_log_pairs(s):\n"
    "    \"\"\"sum over i, j of log(s_i + s_j).\"\"\"\n"
    "    return torch.log(s.unsqueeze(0) + s.unsqueeze(1)).sum()\n"
    "\n\n";

/* ---------------------------------------------------------------- design */

/* What the methods of the design's Reparam share. */
typedef struct {
    const design_result *r;     /* the design */
    const ibc_var *w;           /* the spec's parameter it replaces */
    long n;                     /* w's number of entries */
    const char *wshape;         /* w's shape inside a Python tuple: "R, C" or "R," */
    size_t nf;                  /* the factors: the designed spec's first nf parameters */
    const char **fname;         /* their Python names, forward's arguments */
    pymodel rm;                 /* the designed model with Reparam's own operators */
    char *fwd;                  /* forward's body: w from the factors ... */
    pyv res;                    /* ... and its value */
    char *aw;                   /* the design's operator applied to a local w ... */
    pyv awres;                  /* ... and its value */
} pyreparam;

/* The class line, its docstring (how to use it), FACTORS, SIZE and
 * PARAMETER. */
static void py_reparam_head(pyemit *pe, const pyreparam *rp)
{
    const design_result *r = rp->r;
    P("\n\nclass Reparam(torch.nn.Module):\n    \"\"\"");
    py_str_body(pe->out, arena_printf(pe->a, "The designed reparameterisation %s (%s), for\n"
                                             "    torch.nn.utils.parametrize.register_parametrization on a tensor of "
                                             "%ld entries\n    (any shape holding them, e.g. the weight of "
                                             "nn.Linear(%ld, 1, bias=False)):",
                                      r->factorisation, r->requested, rp->n, rp->n),
                true);
    P("\n\n        register_design(layer, \"weight\")       # factors drawn as Designed draws them\n"
      "        torch.nn.utils.parametrize.register_parametrization(layer, \"weight\", Reparam())\n"
      "                                                 # factors balanced from the current weight\n\n"
      "    The factors become the module's parameters\n"
      "    (layer.parametrizations.weight.original0, original1, ...: ");
    for (size_t i = 0; i < rp->nf; i++)
        P("%s%s", i ? ", " : "", rp->fname[i]);
    P(" in that order);\n    dual_slices(layer), balance(layer), predicted_bias(layer) and\n"
      "    write_snapshot(layer, ...) read them there.\n    \"\"\"\n\n");
    P("    FACTORS = (");
    for (size_t i = 0; i < rp->nf; i++) {
        py_str(pe->out, r->designed->params[i].name);
        P(", ");
    }
    P(")\n    SIZE = %ld\n    PARAMETER = ", rp->n);
    py_str(pe->out, rp->w->name);
    P("  # the spec's parameter it replaces\n\n");
}

/* __init__ (the operators' buffers) and forward: w from the factors. */
static void py_reparam_forward(pyemit *pe, const pyreparam *rp)
{
    P("    def __init__(self, dtype=DTYPE):\n        super().__init__()\n        self.shape = None\n");
    py_op_buffers(pe, &rp->rm.ops, "        ");
    P("\n    def forward(self");
    for (size_t i = 0; i < rp->nf; i++)
        P(", %s", rp->fname[i]);
    P("):\n        \"\"\"");
    py_str_body(pe->out, rp->r->factorisation, false);
    P(", shaped as the tensor it replaces.\"\"\"\n");
    fputs(rp->fwd, pe->out);
    P("        return %s.reshape(self.shape if self.shape is not None else (%s))\n\n", rp->res.e, rp->wshape);
}

/* right_inverse: balanced factors of a tensor (on the dual slice chi =
 * 0): the nf-th root of |A w| with its sign (log sparsity), or of the
 * singular values of A W split over the factors (log spectral). */
static void py_right_inverse(pyemit *pe, const pyreparam *rp)
{
    const design_result *r = rp->r;
    P("    def right_inverse(self, weight):\n");
    P("        \"\"\"Balanced factors of a tensor of %ld entries: the image z of its\n"
      "        values under the design's operator, split equally over the factors\n"
      "        (on the dual slice chi = 0).  torch calls it when the design is\n"
      "        registered, with the tensor it replaces.\"\"\"\n", rp->n);
    P("        self.to(device=weight.device, dtype=weight.dtype)  # its operators: the tensor's precision\n");
    P("        self.shape = tuple(weight.shape)\n");
    P("        w = weight.detach().reshape(%s)\n", rp->wshape);
    fputs(rp->aw, pe->out);
    P("        z = %s\n", rp->awres.e);
    if (r->kind == DESIGN_LOG_SPARSITY) {
        P("        root = z.abs() ** (1.0 / %zu)\n", rp->nf);
        P("        return (torch.sign(z) * root");
        for (size_t i = 1; i < rp->nf; i++)
            P(", root.clone()");
        P(")\n\n");
    } else {
        P("        p, s, qt = torch.linalg.svd(z, full_matrices=False)\n");
        P("        p, s, qt = p[:, :%ld], s[:%ld], qt[:%ld, :]\n", r->rank, r->rank, r->rank);
        P("        root = s ** (1.0 / %zu)\n", rp->nf);
        P("        return (p * root");
        for (size_t i = 1; i + 1 < rp->nf; i++)
            P(", torch.diag(root)");
        P(", qt.T * root)\n\n");
    }
}

/* requested_bias: the penalty the design asked for, at a tensor. */
static void py_requested_bias(pyemit *pe, const pyreparam *rp)
{
    const design_result *r = rp->r;
    double coef = r->kind == DESIGN_LOG_SPECTRAL && r->depth <= 2 ? 1.0 : sym_rat_double(r->coef);
    long terms = r->kind == DESIGN_LOG_SPARSITY ? rp->n : r->rank;
    char nb[40];
    P("    def requested_bias(self, weight):\n");
    P("        \"\"\"The penalty the design asked for, at a tensor of %ld entries: ", rp->n);
    py_str_body(pe->out, r->requested, false);
    if (r->kind == DESIGN_LOG_SPARSITY)
        P(",\n        %s sum_i log|(A w)_i| + n log(%ld).  The derived bias equals it on the dual\n"
          "        slice (balanced factors).\"\"\"\n", r->coefficient, r->depth);
    else
        P(",\n        %s sum_k log sigma_k(A Z) + r log(%ld), over the %ld largest singular values.  The\n"
          "        derived bias equals it for balanced, SVD-aligned factors.\"\"\"\n",
          r->depth > 2 ? r->coefficient : "1", r->depth, r->rank);
    P("        w = weight.reshape(%s)\n", rp->wshape);
    fputs(rp->aw, pe->out);
    P("        z = %s\n", rp->awres.e);
    if (r->kind == DESIGN_LOG_SPARSITY)
        P("        return %s * torch.log(z.abs()).sum() + %ld * math.log(%ld)\n", py_num(nb, coef), terms, r->depth);
    else
        P("        return %s * torch.log(torch.linalg.svdvals(z)[:%ld]).sum() + %ld * math.log(%ld)\n", py_num(nb, coef),
          r->rank, terms, r->depth);
}

/* register_design: the design on a tensor of the user's module. */
static void py_register_design(pyemit *pe, long n)
{
    P("\n\ndef register_design(module, tensor_name=\"weight\", init=\"spec\", generator=None):\n");
    P("    \"\"\"Puts the designed reparameterisation on module.<tensor_name> (a tensor of\n"
      "    %ld entries) through torch.nn.utils.parametrize, and returns the Reparam.\n"
      "    init=\"spec\": the factors drawn from the spec's initialisation, as Designed\n"
      "    draws them (the tensor's value is replaced); init=\"balanced\": balanced\n"
      "    factors of the tensor's current value (Reparam.right_inverse).\"\"\"\n", n);
    P("    if init not in (\"spec\", \"balanced\"):\n"
      "        raise ValueError(\"init must be 'spec' or 'balanced', not %%r\" %% (init,))\n");
    P("    tensor = getattr(module, tensor_name)\n");
    P("    if tensor.numel() != Reparam.SIZE:\n"
      "        raise ValueError(\"the design replaces a tensor of %%d entries; %%s has %%d\"\n"
      "                         %% (Reparam.SIZE, tensor_name, tensor.numel()))\n");
    P("    reparam = Reparam(dtype=tensor.dtype).to(tensor.device)\n");
    P("    torch.nn.utils.parametrize.register_parametrization(module, tensor_name, reparam)\n");
    P("    if init == \"spec\":\n");
    P("        drawn = Designed(dtype=tensor.dtype, generator=generator).spec_tensors()\n");
    P("        originals = module.parametrizations[tensor_name]\n");
    P("        with torch.no_grad():\n");
    P("            for i, name in enumerate(Reparam.FACTORS):\n");
    P("                getattr(originals, \"original%%d\" %% i).copy_(drawn[name])\n");
    P("    return reparam\n");
}

/* The design's reparameterisation on a user's tensor (dm: the designed
 * model): Reparam and register_design. */
static void py_reparam(pyemit *pe, const pymodel *dm)
{
    pyreparam rp = { .r = pe->design, .w = &pe->spec->params[pe->spec->design.param], .rm = *dm };
    const ibc_spec *ds = rp.r->designed;
    while (rp.nf < ds->nparams && ds->params[rp.nf].decl == pe->spec->design.decl)
        rp.nf++;   /* the factors come first, then the spec's own parameters */
    memset(&rp.rm.ops, 0, sizeof rp.rm.ops);
    const char **leaf = arena_alloc(pe->a, (ds->nparams + 1) * sizeof *leaf);
    rp.fname = arena_alloc(pe->a, (rp.nf + 1) * sizeof *rp.fname);
    for (size_t i = 0; i < ds->nparams; i++)
        leaf[i] = i < rp.nf ? (rp.fname[i] = py_name(pe->a, ds->params[i].name, rp.fname, i)) : "None";
    rp.fwd = py_translate(pe, &rp.rm, rp.r->replacement, leaf, "        ", &rp.res);
    /* A w, for balanced factors of a given w */
    rp.aw = py_translate_operator(pe, &rp.rm.ops, pe->spec->design.op, "w", &rp.w->shape, pe->spec->design.decl,
                                  "        ", &rp.awres);
    rp.n = rp.w->shape.rows * (rp.w->shape.rank == 2 ? rp.w->shape.cols : 1);
    long R, C;
    py_dims(&rp.w->shape, &R, &C);
    rp.wshape = rp.w->shape.rank == 2 ? arena_printf(pe->a, "%ld, %ld", R, C) : arena_printf(pe->a, "%ld,", R);

    py_reparam_head(pe, &rp);
    py_reparam_forward(pe, &rp);
    py_right_inverse(pe, &rp);
    py_requested_bias(pe, &rp);
    py_register_design(pe, rp.n);
    free(rp.fwd);
    free(rp.aw);
}

/* ------------------------------------------------- module-level functions */

/* The module-level functions that take any model of the module, or a
 * module carrying the design. */
static void py_functions(pyemit *pe)
{
    P("\n\ndef _ibc_as_model(obj):\n");
    P("    \"\"\"The model of this module that holds obj's parameters: for a torch module\n"
      "    carrying the design (register_design), a Designed model whose factors are\n"
      "    that module's own tensors; otherwise obj itself.\"\"\"\n");
    if (!pe->design)
        P("    if isinstance(obj, _IbcModel):\n        return obj\n");
    if (!pe->design) {
        P("    raise TypeError(\"expected a model of this module (%%s), got %%s\"\n"
          "                    %% (\", \".join(c.__name__ for c in MODELS.values()), type(obj).__name__))\n");
    } else {
        P("    found = [plist for m in obj.modules() for plist in getattr(m, \"parametrizations\", {}).values()\n"
          "             if any(isinstance(p, Reparam) for p in plist)]\n");
        P("    if not found and isinstance(obj, _IbcModel):\n        return obj\n");
        P("    if len(found) != 1:\n"
          "        raise TypeError(\"expected a model of this module, or a module carrying the design once \"\n"
          "                        \"(register_design); %%s carries it %%d times\" %% (type(obj).__name__, len(found)))\n");
        P("    model = Designed(dtype=found[0].original0.dtype)\n");
        P("    for i, name in enumerate(Reparam.FACTORS):\n");
        P("        setattr(model, Designed.PARAMETERS[name][0], getattr(found[0], \"original%%d\" %% i))\n");
        P("    model._ibc_factors_only = True\n");
        P("    return model\n");
    }
    P("\n\ndef dual_slices(obj):\n    \"\"\"obj.dual_slices() for a model, or of the design a module carries.\"\"\"\n"
      "    return _ibc_as_model(obj).dual_slices()\n");
    P("\n\ndef balance(obj):\n    \"\"\"obj.balance() for a model, or of the design a module carries.\"\"\"\n"
      "    return _ibc_as_model(obj).balance()\n");
    P("\n\ndef predicted_bias(obj, per_index=False):\n"
      "    \"\"\"obj.predicted_bias() for a model, or of the design a module carries.\"\"\"\n"
      "    return _ibc_as_model(obj).predicted_bias(per_index)\n");
    P("\n\ndef write_snapshot(obj, run_dir, step, lr=None, grads=False):\n");
    P("    \"\"\"Writes the parameters of obj at training step `step` where `ibc verify\n"
      "    SPEC RUN_DIR` reads them (docs/interop.md):\n\n"
      "        RUN_DIR/run.json                     {\"format\": \"ibc-snapshots-1\", \"spec\": ...,\n"
      "                                              \"model\": ..., \"lr\": ...}\n"
      "        RUN_DIR/step_<step>/<name>.npy       each parameter, named as in the spec\n"
      "        RUN_DIR/step_<step>/<name>.grad.npy  with grads=True: its .grad, the gradient\n"
      "                                             of the step taken from these parameters\n\n"
      "    obj is a model of this module, or a torch module carrying the design\n"
      "    (register_design: its factors are written, as the designed model's).\n"
      "    Write step 0 before the first step, then every k steps and the last; with\n"
      "    lr and the gradients of every step, ibc verify checks the finite-step\n"
      "    identity too.\"\"\"\n");
    P("    model = _ibc_as_model(obj)\n");
    if (pe->design)
        P("    names = Reparam.FACTORS if getattr(model, \"_ibc_factors_only\", False) else tuple(model.PARAMETERS)\n");
    else
        P("    names = tuple(model.PARAMETERS)\n");
    P("    os.makedirs(run_dir, exist_ok=True)\n");
    P("    info = {\"format\": \"ibc-snapshots-1\", \"spec\": SPEC_MODEL, \"model\": model.NAME}\n");
    P("    if lr is not None:\n        info[\"lr\"] = float(lr)\n");
    P("    meta = os.path.join(run_dir, \"run.json\")\n");
    P("    with open(meta + \".tmp\", \"w\") as f:\n        json.dump(info, f)\n        f.write(\"\\n\")\n");
    P("    os.replace(meta + \".tmp\", meta)\n");
    P("    step_dir = os.path.join(run_dir, \"step_%%010d\" %% step)\n");
    P("    os.makedirs(step_dir, exist_ok=True)\n");
    P("    for name in names:\n");
    P("        attr, shape = model.PARAMETERS[name]\n");
    P("        tensor = getattr(model, attr)\n");
    P("        _ibc_write_npy(os.path.join(step_dir, name + \".npy\"), tensor, shape)\n");
    P("        if grads:\n");
    P("            if tensor.grad is None:\n"
      "                raise ValueError(\"write_snapshot(grads=True): %%s has no gradient\" %% name)\n");
    P("            _ibc_write_npy(os.path.join(step_dir, name + \".grad.npy\"), tensor.grad, shape)\n");
}


/* ---------------------------------------------------------------- module */

/* The models of the module, as emit.c's trainer has them (models[0] the
 * designed or the spec's model); returns how many (at most 3). */
static int py_models_of(pyemit *pe, pymodel models[4], const sym_derivation *derivation)
{
    const ibc_spec *spec = pe->spec;
    const design_result *design = pe->design;
    int nm = 0;
    memset(models, 0, 4 * sizeof *models);
    if (design) {
        pymodel *m = &models[nm++];
        m->cls = "Designed";
        m->name = "designed";
        m->spec = design->designed;
        m->deriv = design->kind == DESIGN_LOG_SPECTRAL && design->depth > 2 ? NULL : design->derivation;
        sema_spec_lr(spec, &spec->design.lrs, spec->design.lr, &m->lr);
        m->designed = true;
        m->in_trainer = true;
        m->l1_param = -1;
        pymodel *v = &models[nm++];
        v->cls = "Vanilla";
        v->name = "vanilla";
        v->spec = spec;
        v->deriv = derivation;
        v->lr = spec->train.lr;
        v->l1_param = -1;
        for (size_t b = 0; b < spec->nbaselines; b++)
            if (spec->baselines[b].kind == BASELINE_VANILLA) {
                v->in_trainer = true;
                sema_spec_lr(spec, &spec->baselines[b].lrs, spec->baselines[b].lr, &v->lr);
                break;
            }
        for (size_t b = 0; b < spec->nbaselines; b++)
            if (spec->baselines[b].kind == BASELINE_L1) {
                pymodel *l = &models[nm++];
                *l = *v;
                l->cls = "L1";
                l->base = "Vanilla";
                l->name = "l1";
                sema_spec_lr(spec, &spec->baselines[b].lrs, spec->baselines[b].lr, &l->lr);
                l->l1 = spec->baselines[b].weight;
                l->l1_param = spec->design.param;
                l->in_trainer = true;
                break;
            }
    } else {
        pymodel *m = &models[nm++];
        m->cls = "Model";
        m->name = "model";
        m->spec = spec;
        m->deriv = derivation;
        m->lr = spec->train.lr;
        m->unbalance = spec->init != NULL;
        m->l1_param = -1;
        m->in_trainer = true;
    }
    for (int k = 0; k < nm; k++) {
        if (!models[k].base)
            models[k].base = "_IbcModel";
        py_names(pe, &models[k]);
    }
    if (nm > 2)   /* L1 is Vanilla with a penalty: the same names */
        models[2].attr = models[1].attr, models[2].arg = models[1].arg;
    return nm;
}

/* The module's docstring: what it is, its models, how to use it, and the
 * derivation (ibc derive's text). */
static void py_module_docstring(pyemit *pe, const pymodel *models, int nm, const sym_derivation *derivation)
{
    const ibc_spec *spec = pe->spec;
    const design_result *design = pe->design;
    P("\"\"\"");
    py_str_body(pe->out, arena_printf(pe->a, "PyTorch export of the ibc spec '%s': %s", spec->model,
                                      spec->description ? spec->description : ""), true);
    P("\n\nGenerated by ibc %s (`ibc emit --target torch`) from the checked spec the C\n"
      "trainer is generated from (`ibc emit`); regenerate it rather than edit it.\n\n", IBC_VERSION);
    P("Models (torch.nn.Module; MODELS maps the C trainer's model names to them):\n");
    for (int k = 0; k < nm; k++)
        if (models[k].in_trainer)
            P("  %-9s the trainer's '%s'\n", models[k].cls, models[k].name);
        else
            P("  %-9s the spec's own parameterisation (not a baseline of this spec's trainer)\n", models[k].cls);
    P("\nUse (docs/interop.md):\n\n"
      "    model = %s()                  # float64; %s(dtype=torch.float32) for float32\n"
      "    loss = loss_fn(model(%s), y) + model.penalty()\n"
      "    model.dual_slices(), model.balance(), model.predicted_bias()\n", models[0].cls, models[0].cls,
      spec->ninputs ? "*inputs" : "");
    if (design)
        P("    register_design(layer, \"weight\")      # the design on a tensor of your own module\n");
    P("    write_snapshot(model, run_dir, step, lr=lr)     # then: ibc verify SPEC run_dir\n\n");
    P("The derivation (ibc derive):\n\n");
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    if (design) {
        design_print(m, design, SYM_FMT_TEXT);
        fprintf(m, "\nthe spec's own model (Vanilla, L1):\n\n");
    }
    sym_print(m, derivation, SYM_FMT_TEXT);
    fclose(m);
    py_str_body(pe->out, buf, true);
    free(buf);
    P("\"\"\"\n\nimport ast\nimport json\nimport math\nimport os\nimport struct\n\nimport torch\n\n");
}

/* The module's constants: the spec's names, INPUTS, OUTPUT_SHAPE, the C
 * trainer's settings (TRAIN) and the loss's mask. */
static void py_module_constants(pyemit *pe, const pymodel *models, int nm)
{
    const ibc_spec *spec = pe->spec;
    char nb[40];
    P("SPEC_MODEL = ");
    py_str(pe->out, spec->model);
    P("\nSPEC_DESCRIPTION = ");
    py_str(pe->out, spec->description ? spec->description : "");
    P("\nDTYPE = torch.float64  # every model's default; pass dtype=torch.float32 for float32\n\n");
    P("# forward's inputs, in order: (spec name, argument, shape of one sample)\nINPUTS = (");
    for (size_t i = 0; i < spec->ninputs; i++) {
        P("(");
        py_str(pe->out, spec->inputs[i].name);
        P(", \"%s\", ", models[nm > 1 ? 1 : 0].arg[i]);
        py_shape_tuple(pe->out, &spec->inputs[i], false);
        P("), ");
    }
    P(")\n# one sample's output\nOUTPUT_SHAPE = ");
    ibc_var ov = { .shape = spec->out_shape };
    py_shape_tuple(pe->out, &ov, false);
    P("\n# the C trainer's settings\nTRAIN = {\"lr\": %s, \"steps\": %ld, "
      "\"batch\": ", spec->train.lr > 0 ? py_num(nb, spec->train.lr) : "None", spec->train.steps);
    if (spec->train.batch > 0)
        P("%ld", spec->train.batch);
    else
        P("None");
    /* the trainer's steps are full-batch on fixed data (emit.c: minibatch = false) */
    ibc_builtin dname = spec->data->builtin;
    bool fixed = dname != IBC_B_teacher && dname != IBC_B_noisy_target && dname != IBC_B_low_rank;
    P(", \"seed\": %llu, \"full_batch\": %s}\n", (unsigned long long)spec->train.seed,
      fixed && spec->train.batch == 0 ? "True" : "False");
    P("LOSS_MASK = ");
    if (spec->loss_mask)
        py_str(pe->out, spec->loss_mask);
    else
        P("None");
    P("\nLOSS_NORMALISE_ALL = %s\n\n\n", spec->loss_normalise_all || !spec->loss_mask ? "True" : "False");
}

/* loss_fn, the spec's loss as the trainer computes it. */
static void py_loss_fn(pyemit *pe)
{
    const ibc_spec *spec = pe->spec;
    P("def loss_fn(pred, y, mask=None):\n");
    P("    \"\"\"The spec's loss as the C trainer computes it: the squared error summed\n"
      "    over the batch and the output's entries, divided by their number (pred\n"
      "    broadcasts over the batch when it depends on no input)");
    if (spec->loss_mask)
        P(";\n    with the mask (0/1, the output's shape) the error counts on the observed\n"
          "    entries only, divided by %s", spec->loss_normalise_all ? "the number of all entries"
                                                                    : "the number of observed entries (at least 1)");
    P(".\"\"\"\n");
    P("    r = pred - y\n    norm = y.numel()\n");
    P("    if mask is not None:\n        r = r * mask\n");
    P("        if not LOSS_NORMALISE_ALL:\n            norm = max(float(mask.sum()), 1.0)\n");
    P("    return (r * r).sum() / norm\n\n\n");
}

/* _IbcModel: what the model classes share (no spec text in it). */
static void py_base_class(pyemit *pe)
{
    P("class _IbcModel(torch.nn.Module):\n");
    P("    \"\"\"What the models of this module share.\"\"\"\n\n");
    P("    DERIVED = {}  # the keys of dual_slices(), balance(), predicted_bias(): none\n"
      "    BIAS_NOT_COVERED = {}\n"
      "    RATIO_PREDICTIONS = {}\n\n");
    P("    def penalty(self):\n        \"\"\"The model's term of the training objective beyond loss_fn: none.\"\"\"\n"
      "        return 0.0\n\n");
    P("    def dual_slices(self):\n        \"\"\"The derived dual slices: none (no symmetry derived).\"\"\"\n"
      "        return {}\n\n");
    P("    def balance(self):\n        \"\"\"The balance ratios: none (no symmetry derived).\"\"\"\n"
      "        return {}\n\n");
    P("    def predicted_bias(self, per_index=False):\n        \"\"\"The predicted bias: none (no symmetry derived).\"\"\"\n"
      "        return {}\n\n");
    P("    def spec_tensors(self):\n        \"\"\"{spec name: parameter}.\"\"\"\n"
      "        return {name: getattr(self, attr) for name, (attr, _) in self.PARAMETERS.items()}\n\n");
    P("    def load_parameters(self, directory, prefix=\"\"):\n");
    P("        \"\"\"Sets the parameters from the .npy files <prefix><spec name>.npy in\n"
      "        directory: the C trainer's final parameters are <model>_<name>.npy in\n"
      "        its --out directory (prefix=NAME + \"_\"); its --snapshots, and\n"
      "        write_snapshot's, are step_<N>/<name>.npy.  A file must have the\n"
      "        parameter's shape (a vector's or a scalar's also as a row or a\n"
      "        column), as ibc verify requires: a transposed matrix is refused.\"\"\"\n");
    P("        with torch.no_grad():\n");
    P("            for name, (attr, shape) in self.PARAMETERS.items():\n");
    P("                path = os.path.join(directory, prefix + name + \".npy\")\n");
    P("                got, values = _ibc_read_npy(path)\n");
    P("                p = getattr(self, attr)\n");
    P("                # a vector or a scalar: as (n,), a row (1, n) or a column (n, 1)\n");
    P("                flat = len(shape) == 1 and len(values) == shape[0] and len(got) <= 2 and min(got, default=1) <= 1\n");
    P("                if tuple(got) != tuple(shape) and not flat:\n"
      "                    raise ValueError(\"%%s: shape %%s; %%s is %%s: expected shape %%s\"\n"
      "                                     %% (path, tuple(got), name, \"a matrix\" if len(shape) == 2 else \"a vector\", tuple(shape)))\n");
    P("                p.copy_(torch.tensor(values, dtype=torch.float64).reshape(p.shape))\n");
    P("        return self\n");
}

/* MODELS, and the import-time check of the parameters' names against
 * this torch's torch.nn.Module. */
static void py_module_tail(pyemit *pe, const pymodel *models, int nm)
{
    P("\n\n# the C trainer's model names\nMODELS = {");
    for (int k = 0; k < nm; k++)
        if (models[k].in_trainer)
            P("\"%s\": %s, ", models[k].name, models[k].cls);
    P("}\n\n");
    P("# A parameter must not take the name of a torch.nn.Module attribute (this\n"
      "# torch's may have more than the export knows of).\n");
    P("for _cls in (");
    for (int k = 0; k < nm; k++)
        P("%s, ", models[k].cls);
    P("):\n"
      "    for _name, (_attr, _) in _cls.PARAMETERS.items():\n"
      "        if _attr in dir(torch.nn.Module):\n"
      "            raise ImportError(\"parameter %%r of %%s is named as an attribute of torch.nn.Module: \"\n"
      "                              \"rename it in the spec\" %% (_name, _cls.__name__))\n");
}

/* The module, top to bottom; false after a located error (pe->failed). */
bool emit_torch(FILE *out, const ibc_spec *spec, const design_result *design, const sym_derivation *derivation,
                ibc_diag *diag)
{
    ibc_arena *a = arena_new();
    pyemit em = { .out = out, .a = a, .spec = spec, .design = design, .diag = diag }, *pe = &em;
    pymodel models[4];
    int nm = py_models_of(pe, models, derivation);

    py_module_docstring(pe, models, nm, derivation);
    py_module_constants(pe, models, nm);
    fputs(py_helpers, out);
    P("# ---------------------------------------------------------------- models\n\n\n");
    py_loss_fn(pe);
    py_base_class(pe);
    for (int k = 0; k < nm; k++)
        py_model_class(pe, &models[k]);
    if (design)
        py_reparam(pe, &models[0]);
    py_functions(pe);
    py_module_tail(pe, models, nm);
    bool ok = !pe->failed;
    arena_free(a);
    return ok;
}

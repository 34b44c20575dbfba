#!/usr/bin/python3
"""test_torch.py: the PyTorch export (`ibc emit --target torch`) against the
C trainer of the same spec, model by model (tests/torch/run.sh prepares
DIR/NAME.py, the trainer's run DIR/NAME.run and DIR/NAME.probe; see
harness.c).  The oracle of each comparison is the generated C code: its
hand-derived reverse pass against PyTorch's autograd.

  1. At the trainer's initial parameters (its snapshot at step 0, read
     from .npy): the predictor on the trainer's batch, and the gradient of
     the spec's loss (plus the L1 baseline's penalty) to every parameter,
     equal to 1e-12 relative (max |torch - C| / max |C| per tensor).
  2. 100 steps of torch.optim.SGD at the model's learning rate from the
     same point follow the C trajectory to 1e-9 relative at every 10th
     step: the trainer's own run (--snapshots 10) when the spec trains on
     its whole training set every step (TRAIN["full_batch"]); otherwise
     (fresh or random batches every step, which torch cannot replay) the
     generated code's steps on the probe's one batch.  Both the parameters
     and their displacement from the start (theta_t - theta_0, which the
     parameters' own size would hide) are compared.
  3. write_snapshot writes what the trainer's --snapshots writes: the same
     names, shapes and values (the snapshot at step 0 read and rewritten).
  4. The design on a tensor of someone else's module (register_design on
     the Vanilla model's own parameter, as a user would on nn.Linear's
     weight): with the factors of a Designed model, the same predictor and
     the same 20 SGD steps (1e-9); balanced factors (right_inverse)
     reproduce the tensor and lie on the dual slice (chi = 0, C = 0);
     dual_slices and write_snapshot read the factors from that module.

  6. The module's own initialisation: float32 models compute in float32;
     `init unbalance(from, to)` (shallow_relu) scales the blocks of each
     index i by exp(alpha t_i), t = linspace(from, to): the parameters
     equal the spec's draws (redrawn here from the same torch generator, in
     the spec's order) times exp(+-t_i), with t computed here.
  5. ibc verify (with IBC set to bin/ibc and IBC_VERIFY to SPEC:NAME pairs
     whose trainer also ran with --snapshots 1 into DIR/NAME.full): on the
     trainer's own snapshots it reproduces the trainer's results.json (every
     check of the model with the same verdict, the init/end checks as
     first/last snapshot; every metric to 1e-12 but the three that depend on
     the trainer's last batch or batch stream); on snapshots that the
     module's write_snapshot wrote during a torch.optim.SGD run (every step
     with its gradient) every check passes, the finite-step identity
     included, and the metrics equal those of the trainer's run to 1e-9; on a
     user's nn.Linear carrying the design (register_design, snapshots every
     10 steps) it reports chi's mechanism and the ratio's predictions;
     without snapshots it fails with a message.
  7. _ibc_dct, the DCT through the FFT in O(n log n), equals its definition
     as a matrix (_ibc_dct_matrix, runtime/ops.c's) to 1e-12 relative,
     values and gradients, dct and dct', along vectors and matrix columns.
  8. ibc verify on broken run directories (corrupt, truncated, missing or
     mis-shaped files, a transposed matrix, NaN and infinity, wrong names,
     a bad run.json, no snapshots, no directory): exit 1 and one error line
     naming the file or directory and what was expected.
  9. predicted_bias covers every family and GL junction, or
     BIAS_NOT_COVERED gives the reason (IBC_BIAS_ONLY: modules of tests/sym
     derivations without a closed-form minimum, checked for this alone).
Nothing passes vacuously: a C trajectory that does not move, a verify
comparison with nothing compared, or no model compared at all, fails.

A NAME written !NAME is a deliberately wrong C trainer (tests/torch/run.sh
builds one with IBC_FAULT=grad, a reverse pass off by 1%): its comparison
must fail, or the test could not catch a wrong gradient.

usage: test_torch.py DIR NAME...   (exit 1 on any failure)
"""
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np

try:
    import torch
except ImportError:
    print("torch: SKIPPED: python3-torch is not installed (scripts/install-deps.sh installs it from Debian)")
    sys.exit(0)

torch.set_num_threads(1)
PRED_TOL, GRAD_TOL, TRAJ_TOL = 1e-12, 1e-12, 1e-9


def load_module(path):
    spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rel(got, want):
    """max |got - want| / max |want| (absolute when want is all zero)."""
    got = np.asarray(got, dtype=np.float64).reshape(-1)
    want = np.asarray(want, dtype=np.float64).reshape(-1)
    if got.shape != want.shape:
        return float("inf")
    scale = np.max(np.abs(want)) if want.size else 0.0
    err = np.max(np.abs(got - want)) if want.size else 0.0
    return float(err / scale) if scale > 0 else float(err)


def batch_of(mod, probe):
    """The probe's batch as forward's arguments, the labels and the mask."""
    x = np.load(os.path.join(probe, "X.npy"))
    y = np.load(os.path.join(probe, "Y.npy"))
    nb = y.shape[0]
    inputs, off = [], 0
    for _, _, shape in mod.INPUTS:
        size = int(np.prod(shape)) if shape else 1
        inputs.append(torch.tensor(x[:, off:off + size].reshape((nb,) + tuple(shape))))
        off += size
    y = torch.tensor(y.reshape((nb,) + tuple(mod.OUTPUT_SHAPE)))
    mask = None
    if os.path.exists(os.path.join(probe, "mask.npy")):
        mask = torch.tensor(np.load(os.path.join(probe, "mask.npy")).reshape(tuple(mod.OUTPUT_SHAPE)))
    return inputs, y, mask


def params_of(model):
    return {name: t.detach().numpy().copy() for name, t in model.spec_tensors().items()}


def check_model(mod, work, name, model_name, faulty=False):
    cls = mod.MODELS[model_name]
    start = os.path.join(work, name + ".run", "snapshots", model_name, "step_0000000000")
    probe = os.path.join(work, name + ".probe", model_name)
    inputs, y, mask = batch_of(mod, probe)
    model = cls().load_parameters(start)
    failures = []

    # 1. predictor and gradients at the trainer's initial point
    pred = model(*inputs)
    c_pred = np.load(os.path.join(probe, "pred.npy"))
    e_pred = rel(pred.detach().numpy(), c_pred)   # row-major, the batch first, in both
    loss = mod.loss_fn(pred, y, mask)
    e_loss = rel(loss.detach().numpy(), np.load(os.path.join(probe, "loss.npy")))
    (loss + model.penalty()).backward()
    e_grad = 0.0
    for spec_name, t in model.spec_tensors().items():
        c_grad = np.load(os.path.join(probe, spec_name + ".grad.npy"))
        e_grad = max(e_grad, rel(t.grad.numpy(), c_grad))
    if not e_pred <= PRED_TOL:
        failures.append("predictor differs: %.3g > %g" % (e_pred, PRED_TOL))
    if not max(e_grad, e_loss) <= GRAD_TOL:
        failures.append("loss or gradient differs: %.3g, %.3g > %g" % (e_loss, e_grad, GRAD_TOL))

    # 2. 100 SGD steps from the same point
    full = mod.TRAIN["full_batch"]
    ref = (os.path.join(work, name + ".run", "snapshots", model_name) if full
           else os.path.join(probe, "traj"))
    model = cls().load_parameters(start)
    opt = torch.optim.SGD(model.parameters(), lr=cls.LR)
    e_traj = e_disp = moved = 0.0
    start_values = params_of(model)
    for step in range(101):
        if step % 10 == 0:
            step_dir = os.path.join(ref, "step_%010d" % step)
            for spec_name, value in params_of(model).items():
                c_value = np.load(os.path.join(step_dir, spec_name + ".npy"))
                e_traj = max(e_traj, rel(value, c_value))
                # the displacement from the start, relative to the C code's
                if step:
                    e_disp = max(e_disp, rel(value - start_values[spec_name], c_value - start_values[spec_name]))
                    moved = max(moved, rel(c_value, start_values[spec_name]))
        if step == 100:
            break
        opt.zero_grad()
        (mod.loss_fn(model(*inputs), y, mask) + model.penalty()).backward()
        opt.step()
    if not max(e_traj, e_disp) <= TRAJ_TOL:
        failures.append("SGD trajectory differs: parameters %.3g, displacement from the start %.3g > %g"
                        % (e_traj, e_disp, TRAJ_TOL))
    if not moved > 1e-6:   # a trajectory that stays put would agree with anything
        failures.append("the C trajectory moved by %.3g relative in 100 steps: the comparison says nothing" % moved)

    # 3. write_snapshot: the trainer's layout, names, shapes and values
    model = cls().load_parameters(start)
    out = os.path.join(work, name + ".snap", model_name)
    mod.write_snapshot(model, out, 0, lr=cls.LR)
    for spec_name in model.PARAMETERS:
        mine = np.load(os.path.join(out, "step_0000000000", spec_name + ".npy"))
        theirs = np.load(os.path.join(start, spec_name + ".npy"))
        if mine.shape != theirs.shape or not np.array_equal(mine, theirs):
            failures.append("write_snapshot: %s differs from the trainer's snapshot (shape %s, want %s)"
                            % (spec_name, mine.shape, theirs.shape))

    how = "trainer run" if full else "one batch"
    print("  %-20s %-9s pred %.1e  grad %.1e  SGD x100 (%s) %.1e, moved %.1e, displacement %.1e  %s"
          % (name, model_name, e_pred, max(e_grad, e_loss), how, e_traj, moved, e_disp,
             ("differs, as it must" if faulty else "FAIL") if failures else "ok"))
    return failures


def check_dct(mod):
    """7: the DCT in O(n log n) (_ibc_dct, through the FFT) against its
    definition as a matrix (_ibc_dct_matrix, runtime/ops.c's), applied along
    a vector's entries and along a matrix's columns, dct and dct', values and
    gradients (autograd through the FFT against the matrix's transpose), to
    1e-12 relative; float32 stays float32.  The C trainer's dct (a matrix,
    runtime/ops.c) is compared through the specs that apply one (1)."""
    failures, worst = [], 0.0
    g = torch.Generator().manual_seed(7)
    for n in (1, 2, 3, 5, 8, 63, 64, 200, 257, 1000):
        dense = mod._ibc_dct_matrix(n, torch.float64)
        for dim, shape in ((-1, (4, n)), (-2, (4, n, 3)), (-1, (n,))):
            z = torch.randn(shape, generator=g, dtype=torch.float64, requires_grad=True)
            for transpose in (False, True):
                got = mod._ibc_dct(z, dim, transpose)
                want = mod._ibc_apply(dense.T if transpose else dense, z, dim)
                r = torch.randn(want.shape, generator=g, dtype=torch.float64)
                g_got, = torch.autograd.grad((got * r).sum(), z)
                g_want, = torch.autograd.grad((want * r).sum(), z)
                e = max(rel(got.detach().numpy(), want.detach().numpy()), rel(g_got.numpy(), g_want.numpy()))
                worst = max(worst, e)
                if not e <= PRED_TOL:
                    failures.append("_ibc_dct(n=%d, dim=%d, transpose=%s) differs from the matrix by %.3g"
                                    % (n, dim, transpose, e))
    z32 = torch.randn((2, 64), generator=g).float()
    if mod._ibc_dct(z32, -1).dtype != torch.float32 or mod._ibc_dct(z32, -1, True).dtype != torch.float32:
        failures.append("_ibc_dct of a float32 tensor is not float32")
    print("  %-20s dct by FFT against the matrix, n = 1..1000, values and gradients: %.1e  %s"
          % ("(every module)", worst, "FAIL" if failures else "ok"))
    return failures


def check_bias_coverage(mod, name):
    """9: predicted_bias() of every model covers every family and every GL
    junction of the derivation, or BIAS_NOT_COVERED says why not (with the
    reason the derivation gives: no closed-form minimum, a minimum not
    attained or unbounded, a product below full rank): bias<f> for each
    chi<f>, bias_group<g> for each C<g>, in exactly one of the two."""
    failures, covered, told = [], 0, 0
    for model_name, cls in sorted(mod.MODELS.items()):
        model = cls()
        given = set(model.predicted_bias())
        reasons = cls.BIAS_NOT_COVERED
        want = {("bias" + k[3:]) if k.startswith("chi") else "bias_group" + k[1:]
                for k in cls.DERIVED if k.startswith("chi") or k.startswith("C")}
        for key in sorted(want):
            if (key in given) == (key in reasons):
                failures.append("%s: %s is %s" % (model_name, key, "both predicted and said not covered"
                                                  if key in given else "neither predicted nor said not covered"))
            elif key in reasons and not reasons[key].strip():
                failures.append("%s: %s is not covered, with no reason" % (model_name, key))
            elif key in given and not bool(torch.isfinite(torch.as_tensor(model.predicted_bias()[key])).all()):
                failures.append("%s: %s is not finite at the initial parameters" % (model_name, key))
        extra = (given | set(reasons)) - want
        if extra:
            failures.append("%s: keys of no family or junction: %s" % (model_name, sorted(extra)))
        covered += len(want & given)
        told += len(want & set(reasons))
    return failures, covered, told


def check_init(mod, name):
    """6: float32 and the unbalanced initialisation."""
    failures = []
    for model_name, cls in mod.MODELS.items():
        model = cls(dtype=torch.float32)
        xs = [torch.randn((3,) + tuple(shape), dtype=torch.float32) for _, _, shape in mod.INPUTS]
        pred = model(*xs)
        values = [pred] + list(model.dual_slices().values()) + list(model.spec_tensors().values())
        if any(v.dtype != torch.float32 for v in values):
            failures.append("%s(dtype=torch.float32) computes in %s" % (cls.__name__, sorted({str(v.dtype) for v in values})))
    if name == "shallow_relu":   # init unbalance(from = -1.2, to = 1.2) along W[j,:] (up) and v[j] (down)
        model = mod.Model(generator=torch.Generator().manual_seed(5))
        g = torch.Generator().manual_seed(5)
        w0 = 0.05 * torch.randn((16, 3), generator=g, dtype=torch.float64)
        v0 = 0.05 * torch.randn((16,), generator=g, dtype=torch.float64)
        t = np.linspace(-1.2, 1.2, 16)
        e = max(rel(model.W.detach().numpy(), w0.numpy() * np.exp(t)[:, None]),
                rel(model.v.detach().numpy(), v0.numpy() * np.exp(-t)))
        if not e <= 1e-14:
            failures.append("init unbalance: the parameters differ from the draws times exp(+-t) by %.3g" % e)
    return failures


def check_reparam(mod, work, name):
    """4: the design registered on the Vanilla model's parameter."""
    failures = []
    probe = os.path.join(work, name + ".probe", "designed")
    inputs, y, mask = batch_of(mod, probe)
    designed = mod.Designed(generator=torch.Generator().manual_seed(1))
    user = mod.Vanilla()
    attr = mod.Vanilla.PARAMETERS[mod.Reparam.PARAMETER][0]
    mod.register_design(user, attr, init="spec", generator=torch.Generator().manual_seed(1))
    e_w = rel(getattr(user, attr).detach().numpy(), designed.designed_parameter().detach().numpy())
    e_pred = rel(user(*inputs).detach().numpy(), designed(*inputs).detach().numpy())
    opts = [torch.optim.SGD(m.parameters(), lr=mod.Designed.LR) for m in (designed, user)]
    for _ in range(20):
        for m, opt in zip((designed, user), opts):
            opt.zero_grad()
            (mod.loss_fn(m(*inputs), y, mask) + m.penalty()).backward()
            opt.step()
    e_traj = 0.0
    mine = mod.dual_slices(user)
    for key, value in designed.dual_slices().items():
        e_traj = max(e_traj, rel(mine[key].detach().numpy(), value.detach().numpy()))
    for spec_name, t in designed.spec_tensors().items():
        i = mod.Reparam.FACTORS.index(spec_name)
        e_traj = max(e_traj, rel(getattr(user.parametrizations[attr], "original%d" % i).detach().numpy(),
                                 t.detach().numpy()))
    mod.write_snapshot(user, os.path.join(work, name + ".snap", "user"), 20, lr=mod.Designed.LR)
    for spec_name, t in designed.spec_tensors().items():
        written = np.load(os.path.join(work, name + ".snap", "user", "step_0000000020", spec_name + ".npy"))
        e_traj = max(e_traj, rel(written, t.detach().numpy()))
    # balanced factors of a given tensor (a fresh Vanilla's w, reshaped as a row)
    holder = torch.nn.Module()
    w0 = mod.Vanilla(generator=torch.Generator().manual_seed(2)).spec_tensors()[mod.Reparam.PARAMETER].detach()
    holder.weight = torch.nn.Parameter(w0.reshape(1, -1) if w0.dim() == 1 else w0.clone())
    torch.nn.utils.parametrize.register_parametrization(holder, "weight", mod.Reparam())
    e_bal = rel(holder.weight.detach().numpy(), w0.numpy())
    scale = max(float(t.detach().abs().max()) ** 2 for t in mod._ibc_as_model(holder).spec_tensors().values())
    e_slice = max(float(v.detach().abs().max()) for v in mod.dual_slices(holder).values()) / scale
    # the same on a float32 tensor: the design computes in float32 (its
    # operators follow the tensor) and gives the tensor back to float32's precision
    holder32 = torch.nn.Module()
    holder32.weight = torch.nn.Parameter(w0.reshape(1, -1).float() if w0.dim() == 1 else w0.float())
    torch.nn.utils.parametrize.register_parametrization(holder32, "weight", mod.Reparam())
    w32 = holder32.weight
    if w32.dtype != torch.float32 or any(p.dtype != torch.float32 for p in holder32.parameters()):
        failures.append("register_parametrization on a float32 tensor computes in %s" % w32.dtype)
    elif not rel(w32.detach().numpy(), w0.numpy()) <= 1e-5:
        failures.append("right_inverse on a float32 tensor: the tensor back differs by %.3g"
                        % rel(w32.detach().numpy(), w0.numpy()))
    if not max(e_w, e_pred) <= PRED_TOL:
        failures.append("register_design: the tensor or the predictor differs from Designed's: %.3g, %.3g"
                        % (e_w, e_pred))
    if not e_traj <= TRAJ_TOL:
        failures.append("register_design: 20 SGD steps, dual slices or snapshot differ from Designed's: %.3g" % e_traj)
    if not max(e_bal, e_slice) <= 1e-12:
        failures.append("right_inverse: the tensor back %.3g, off the dual slice by %.3g" % (e_bal, e_slice))
    print("  %-20s Reparam   tensor %.1e  pred %.1e  SGD x20 %.1e  balanced: tensor %.1e, dual slice %.1e  %s"
          % (name, e_w, e_pred, e_traj, e_bal, e_slice, "FAIL" if failures else "ok"))
    return failures


# metrics that verify cannot reproduce: the trainer's final loss is that of
# its last batch before the last step, and the noise equilibrium's batches
# come from the trainer's batch stream after training
NOT_REPRODUCIBLE = ("final_loss", "fit_mse", "ratio_pred_noise_equilibrium")
# Metrics that are themselves relative measures of round-off (the identity's
# residual, ~1e-15) or of a change at the level of the last digits of chi
# (~1e-9): a last-bit difference in the quantities they are made of (the
# verify path and the trainer's are different code, and compilers contract
# multiply-adds differently: clang at -march=x86-64-v3 gave 1.58e-15 against
# 1.64e-15) changes them by ~1e-16 absolute, far above 1e-12 relative.  They
# must agree to 1e-14 absolute; every other metric to the relative tolerance.
ROUNDOFF_LEVEL = ("finite_step_identity_max", "chi_rel_change_median")


def ibc_verify(spec, run, out):
    """`ibc verify SPEC RUN --out OUT --quiet`: exit status, results.json, stderr."""
    r = subprocess.run([os.environ["IBC"], "verify", spec, run, "--out", out, "--quiet"],
                       capture_output=True, text=True)
    path = os.path.join(out, "results.json")
    res = json.load(open(path)) if r.returncode in (0, 4) and os.path.exists(path) else None
    return r.returncode, res, r.stderr


def same_metrics(mine, theirs, tol, skip=NOT_REPRODUCIBLE):
    """The worst relative difference over the metrics both have, the keys that
    differ, and how many were compared."""
    compared = 0
    worst, bad = 0.0, []
    for key, want in theirs.items():
        if key not in mine or key.startswith(skip):
            continue
        got = mine[key]
        if isinstance(want, (int, float)) and isinstance(got, (int, float)):
            e = rel(got, want)
            compared += 1
            if key.startswith(ROUNDOFF_LEVEL) and abs(got - want) <= 1e-14:
                e = 0.0
            worst = max(worst, e)
            if not e <= tol:
                bad.append("%s: %r, want %r" % (key, got, want))
        elif got != want and not isinstance(want, list):
            bad.append("%s: %r, want %r" % (key, got, want))
    return worst, bad, compared


def check_verify(mod, work, name, spec):
    """5: ibc verify on the trainer's snapshots, on a torch run's, on a user module's."""
    failures = []
    full = os.path.join(work, name + ".full")
    trainer = json.load(open(os.path.join(full, "results.json")))
    reference = {}
    for model_name in sorted(mod.MODELS):
        rc, res, err = ibc_verify(spec, os.path.join(full, "snapshots", model_name),
                                  os.path.join(work, name + ".verify", model_name))
        if rc != 0 or res is None:
            failures.append("verify of the trainer's %s: exit %d: %s" % (model_name, rc, err.strip()))
            continue
        reference[model_name] = res
        checks = {c["name"]: c for c in res["checks"]}
        compared = 0
        for c in trainer["checks"]:
            n = c["name"]
            if n.startswith("gradient vs central differences"):
                continue   # the trainer's own gradient: nothing of the run
            if n.endswith("(%s, init)" % model_name):
                n = n[:-len("init)")] + "first snapshot)"
            elif n.endswith("(%s, end)" % model_name):
                n = n[:-len("end)")] + "last snapshot)"
            elif not n.endswith("(%s)" % model_name) and not (model_name == "designed" and
                                                               n.startswith("designed parameterisation")):
                continue
            if n not in checks or checks[n]["pass"] != c["pass"]:
                failures.append("verify of the trainer's %s: check %r %s" % (model_name, n, "missing" if n not in checks
                                                                              else "has another verdict"))
            compared += 1
        checks_compared = compared
        worst, bad, compared = same_metrics(res["metrics"], trainer["metrics"], 1e-12)
        failures += ["verify of the trainer's %s: metric %s" % (model_name, b) for b in bad]
        if not checks_compared + compared:
            failures.append("verify of the trainer's %s: no check or metric compared" % model_name)
        print("  %-20s verify    the trainer's %-9s %d checks as its own, %d metrics within %.1e  %s"
              % (name, model_name, checks_compared, compared, worst, "FAIL" if failures else "ok"))

    # a torch run of the first model from the trainer's initial point, every step with its gradient
    model_name = sorted(mod.MODELS)[0]
    cls = mod.MODELS[model_name]
    probe = os.path.join(work, name + ".probe", model_name)
    inputs, y, mask = batch_of(mod, probe)
    model = cls().load_parameters(os.path.join(full, "snapshots", model_name, "step_0000000000"))
    opt = torch.optim.SGD(model.parameters(), lr=cls.LR)
    run = os.path.join(work, name + ".torchrun")
    for step in range(101):
        opt.zero_grad()
        if step < 100:
            (mod.loss_fn(model(*inputs), y, mask) + model.penalty()).backward()
        mod.write_snapshot(model, run, step, lr=cls.LR, grads=step < 100)
        if step < 100:
            opt.step()
    rc, res, err = ibc_verify(spec, run, os.path.join(run, "verify"))
    if rc != 0 or res is None:
        failures.append("verify of a torch run: exit %d: %s" % (rc, err.strip()))
    else:
        names = [c["name"] for c in res["checks"]]
        if not any(n.startswith("finite-step identity") for n in names) and cls.DERIVED:
            failures.append("verify of a torch run with every gradient: no finite-step identity")
        worst = 0.0
        if mod.TRAIN["full_batch"] and model_name in reference:   # the same trajectory as the trainer's
            # (the identity's worst error is round-off, ~1e-15 either way: not compared)
            worst, bad, compared = same_metrics(res["metrics"], reference[model_name]["metrics"], 1e-9,
                                                skip=("finite_step_identity",))
            failures += ["verify of a torch run: metric %s (against the trainer's run)" % b for b in bad]
            if not compared:
                failures.append("verify of a torch run: no metric compared with the trainer's run")
        print("  %-20s verify    a torch run (%s), %d checks pass%s  %s"
              % (name, model_name, len(names),
                 ", metrics as the trainer's run within %.1e" % worst if mod.TRAIN["full_batch"] else "",
                 "FAIL" if failures else "ok"))
    return failures


def check_user_layer(mod, work, name, spec):
    """5: the design on a user's nn.Linear, trained with SGD, checked by ibc verify."""
    failures = []
    probe = os.path.join(work, name + ".probe", "designed")
    x = torch.tensor(np.load(os.path.join(probe, "X.npy")))
    y = torch.tensor(np.load(os.path.join(probe, "Y.npy"))).reshape(-1, 1)
    layer = torch.nn.Linear(x.shape[1], 1, bias=False).double()
    mod.register_design(layer, "weight", generator=torch.Generator().manual_seed(0))
    opt = torch.optim.SGD(layer.parameters(), lr=mod.Designed.LR)
    run = os.path.join(work, name + ".userrun")
    for step in range(201):
        if step % 10 == 0:
            mod.write_snapshot(layer, run, step, lr=mod.Designed.LR)
        if step == 200:
            break
        opt.zero_grad()
        torch.nn.functional.mse_loss(layer(x), y).backward()
        opt.step()
    rc, res, err = ibc_verify(spec, run, os.path.join(run, "verify"))
    if rc != 0 or res is None:
        failures.append("verify of a user's nn.Linear: exit %d: %s" % (rc, err.strip()))
    else:
        m = res["metrics"]
        keys = ("mechanism_designed", "ratio_median_designed", "ratio_pred_logdet_min_designed",
                "ratio_pred_dual_slice_designed")
        missing = [k for k in keys if k not in m]
        if missing:
            failures.append("verify of a user's nn.Linear: no %s" % ", ".join(missing))
        elif "identity" in " ".join(c["name"] for c in res["checks"]):
            failures.append("verify of a user's nn.Linear: a finite-step identity without gradients")
        print("  %-20s verify    a user's nn.Linear: chi %s; ratio median %.3g, predicted %g (log det G min), %g "
              "(dual slice)  %s" % (name, str(m.get(keys[0], "?")).split(":")[0], m.get(keys[1], float("nan")),
                                    m.get(keys[2], float("nan")), m.get(keys[3], float("nan")),
                                    "FAIL" if failures else "ok"))
    empty = os.path.join(work, name + ".empty")
    os.makedirs(empty, exist_ok=True)
    rc, _, err = ibc_verify(spec, empty, os.path.join(empty, "verify"))
    if rc != 1 or "holds no step_" not in err:
        failures.append("verify of a directory without snapshots: exit %d, %r" % (rc, err.strip()))
    return failures


def check_verify_errors(mod, work, name, spec):
    """8: ibc verify on broken snapshots: every case exits 1 (an error, not a
    crash and not a verdict) with one message naming the file or directory
    and what was expected.  From two of the trainer's own snapshots of the
    first model (--snapshots 1), each case breaks one thing."""
    import shutil
    failures = []
    model_name = sorted(mod.MODELS)[0]
    cls = mod.MODELS[model_name]
    src = os.path.join(work, name + ".full", "snapshots", model_name)
    base = os.path.join(work, name + ".broken")
    shutil.rmtree(base, ignore_errors=True)
    p0 = sorted(cls.PARAMETERS)[0]
    shape0 = cls.PARAMETERS[p0][1]
    want0 = "(%d,)" % shape0[0] if len(shape0) == 1 else "(%d, %d)" % shape0
    # a parameter of the most entries: a vector, or a non-square matrix to transpose
    big = max(cls.PARAMETERS, key=lambda k: int(np.prod(cls.PARAMETERS[k][1])))
    bshape = cls.PARAMETERS[big][1]

    def fresh(case):
        d = os.path.join(base, case)
        os.makedirs(d)
        shutil.copy(os.path.join(src, "run.json"), d)
        for step in ("step_0000000000", "step_0000000001"):
            shutil.copytree(os.path.join(src, step), os.path.join(d, step))
        return d

    def npy(d, step, pname, suffix=""):
        return os.path.join(d, "step_%010d" % step, pname + suffix + ".npy")

    def put(d, step, pname, array, suffix=""):
        with open(npy(d, step, pname, suffix), "wb") as f:
            np.save(f, array)

    cases = []
    d = fresh("corrupt")
    open(npy(d, 1, p0), "wb").write(b"garbage")
    cases.append(("corrupt", d, [npy(d, 1, p0), "not a .npy file"]))
    d = fresh("truncated")
    data = open(npy(d, 1, p0), "rb").read()
    open(npy(d, 1, p0), "wb").write(data[:len(data) - 8])
    cases.append(("truncated", d, [npy(d, 1, p0), "truncated"]))
    d = fresh("missing")
    os.remove(npy(d, 1, p0))
    cases.append(("missing", d, [npy(d, 1, p0), "No such file"]))
    d = fresh("short")
    put(d, 1, p0, np.load(npy(src, 0, p0)).reshape(-1)[:-1])
    cases.append(("one value short", d, [npy(d, 1, p0), "expected shape " + want0]))
    if len(bshape) == 1 and bshape[0] % 2 == 0:
        d = fresh("misshaped")
        put(d, 1, big, np.load(npy(src, 0, big)).reshape(2, -1))
        cases.append(("a vector as 2 rows", d, [npy(d, 1, big), "shape (2, %d)" % (bshape[0] // 2),
                                                "expected shape (%d,)" % bshape[0]]))
    if len(bshape) == 2 and bshape[0] != bshape[1]:
        d = fresh("transposed")
        put(d, 1, big, np.load(npy(src, 0, big)).T.copy())
        cases.append(("a transposed matrix", d, [npy(d, 1, big), "expected shape (%d, %d)" % tuple(bshape)]))
    d = fresh("gradshape")
    put(d, 0, p0, np.zeros(3), ".grad")
    cases.append(("a gradient of the wrong shape", d, [npy(d, 0, p0, ".grad"), "the gradient of " + p0]))
    for bad in ("nan", "inf"):
        d = fresh(bad)
        a = np.load(npy(src, 0, p0)).copy()
        a.reshape(-1)[a.size // 2] = float(bad)
        put(d, 1, p0, a)
        cases.append((bad.upper() + " in a snapshot", d, [npy(d, 1, p0), "expected a finite number"]))
    d = fresh("names")
    for f in os.listdir(os.path.join(d, "step_0000000000")):
        os.rename(os.path.join(d, "step_0000000000", f), os.path.join(d, "step_0000000000", "X" + f))
    os.remove(os.path.join(d, "run.json"))
    cases.append(("wrong names", d, [d, "does not hold the parameters of any model", "%s (%s" % (model_name, list(cls.PARAMETERS)[0])]))
    d = fresh("model")
    open(os.path.join(d, "run.json"), "w").write('{"model": "nosuch", "lr": 0.1}')
    cases.append(("run.json names no model of the spec", d, [d, "names the model 'nosuch'", "the models of"]))
    d = fresh("json")
    open(os.path.join(d, "run.json"), "w").write('{"model": "desig')
    cases.append(("a corrupt run.json", d, [os.path.join(d, "run.json"), '"model" is not a string']))
    d = fresh("lr")
    open(os.path.join(d, "run.json"), "w").write('{"model": "%s", "lr": -1}' % model_name)
    cases.append(("a negative lr", d, [os.path.join(d, "run.json"), '"lr" is not a positive number']))
    d = fresh("duplicate")
    shutil.copytree(os.path.join(d, "step_0000000001"), os.path.join(d, "step_1"))
    cases.append(("the same step twice", d, [d, "step_0000000001 and step_1 are the same step"]))
    d = os.path.join(base, "nosnapshots")
    os.makedirs(d)
    open(os.path.join(d, "notes.txt"), "w").write("no snapshots here\n")
    cases.append(("a run directory with no snapshots", d, [d, "holds no step_<S> directories"]))
    cases.append(("no such directory", os.path.join(base, "absent"), [os.path.join(base, "absent"), "cannot open"]))
    for what, d, needles in cases:
        rc, _, err = ibc_verify(spec, d, os.path.join(base, "out"))
        lines = [l for l in err.splitlines() if l.startswith("error:")]
        if rc != 1 or len(lines) != 1 or not all(n in lines[0] for n in needles):
            failures.append("%s: exit %d (want 1), stderr %r, want one error line with %s" % (what, rc, err.strip(), needles))
    # the module's load_parameters refuses the same transposed matrix
    if len(bshape) == 2 and bshape[0] != bshape[1]:
        d = os.path.join(base, "transposed", "step_0000000001")
        try:
            cls().load_parameters(d)
            failures.append("load_parameters accepted a transposed %s" % big)
        except ValueError as e:
            if "expected shape (%d, %d)" % tuple(bshape) not in str(e):
                failures.append("load_parameters of a transposed %s: %s" % (big, e))
    print("  %-20s verify    %d broken runs (%s): each a located error, exit 1  %s"
          % (name, len(cases), ", ".join(c[0] for c in cases[:4]) + ", ...", "FAIL" if failures else "ok"))
    return failures


def main():
    work, names = sys.argv[1], sys.argv[2:]
    failed = 0
    checked = 0
    dct_checked = False
    bias_keys = [0, 0]
    for name in names:
        if name.startswith("!"):
            name = name[1:]
            caught = []
            try:
                mod = load_module(os.path.join(work, name + ".py"))
                for model_name in sorted(os.listdir(os.path.join(work, name + ".run", "snapshots"))):
                    caught += check_model(mod, work, name, model_name, faulty=True)
            except Exception as e:
                caught.append("%s: %s" % (type(e).__name__, e))
            if any("gradient differs" in c for c in caught):
                print("  %-20s a wrong C gradient is caught: %s" % (name, caught[0]))
            else:
                print("FAIL %s: a wrong C gradient (IBC_FAULT=grad) was not caught" % name)
                failed += 1
            continue
        try:
            mod = load_module(os.path.join(work, name + ".py"))
            models = sorted(os.listdir(os.path.join(work, name + ".run", "snapshots")))
            if sorted(models) != sorted(mod.MODELS):
                raise AssertionError("the trainer's models %s, the module's %s" % (models, sorted(mod.MODELS)))
            for model_name in models:
                checked += 1
                for f in check_model(mod, work, name, model_name):
                    print("FAIL %s (%s): %s" % (name, model_name, f))
                    failed += 1
            if not dct_checked:
                dct_checked = True
                for f in check_dct(mod):
                    print("FAIL %s (dct): %s" % (name, f))
                    failed += 1
            fails, covered, told = check_bias_coverage(mod, name)
            bias_keys[0] += covered
            bias_keys[1] += told
            for f in fails:
                print("FAIL %s (predicted_bias): %s" % (name, f))
                failed += 1
            for f in check_init(mod, name):
                print("FAIL %s (initialisation): %s" % (name, f))
                failed += 1
            if hasattr(mod, "Reparam"):
                for f in check_reparam(mod, work, name):
                    print("FAIL %s (Reparam): %s" % (name, f))
                    failed += 1
        except Exception as e:   # a module that does not load or run is a failure, named
            print("FAIL %s: %s: %s" % (name, type(e).__name__, e))
            failed += 1
    # modules of derivations whose minimum has no closed form, is not
    # attained or is unbounded (tests/sym; no trainer compared)
    for path in os.environ.get("IBC_BIAS_ONLY", "").split():
        try:
            mod = load_module(path)
            fails, covered, told = check_bias_coverage(mod, path)
            bias_keys[0] += covered
            bias_keys[1] += told
            if not told:
                fails.append("BIAS_NOT_COVERED is empty: the case it was chosen for is gone")
        except Exception as e:
            fails = ["%s: %s" % (type(e).__name__, e)]
        for f in fails:
            print("FAIL %s (predicted_bias): %s" % (path, f))
        failed += len(fails)
    print("  %-20s predicted_bias: %d biases given, %d not covered with the reason  %s"
          % ("(every module)", bias_keys[0], bias_keys[1], "ok"))
    verified = 0
    for pair in os.environ.get("IBC_VERIFY", "").split():
        spec, name = pair.split(":")
        try:
            mod = load_module(os.path.join(work, name + ".py"))
            fails = check_verify(mod, work, name, spec)
            if hasattr(mod, "register_design") and mod.INPUTS and len(mod.INPUTS[0][2]) == 1:
                fails += check_user_layer(mod, work, name, spec)
            if name in ("piecewise_tv", "deep_linear"):   # vectors; a non-square matrix
                fails += check_verify_errors(mod, work, name, spec)
        except Exception as e:
            fails = ["%s: %s" % (type(e).__name__, e)]
        for f in fails:
            print("FAIL %s (verify): %s" % (name, f))
        failed += len(fails)
        verified += 1
    if not checked or not verified:
        print("FAIL: nothing was compared (%d models, %d specs verified)" % (checked, verified))
        failed += 1
    print("torch: %d models of %d specs checked against the C trainer, ibc verify on %d specs, %d failures"
          % (checked, len(names), verified, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

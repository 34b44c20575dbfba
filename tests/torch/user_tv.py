#!/usr/bin/python3
"""user_tv.py: issue 19's "done when", as a user would write it.

    bin/ibc emit --target torch specs/piecewise_tv.ibs -o DIR/tv.py
    user_tv.py DIR/tv.py RUN_DIR [--steps N] [--every K]
    bin/ibc verify specs/piecewise_tv.ibs RUN_DIR

A training script of someone's own: their data (a piecewise-constant
signal seen through 64 random measurements, drawn here with torch), their
nn.Linear(200, 1, bias=False), F.mse_loss and torch.optim.SGD.  The
exported module comes in with two calls: the design registered on the
layer's weight through torch.nn.utils.parametrize.register_parametrization
(tv.register_design: the factors drawn from the spec's initialisation;
with --balanced, register_parametrization(layer, "weight", tv.Reparam())
itself: the factors balanced from the layer's own initial weight, chi = 0),
and tv.write_snapshot every K steps.  tests/torch/run.sh then
runs `ibc verify` on RUN_DIR and checks that it reports chi's mechanism
and the balance against the predictions."""
import argparse
import importlib.util
import os

import torch
import torch.nn.functional as F

ap = argparse.ArgumentParser()
ap.add_argument("module")
ap.add_argument("run_dir")
ap.add_argument("--steps", type=int, default=300)
ap.add_argument("--every", type=int, default=10)
ap.add_argument("--balanced", action="store_true",
                help="factors balanced from the layer's weight (tv.Reparam's right_inverse: chi = 0) instead "
                     "of drawn as the spec draws them")
args = ap.parse_args()

spec = importlib.util.spec_from_file_location("tv", args.module)
tv = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tv)

torch.manual_seed(0)
n, m = 200, 64
jumps = torch.zeros(n, dtype=torch.float64)
jumps[[0, 40, 90, 150]] = torch.tensor([1.0, -2.0, 1.5, 1.0], dtype=torch.float64)
w_true = torch.cumsum(jumps, 0)                       # piecewise constant
x = torch.randn(m, n, dtype=torch.float64) / n ** 0.5
y = x @ w_true + 0.01 * torch.randn(m, dtype=torch.float64)

layer = torch.nn.Linear(n, 1, bias=False).double()
if args.balanced:
    torch.nn.utils.parametrize.register_parametrization(layer, "weight", tv.Reparam())
else:   # the same, with the factors then drawn from the spec's initialisation
    tv.register_design(layer, "weight", generator=torch.Generator().manual_seed(0))
lr = 1e-2
opt = torch.optim.SGD(layer.parameters(), lr=lr)
for step in range(args.steps + 1):
    if step % args.every == 0 or step == args.steps:
        tv.write_snapshot(layer, args.run_dir, step, lr=lr)
    if step == args.steps:
        break
    opt.zero_grad()
    loss = F.mse_loss(layer(x).squeeze(1), y)
    loss.backward()
    opt.step()
print("user_tv: %d steps, loss %.4g, snapshots in %s" % (args.steps, loss.item(), args.run_dir))

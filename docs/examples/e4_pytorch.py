#!/usr/bin/python3
"""E4 (sparse spectral recovery) written as a plain PyTorch training script,
with the parameterisation ibc designed for specs/spectral_sparse.ibs brought
in by three lines: import the module `ibc emit --target torch` wrote,
register_design on the layer's weight, write_snapshot while training.
`ibc verify specs/spectral_sparse.ibs RUN_DIR` then checks the run against
the derivation.  docs/interop.md walks through it.

usage: e4_pytorch.py MODULE.py RUN_DIR [--steps N] [--every K] [--grads] [--seed S] [--momentum M]
"""
import argparse
import importlib.util
import math

import torch

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("module", help="the module of `ibc emit --target torch specs/spectral_sparse.ibs`")
parser.add_argument("run_dir", help="where the snapshots go (ibc verify reads them)")
parser.add_argument("--steps", type=int, default=50000)
parser.add_argument("--every", type=int, default=1000, help="a snapshot every K steps (and the last)")
parser.add_argument("--grads", action="store_true", help="with each snapshot, the gradient of its step")
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--momentum", type=float, default=0.0, help="SGD's momentum (0: plain SGD, the theory's)")
args = parser.parse_args()

spec = importlib.util.spec_from_file_location("e4", args.module)
e4 = importlib.util.module_from_spec(spec)
spec.loader.exec_module(e4)

# The data, as the paper's E4 draws it (not the C trainer's stream):
# x_k(t) = cos(2 pi k t), k = 0..63, t ~ U(0, 1), 32 samples; three spikes
# at k >= 1 of magnitude U(1, 2) and random sign; noise N(0, 0.1^2).
torch.manual_seed(args.seed)
n, m = 64, 32
t = torch.rand(m, 1, dtype=torch.float64)
x = torch.cos(2 * math.pi * t * torch.arange(n, dtype=torch.float64))
w_true = torch.zeros(n, dtype=torch.float64)
support = 1 + torch.randperm(n - 1)[:3]
w_true[support] = (1 + torch.rand(3, dtype=torch.float64)) * torch.sign(torch.randn(3, dtype=torch.float64))
y = x @ w_true + 0.1 * torch.randn(m, dtype=torch.float64)

# The model: a linear layer, as anyone would write it ...
layer = torch.nn.Linear(n, 1, bias=False).double()
# ... carrying the design: its weight becomes u * v, u and v drawn as the
# spec draws them (normal(0, 0.01)); u and v are now the layer's parameters.
e4.register_design(layer, "weight", generator=torch.Generator().manual_seed(args.seed))
chi0 = e4.dual_slices(layer)["chi1"].detach().clone()   # chi_i = (u_i^2 - v_i^2) / 2
lr = e4.Designed.LR   # the spec's learning rate, 1e-3
opt = torch.optim.SGD(layer.parameters(), lr=lr, momentum=args.momentum)

for step in range(args.steps + 1):
    snapshot = step % args.every == 0 or step == args.steps
    if step == args.steps:
        e4.write_snapshot(layer, args.run_dir, step, lr=lr)
        break
    opt.zero_grad()
    loss = torch.nn.functional.mse_loss(layer(x).squeeze(-1), y)
    loss.backward()
    if snapshot:   # the parameters before this step (and its gradient)
        e4.write_snapshot(layer, args.run_dir, step, lr=lr, grads=args.grads)
    opt.step()

with torch.no_grad():
    w = layer.weight.reshape(-1)
    loss = float(torch.nn.functional.mse_loss(layer(x).squeeze(-1), y))
    top = sorted(torch.argsort(w.abs(), descending=True)[:3].tolist())
    chi = e4.dual_slices(layer)["chi1"]
    ratio = e4.balance(layer)["ratio1"]
    print("steps %d, final loss %.6g" % (args.steps, loss))
    print("largest |w_k| at k = %s; the spikes are at k = %s" % (top, sorted(support.tolist())))
    print("relative error of w: %.3g" % float((w - w_true).norm() / w_true.norm()))
    print("chi_i = (u_i^2 - v_i^2) / 2: max |chi_i| %.4g at the start, %.4g at the end, largest change %.3g"
          % (float(chi0.abs().max()), float(chi.abs().max()), float((chi - chi0).abs().max())))
    print("ratio |u_i| / |v_i|: median %.4g (predicted 1 at the log det G minimiser and on the dual slice)"
          % float(ratio.median()))
    print("predicted bias sum_i log(2 |u_i| |v_i|) = %.6g; the requested penalty sum_i log|w_i| + 64 log 2 = %.6g"
          % (float(e4.predicted_bias(layer)["bias1"]), float(layer.parametrizations.weight[0].requested_bias(w))))

#!/usr/bin/python3
"""bench/torch_reference.py: the paper's five training loops written in
PyTorch for this project (plain SGD on a mean-squared error, the settings
of docs/results.md), timed per step on this machine, one thread, so that
make bench compares the trainers with PyTorch side by side in one run.

Usage: torch_reference.py STEPS [E1 E2 ...]  ->  one line per experiment:
"E2 us_per_step 123.4 (models 1)".  Each loop builds its data once,
then runs STEPS steps after 200 warm-up steps, the way a PyTorch user
writes it: a fresh minibatch (E1, E2) or the masked batch (E3) each step,
forward, loss, backward, an SGD update of every model of the experiment,
and (E4, as the paper's loop does) the test error of each model every
step.  The dtype is PyTorch's default (float32), as in the paper's code;
--float64 times double precision (the trainers' precision).
"""
import math
import sys
import time

import torch

torch.set_num_threads(1)


def timed(step, steps):
    for _ in range(200):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - t0) / steps * 1e6


def e1(steps, dt):
    d, h = 3, 16
    tW, tv = torch.randn(h, d, dtype=dt) * 1.5, torch.randn(h, dtype=dt) * 1.5
    s = torch.exp(torch.linspace(-1.2, 1.2, h, dtype=dt))
    W = (torch.randn(h, d, dtype=dt) * 0.05 * s[:, None]).requires_grad_()
    v = (torch.randn(h, dtype=dt) * 0.05 / s).requires_grad_()
    opt = torch.optim.SGD([W, v], lr=5e-5)

    def step():
        x = torch.randn(8, d, dtype=dt)
        y = torch.relu(x @ tW.T) @ tv + 0.1 * torch.randn(8, dtype=dt)
        loss = ((torch.relu(x @ W.T) @ v - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return timed(step, steps), 1


def e2(steps, dt):
    T, e, k = 8, 16, 8
    teach = [torch.randn(e, k, dtype=dt) * 0.75 for _ in range(3)]
    teach[0] = teach[0] * (4 + 4 * abs(torch.randn(1, dtype=dt)))
    s = torch.exp(torch.linspace(-1.2, 1.2, k, dtype=dt))
    Wq = (torch.randn(e, k, dtype=dt) * 0.1 * s * (0.25 + 0.25 * abs(torch.randn(1, dtype=dt)))).requires_grad_()
    Wk = (torch.randn(e, k, dtype=dt) * 0.1 / s).requires_grad_()
    Wv = (torch.randn(e, k, dtype=dt) * 0.1).requires_grad_()
    opt = torch.optim.SGD([Wq, Wk, Wv], lr=1e-3)

    def attn(X, q, kk, vv):
        return torch.softmax((X @ q) @ (X @ kk).transpose(1, 2) / math.sqrt(k), dim=-1) @ (X @ vv)

    def step():
        X = torch.randn(16, T, e, dtype=dt)
        with torch.no_grad():
            Y = attn(X, *teach) + 0.02 * torch.randn(16, T, k, dtype=dt)
        loss = ((attn(X, Wq, Wk, Wv) - Y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return timed(step, steps), 1


def e3(steps, dt):
    n = 20
    P, _ = torch.linalg.qr(torch.randn(n, n, dtype=dt))
    Q, _ = torch.linalg.qr(torch.randn(n, n, dtype=dt))
    M = P[:, :2] @ torch.diag(torch.tensor([15.0, 5.0], dtype=dt)) @ Q[:, :2].T
    mask = (torch.rand(n, n) < 0.2).to(dt)
    U = (torch.randn(n, n, dtype=dt) * 0.11).requires_grad_()
    V = (torch.randn(n, n, dtype=dt) * 0.1).requires_grad_()
    opt = torch.optim.SGD([U, V], lr=1e-3)

    def step():
        b = mask * (torch.rand(n, n) < 0.5).to(dt)
        loss = ((b * (M - U @ V.T)) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return timed(step, steps), 1


def e4(steps, dt):
    n, m, mt = 64, 32, 10000
    ks = torch.arange(n, dtype=dt)
    X = torch.cos(2 * math.pi * torch.rand(m, 1, dtype=dt) * ks)
    Xt = torch.cos(2 * math.pi * torch.rand(mt, 1, dtype=dt) * ks)
    w = torch.zeros(n, dtype=dt)
    w[torch.randperm(n - 1)[:3] + 1] = (1 + torch.rand(3, dtype=dt)) * torch.sign(torch.randn(3, dtype=dt))
    y, yt = X @ w + 0.1 * torch.randn(m, dtype=dt), Xt @ w
    wv = (torch.randn(n, dtype=dt) * 1e-4).requires_grad_()
    wl = (torch.randn(n, dtype=dt) * 1e-4).requires_grad_()
    u = (torch.randn(n, dtype=dt) * 0.01).requires_grad_()
    v = (torch.randn(n, dtype=dt) * 0.01).requires_grad_()
    opts = [torch.optim.SGD(p, lr=1e-3) for p in ([wv], [wl], [u, v])]

    def step():
        losses = [((X @ wv - y) ** 2).mean(), ((X @ wl - y) ** 2).mean() + 0.1 * wl.abs().sum(),
                  ((X @ (u * v) - y) ** 2).mean()]
        for o, l in zip(opts, losses):
            o.zero_grad()
            l.backward()
            o.step()
        with torch.no_grad():
            for ww in (wv, wl, u * v):
                ((Xt @ ww - yt) ** 2).mean()
    return timed(step, steps), 3


def e5(steps, dt):
    n, m = 200, 60
    w = torch.cat([torch.full((50,), 1.0), torch.full((70,), -1.5), torch.full((40,), 0.5),
                   torch.full((40,), 2.0)]).to(dt)
    A = torch.randn(m, n, dtype=dt) / math.sqrt(m)
    y = A @ w + 0.1 * torch.randn(m, dtype=dt)
    wv = (torch.randn(n, dtype=dt) * 1e-4).requires_grad_()
    u = (torch.randn(n, dtype=dt) * 0.3).requires_grad_()
    v = (torch.randn(n, dtype=dt) * 0.3).requires_grad_()
    opts = [torch.optim.SGD([wv], lr=1e-2), torch.optim.SGD([u, v], lr=1e-3)]

    def step():
        losses = [((A @ wv - y) ** 2).mean(), ((A @ torch.cumsum(u * v, 0) - y) ** 2).mean()]
        for o, l in zip(opts, losses):
            o.zero_grad()
            l.backward()
            o.step()
    return timed(step, steps), 2


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    dt = torch.float64 if "--float64" in sys.argv else torch.float32
    steps = int(args[0]) if args else 2000
    which = args[1:] or ["E1", "E2", "E3", "E4", "E5"]
    torch.manual_seed(0)
    for name in which:
        us, models = {"E1": e1, "E2": e2, "E3": e3, "E4": e4, "E5": e5}[name](steps, dt)
        print(f"{name} us_per_step {us / models:.2f} (models {models}, {str(dt).replace('torch.', '')})", flush=True)


if __name__ == "__main__":
    main()

"""Twin critics as two MLPs (the shipped layout) vs one stacked MLP, forward + backward of a critic loss.

The stacked layout keeps both critics' weights in one tensor per layer ([2, in, out]) and runs
each layer once: the first as one [B, in] x [in, 2 * hidden] product, the others as batched
products (baddbmm). It halves the number of ops, autograd nodes and optimiser tensors, but it
changes the checkpoint and weight-transfer layout of q1/q2, so it only ships if it is faster.
HalfCheetah sizes (obs 17 + act 6, 256 hidden, batch 256); best of --repeats runs, interleaved.

    python bench/twin_critics.py [--threads 1] [--calls 300] [--repeats 7]
"""
import argparse
import time

import torch
import torch.nn as nn

BATCH, IN, HIDDEN = 256, 23, 256


def separate_critics():
    def critic():
        return nn.Sequential(nn.Linear(IN, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, HIDDEN), nn.ReLU(),
                             nn.Linear(HIDDEN, 1))
    q1, q2 = critic(), critic()

    def loss(x, target):
        return (q1(x) - target).square().mean() + (q2(x) - target).square().mean()
    return loss, list(q1.parameters()) + list(q2.parameters())


def stacked_critics():
    params = [nn.Parameter(torch.randn(2 * HIDDEN, IN) * 0.1), nn.Parameter(torch.zeros(2 * HIDDEN)),
              nn.Parameter(torch.randn(2, HIDDEN, HIDDEN) * 0.05), nn.Parameter(torch.zeros(2, 1, HIDDEN)),
              nn.Parameter(torch.randn(2, HIDDEN, 1) * 0.05), nn.Parameter(torch.zeros(2, 1, 1))]
    w0, b0, w1, b1, w2, b2 = params

    def loss(x, target):
        hidden = torch.addmm(b0, x, w0.t()).relu_().view(BATCH, 2, HIDDEN).transpose(0, 1)  # [2, B, H]
        hidden = torch.baddbmm(b1, hidden, w1).relu_()
        q = torch.baddbmm(b2, hidden, w2)  # [2, B, 1]
        return (q - target).square().mean(dim=(1, 2)).sum()
    return loss, params


def seconds_per_call(loss, params, x, target, calls):
    start = time.perf_counter()
    for _ in range(calls):
        for param in params:
            param.grad = None
        loss(x, target).backward()
    return (time.perf_counter() - start) / calls


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--calls', type=int, default=300)
    parser.add_argument('--repeats', type=int, default=7)
    options = parser.parse_args(argv)
    torch.set_num_threads(options.threads)
    x, target = torch.randn(BATCH, IN), torch.randn(BATCH, 1)
    layouts = {'two MLPs': separate_critics(), 'stacked': stacked_critics()}
    best = {name: float('inf') for name in layouts}
    for _ in range(options.repeats):
        for name, (loss, params) in layouts.items():
            seconds_per_call(loss, params, x, target, 20)
            best[name] = min(best[name], seconds_per_call(loss, params, x, target, options.calls))
    for name, seconds in best.items():
        print(f'{name:>9}: {seconds * 1e3:.3f} ms per critic loss forward + backward')
    print(f'stacked / two MLPs speed: x{best["two MLPs"] / best["stacked"]:.2f}')


if __name__ == '__main__':
    main()

"""PyTorch peer worker (its own process; one intra-op and one inter-op thread).

Methods: ``torch.func.grad`` (reverse mode; ``torch.func.jacrev`` for a Jacobian program)
and ``torch.func.jacfwd`` (forward mode), float64."""
from __future__ import annotations

import torch

import _common

torch.set_num_threads(1)
try:
    torch.set_num_interop_threads(1)
except RuntimeError:  # pragma: no cover - already set
    pass
torch.set_grad_enabled(True)
_common.define(torch, cross=lambda a, b: torch.linalg.cross(a, b))


def _grad(spec, fn, argnum):
    return (torch.func.grad if spec.kind == "grad" else torch.func.jacrev)(fn, argnums=argnum)


def method(transform):
    def build(spec, fn, argnum, args):
        g = transform(spec, fn, argnum)
        return lambda: g(*args)
    return build


METHODS = {
    "torch.func.grad": method(_grad),
    "torch.func.jacfwd": method(lambda s, f, a: torch.func.jacfwd(f, argnums=a)),
}

if __name__ == "__main__":
    _common.run_worker(METHODS, lambda out: out.detach().numpy(),
                       {"torch": torch.__version__, "torch_threads": torch.get_num_threads()},
                       lambda a: torch.from_numpy(a))

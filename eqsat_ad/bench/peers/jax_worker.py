"""JAX peer worker (its own process, thread pools set to 1 by the coordinator's environment).

Methods: ``jax.grad`` / ``jax.grad+jit`` (reverse mode; ``jax.jacrev`` for a Jacobian
program) and ``jax.jacfwd`` / ``jax.jacfwd+jit`` (forward mode, n tangents), float64."""
from __future__ import annotations

import os

os.environ.setdefault("JAX_ENABLE_X64", "1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import _common  # noqa: E402

jax.config.update("jax_enable_x64", True)
_common.define(jnp, cross=jnp.cross)


def _block(out):
    return out.block_until_ready()


def _grad(spec, fn, argnum):
    return (jax.grad if spec.kind == "grad" else jax.jacrev)(fn, argnums=argnum)


def method(transform, jit):
    def build(spec, fn, argnum, args):
        g = transform(spec, fn, argnum)
        if jit:
            g = jax.jit(g)
        return lambda: _block(g(*args))
    return build


METHODS = {
    "jax.grad": method(_grad, False),
    "jax.grad+jit": method(_grad, True),
    "jax.jacfwd": method(lambda s, f, a: jax.jacfwd(f, argnums=a), False),
    "jax.jacfwd+jit": method(lambda s, f, a: jax.jacfwd(f, argnums=a), True),
}

if __name__ == "__main__":
    import jaxlib
    _common.run_worker(METHODS, lambda out: np.asarray(out),
                       {"jax": jax.__version__, "jaxlib": jaxlib.__version__},
                       lambda a: jnp.asarray(a))

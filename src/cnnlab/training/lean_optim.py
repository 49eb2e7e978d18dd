"""PyTorch's own optimisers, without their start-up cost of importing torch._dynamo (~1.5 CPU-s).

torch.optim wraps `Optimizer.add_param_group`, `zero_grad`, `state_dict` and `load_state_dict` in
`torch._disable_dynamo` and every
optimiser's `step` in `_use_grad_for_differentiable`; each of those imports `torch._dynamo` (the
torch.compile front end: sympy, fx, ...) on its first call, even in a plain eager run. On a 2-core CPU that
import costs about as much CPU time as `import torch` itself, a third of the `--recipe fast` budget.

`lean(cls)` returns a subclass of `cls` whose five methods call the undecorated originals (kept by
functools as `__wrapped__`) under `torch.no_grad()`, which is what the decorators do in eager mode.
The update itself is PyTorch's code, unchanged (the tests compare it with the stock class bit for bit).
When torch._dynamo is already loaded (someone uses torch.compile in this process) or a future PyTorch
drops `__wrapped__`, `lean` returns `cls` itself.
"""

import sys

import torch


def _raw(fn):
    return getattr(fn, "__wrapped__", None)


def lean(cls: type[torch.optim.Optimizer]) -> type[torch.optim.Optimizer]:
    base = torch.optim.Optimizer
    step, zero_grad = _raw(cls.step), _raw(base.zero_grad)
    add_group, state, load = _raw(base.add_param_group), _raw(base.state_dict), _raw(base.load_state_dict)
    if "torch._dynamo" in sys.modules or not all((step, zero_grad, add_group, state, load)):
        return cls

    class Lean(cls):
        def add_param_group(self, param_group: dict) -> None:
            add_group(self, param_group)

        def zero_grad(self, set_to_none: bool = True) -> None:
            zero_grad(self, set_to_none)

        def state_dict(self) -> dict:
            return state(self)

        def load_state_dict(self, state_dict: dict) -> None:
            load(self, state_dict)

        def step(self, closure=None):
            if self.defaults.get("differentiable"):  # the stock wrapper enables grad for this case
                return cls.step(self, closure)
            with torch.no_grad():
                return step(self, closure)

    Lean.__name__ = Lean.__qualname__ = cls.__name__
    return Lean

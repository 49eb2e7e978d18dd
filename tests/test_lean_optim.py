"""The lean optimisers are PyTorch's (bit-identical updates, state dicts that load into the stock class),
and a training run no longer imports torch._dynamo (its start-up cost, see cnnlab.training.lean_optim)."""

import copy
import subprocess
import sys

import pytest
import torch

from cnnlab.models import get_model
from cnnlab.training.lean_optim import lean


@pytest.mark.parametrize(
    "cls, kwargs",
    [
        (torch.optim.Adam, {"lr": 1e-2, "betas": (0.8, 0.95), "fused": True}),
        (torch.optim.AdamW, {"lr": 1e-2, "weight_decay": 0.1, "fused": True}),
        (torch.optim.SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True, "fused": True}),
        (torch.optim.Adam, {"lr": 1e-3}),  # the foreach path
    ],
)
def test_same_updates_as_stock_optimiser(cls, kwargs):
    torch.manual_seed(0)
    stock_model = get_model("fastnet-bn", num_classes=10, in_channels=1, input_size=28)
    lean_model = copy.deepcopy(stock_model)
    x, y = torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,))
    models = []
    for model, make in ((stock_model, cls), (lean_model, lean(cls))):
        opt = make([p for p in model.parameters() if p.requires_grad], **kwargs)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1 / (s + 1))
        for _ in range(3):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
            sched.step()
        models.append((model, opt))
    (m1, o1), (m2, o2) = models
    assert isinstance(o2, cls) and type(o2).__name__ == cls.__name__
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values()):
        assert torch.equal(a, b)
    # a lean state dict is a stock state dict: it resumes in either class
    fresh = cls([p for p in m1.parameters() if p.requires_grad], **kwargs)
    fresh.load_state_dict(o2.state_dict())
    assert str(fresh.state_dict()) == str(o1.state_dict())


def test_training_run_does_not_import_dynamo(tmp_path):
    code = (
        "import sys; from cnnlab.cli import main\nsys.argv = ['cnnlab', *sys.argv[1:]]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('DYNAMO' if 'torch._dynamo' in sys.modules else 'LEAN')"
    )
    args = ["train", "--recipe", "best", "--dataset", "mnist-sample", "--max-steps", "2", "--epochs", "1"]
    args += ["--out", str(tmp_path / "r"), "--json"]
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True, timeout=600
    )
    assert proc.stdout.strip().splitlines()[-1] == "LEAN", proc.stderr[-2000:]

"""LR schedules (pure shapes), optimisers, and the --time-budget planner."""

import pytest
import torch

from cnnlab.errors import CnnlabError
from cnnlab.training.budget import TimeBudget
from cnnlab.training.config import TrainConfig
from cnnlab.training.optim import OPTIMIZERS, build_optimizer, build_scheduler, lr_factor


def curve(total: int = 100, **kw) -> list[float]:
    cfg = TrainConfig(**kw)
    return [lr_factor(cfg, s, total) for s in range(total + 1)]


def test_constant():
    assert set(curve(schedule="constant")) == {1.0}


def test_onecycle_rises_to_peak_at_a_quarter_then_falls_to_zero():
    f = curve(schedule="onecycle")
    assert f[0] == pytest.approx(1 / 25)
    assert max(f) == pytest.approx(1.0) and f.index(max(f)) == 25
    assert all(a <= b for a, b in zip(f[:25], f[1:26]))
    assert all(a >= b for a, b in zip(f[25:], f[26:]))
    assert f[100] == 0.0


def test_onecycle_peak_follows_warmup():
    f = curve(schedule="onecycle", warmup_epochs=1, epochs=10)  # warm-up = 1/10 of training
    assert f.index(max(f)) == 10


def test_cosine_with_warmup():
    f = curve(schedule="cosine", warmup_epochs=1, epochs=10)
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)  # linear warm-up over 10 steps
    assert f[10] == pytest.approx(1.0)
    assert f[55] == pytest.approx(0.5)  # half way through the cosine part
    assert f[100] == pytest.approx(0.0, abs=1e-9)


def test_step_divides_by_ten_at_thirds():
    f = curve(schedule="step", total=90)
    assert f[0] == 1.0 and f[29] == 1.0 and f[30] == pytest.approx(0.1) and f[60] == pytest.approx(0.01)
    assert f[90] == pytest.approx(0.01)


def test_unknown_schedule():
    with pytest.raises(CnnlabError, match="choose from"):
        lr_factor(TrainConfig(schedule="exp"), 0, 10)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_each_optimizer_builds_and_steps(name):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    cfg = TrainConfig(optimizer=name, lr=0.1, weight_decay=1e-4, schedule="cosine", epochs=1)
    opt = build_optimizer(cfg, model)
    sched = build_scheduler(cfg, opt, total_steps=5)
    before = [p.detach().clone() for p in model.parameters()]
    for _ in range(3):
        loss = model(torch.randn(8, 4)).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert opt.param_groups[0]["lr"] < 0.1  # the schedule is applied
    if name == "sgd":
        assert opt.param_groups[0]["nesterov"] and opt.param_groups[0]["momentum"] == 0.9
    if name == "adam":
        assert opt.param_groups[0]["betas"] == (0.9, 0.999)


def test_unknown_optimizer():
    with pytest.raises(CnnlabError, match="choose from"):
        build_optimizer(TrainConfig(optimizer="lion"), torch.nn.Linear(2, 2))


def test_scheduler_reads_the_budget_plan_live():
    cfg = TrainConfig(schedule="onecycle", epochs=100, time_budget=10)
    budget = TimeBudget(cfg, steps_per_epoch=10, cap=1000, eval_fraction=0.0)
    opt = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=1.0)
    sched = build_scheduler(cfg, opt, 1000, budget)
    budget.total = 40  # as if re-planned
    for _ in range(40):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == 0.0  # the one-cycle ended exactly at the planned total


def test_budget_plan_counts_steps_and_evaluations():
    cfg = TrainConfig(time_budget=10.0, epochs=1000)
    budget = TimeBudget(cfg, steps_per_epoch=20, cap=10**6, eval_fraction=0.0)
    budget._step_times = [0.05] * 10  # 50 ms per step
    budget.eval_seconds = 0.5  # per epoch end
    now = budget.start + 1.0  # 1 s spent, 10 steps done
    total = budget.plan(10, now)
    # 8.7 s left (3% kept spare): 110 more steps (5.5 s) + 6 evaluations (3 s) fit and end on an epoch
    # boundary; one more step would need a 7th evaluation
    assert total == 120
    assert (total - 10) * 0.05 + 6 * 0.5 <= 8.7 < (total + 1 - 10) * 0.05 + 7 * 0.5
    budget.cap = 50
    assert budget.plan(10, now) == 50  # --epochs/--max-steps stay upper bounds


def test_time_budget_does_not_write_the_config():
    cfg = TrainConfig(time_budget=0.001, max_steps=0)
    budget = TimeBudget(cfg, steps_per_epoch=10, cap=1000, eval_fraction=0.0)
    planned = [budget.update(s) for s in range(12)]
    assert cfg.max_steps == 0 and planned[-1] == budget.total < 1000


def test_budget_all_reduce_uses_the_groups_device(monkeypatch):
    from cnnlab.training import budget

    monkeypatch.setattr(budget.dist, "get_backend", lambda: "gloo")
    assert budget.group_device() == torch.device("cpu")
    monkeypatch.setattr(budget.dist, "get_backend", lambda: "nccl")
    monkeypatch.setattr(budget.torch.cuda, "current_device", lambda: 3)
    assert budget.group_device() == torch.device("cuda", 3)

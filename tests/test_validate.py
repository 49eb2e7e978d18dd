"""Settings checked up front: the rule table covers every TrainConfig field, all problems come at once
(one line each, naming the flag), misspelt names and flags get a suggestion, and every row of issue
#15's table ends in a clean exit 2 through the real CLI, never in "unexpected error"."""

import itertools
import math
from dataclasses import fields

import pytest
from conftest import untrained_checkpoint
from PIL import Image

from cnnlab.cli import main
from cnnlab.errors import CnnlabError
from cnnlab.options import Rule, did_you_mean, flag_of
from cnnlab.training.config import TrainConfig
from cnnlab.training.flags import field_docs, flags_for
from cnnlab.training.validate import RULES


def test_every_field_has_a_rule_of_its_type():
    for f in fields(TrainConfig):
        assert f.name in RULES, f"TrainConfig.{f.name} has no rule in cnnlab.training.validate.RULES"
        default = getattr(TrainConfig(), f.name)
        rule = RULES[f.name]
        if default is None:
            assert rule.optional, f.name
        elif rule.size:
            assert rule.size < 0 or len(default) == rule.size, f.name
            assert all(isinstance(v, rule.kind) for v in default), f.name
        else:
            assert type(default) is rule.kind, f.name
    assert set(RULES) <= {f.name for f in fields(TrainConfig)}  # no rule for a field that went away


@pytest.mark.parametrize("name", [f.name for f in fields(TrainConfig)])
def test_every_field_rejects_a_wrong_type_by_its_flag(name):
    with pytest.raises(CnnlabError) as e:
        TrainConfig(**{name: object()})
    assert e.value.exit_code == 2
    assert str(e.value).startswith(flag_of(name)) and len(str(e.value).splitlines()) == 1


def test_every_field_has_help_from_its_comment():
    docs = field_docs()
    for f in fields(TrainConfig):
        section, own = docs[f.name]
        assert section and own, f.name
    assert docs["augment"][1].startswith("batched augmentation spec")  # a comment inside ( ... )
    assert docs["seed"][0] == "run control"


def test_folder_settings_are_declared_once_in_folder_options():
    """TrainConfig's folder settings are FolderOptions' fields: the same names, types and defaults, and
    the flags' help is FolderOptions' comment; config.py gives them no default or comment of its own."""
    import ast
    import inspect

    from cnnlab.data import folder
    from cnnlab.data.folder import FolderOptions
    from cnnlab.training import config
    from cnnlab.training.flags import class_comments

    ours = {f.name: f for f in fields(TrainConfig)}
    folder_docs, _notes = class_comments(folder, "FolderOptions")
    for f in fields(FolderOptions):
        assert f.name in ours, f.name
        assert ours[f.name].type == f.type and ours[f.name].default == f.default, f.name
        assert field_docs()[f.name][1] == folder_docs[f.name][1] != "", f.name
    src = inspect.getsource(config)
    body = next(
        n for n in ast.parse(src).body if isinstance(n, ast.ClassDef) and n.name == "TrainConfig"
    ).body
    lines = src.splitlines()
    for node in body:
        if isinstance(node, ast.AnnAssign) and node.target.id in FolderOptions.__dataclass_fields__:
            text = "\n".join(lines[node.lineno - 1 : node.end_lineno])
            assert ast.unparse(node.value) == f"FOLDER.{node.target.id}" and "#" not in text, text
    options = FolderOptions.from_config(TrainConfig(image_size=20, classes="a,b", val_split=0.1))
    assert (options.image_size, options.classes, options.val_split) == (20, "a,b", 0.1)


def test_all_problems_at_once_one_line_each():
    with pytest.raises(CnnlabError) as e:
        TrainConfig(batch_size=0, lr=-1.0, ema=1.5, model="resnt18", betas=(0.9, 1.0))
    lines = str(e.value).splitlines()
    assert lines == [
        "--model: unknown model 'resnt18'; did you mean resnet18? choose from: "
        + ", ".join(RULES["model"].names()),
        "--batch-size 0: must be a whole number >= 1",
        "--lr -1.0: must be a finite number in (0, 1000000]",
        "--betas 0.9 1.0: each value must be a finite number in [0, 1)",
        "--ema 1.5: must be a finite number in [0, 1)",
    ]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"resume": True, "overwrite": True}, "--resume and --overwrite exclude each other"),
        ({"sync_bn": True}, "--sync-bn needs GPUs"),
        ({"warmup_epochs": 1.0, "epochs": 1}, "--warmup-epochs 1: must be shorter than the run (--epochs 1)"),
        ({"patience": 2}, "--patience 2: early stopping watches validation accuracy"),
        ({"augment": "flip=0.5", "dataset": "mnist"}, "--augment flip makes no sense for mnist"),
        ({"augment": "spin=3"}, "--augment: unknown term 'spin=3'"),
    ],
)
def test_combinations_that_cannot_work(kwargs, message):
    if kwargs.get("sync_bn"):
        import torch

        if torch.cuda.is_available():
            pytest.skip("GPUs here: --sync-bn is fine")
    with pytest.raises(CnnlabError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        TrainConfig(**kwargs)


def test_combination_skipped_when_a_field_already_failed():
    with pytest.raises(CnnlabError) as e:
        TrainConfig(warmup_epochs=50.0, epochs=0)
    assert str(e.value) == "--epochs 0: must be a whole number >= 1"


def test_values_are_normalised():
    cfg = TrainConfig(lr=1, betas=[0.8, 0.9], width=2)
    assert cfg.lr == 1.0 and type(cfg.lr) is float and cfg.betas == (0.8, 0.9) and type(cfg.width) is float
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    "rule, good, bad",
    [
        (Rule(int, 1), [1, 2**40], [0, -1, 1.0, True, "3", None]),
        (Rule(float, 0, 1, high_open=True), [0, 0.0, 0.999], [1.0, -1e-9, math.nan, math.inf, False, "0.1"]),
        (Rule(float, 0, low_open=True), [1e-300, 5], [0.0, -math.inf, math.inf, math.nan]),
        (Rule(str, optional=True), [None, "a"], ["", "  ", "a\0b", 3]),
        (Rule(bool), [True, False], [0, 1, "true", None]),
        (Rule(float, 0, 1, size=2), [(0.1, 0.2), [0, 1]], [(0.1,), (0.1, 2), 0.5, "ab"]),
        (Rule(str, size=-1), [[], ["a", "b"]], [["a", ""], "ab", [1]]),
        (Rule(str, choices=("adam", "sgd")), ["adam"], ["Adam", "", 3, None]),
    ],
)
def test_rule_accepts_and_rejects(rule, good, bad):
    for v in good:
        assert rule.check("--x", v)[1] is None, v
    for v in bad:
        problem = rule.check("--x", v)[1]
        assert problem and problem.startswith("--x"), v


def test_allowed_in_words():
    assert Rule(int, 0, 1024).allowed() == "a whole number from 0 to 1024"
    assert Rule(float, 0, 1, high_open=True).allowed() == "a finite number in [0, 1)"
    assert Rule(float, 0, low_open=True).allowed() == "a finite number > 0"
    assert Rule(str, choices=("a", "b")).allowed() == "one of: a, b"


def test_did_you_mean():
    assert did_you_mean("resnt18", ["chapter-cnn", "resnet18", "resnet34"]) == "resnet18"
    assert did_you_mean("--modle", ["--model", "--momentum"]) == "--model"
    assert did_you_mean("alexnet", ["chapter-cnn", "vgg11"]) is None


def test_flags_for_round_trips_booleans_both_ways():
    assert flags_for({"tta": False, "aux": True, "lr": 0.1, "betas": (0.8, 0.9), "out": None}) == [
        "--no-tta",
        "--aux",
        "--lr",
        "0.1",
        "--betas",
        "0.8",
        "0.9",
    ]


def run_main(capsys, *argv: str) -> tuple[int, str]:
    """The real CLI entry point in-process (no torch import per case): (exit code, stderr)."""
    with pytest.raises(SystemExit) as e:
        main(list(argv))
    return e.value.code, capsys.readouterr().err


TRAIN = ("train", "--dataset", "mnist-sample", "--max-steps", "1", "--limit-train", "64")


# every row of issue #15's table: the flags, and the line that must come out instead
@pytest.mark.parametrize(
    "args, line",
    [
        (["--width", "0"], "--width 0.0: must be a finite number in (0, 16]"),
        (["--width", "-1"], "--width -1.0: must be a finite number in (0, 16]"),
        (["--limit-train", "-5"], "--limit-train -5: must be a whole number >= 0"),
        (["--time-budget", "-5"], "--time-budget -5.0: must be a finite number in [0, 604800]"),
        (["--checkpoint-every", "-1"], "--checkpoint-every -1: must be a whole number >= 0"),
        (["--patience", "-1"], "--patience -1: must be a whole number >= 0"),
        (["--momentum", "5"], "--momentum 5.0: must be a finite number in [0, 1)"),
        (["--warmup-epochs", "50", "--epochs", "1"], "--warmup-epochs 50: must be shorter than the run"),
        (["--epochs", "0"], "--epochs 0: must be a whole number >= 1"),
        (["--batch-size", "0"], "--batch-size 0: must be a whole number >= 1"),
        (["--lr", "-1"], "--lr -1.0: must be a finite number in (0, 1000000]"),
        (["--weight-decay", "-1"], "--weight-decay -1.0: must be a finite number in [0, 1000000]"),
        (["--ema", "1.5"], "--ema 1.5: must be a finite number in [0, 1)"),
        (["--label-smoothing", "2"], "--label-smoothing 2.0: must be a finite number in [0, 1)"),
        (["--threads", "-3"], "--threads -3: must be a whole number from 0 to 1024"),
        (["--eval-batch-size", "0"], "--eval-batch-size 0: must be a whole number >= 1"),
        (["--lr", "nan"], "--lr nan: must be a finite number in (0, 1000000]"),
        (["--modle", "resnet18"], "unrecognized arguments: --modle resnet18; did you mean --model?"),
        (["--model", "resnt18"], "--model: unknown model 'resnt18'; did you mean resnet18?"),
        (["--optimizer", "adamm"], "--optimizer: unknown optimizer 'adamm'; did you mean adam?"),
        (["--recipe", "fats"], "--recipe: unknown recipe 'fats'; did you mean fast?"),
        (["--nproc", "0"], "--nproc 0: must be a whole number from 1 to 1024"),
    ],
)
def test_issue_table_train_rows(capsys, tmp_path, args, line):
    code, err = run_main(capsys, *TRAIN, "--out", str(tmp_path / "r"), *args)
    assert code == 2 and "unexpected error" not in err and "Traceback" not in err
    assert any(e.startswith(f"cnnlab: error: {line}") for e in err.splitlines()), err
    assert not (tmp_path / "r").exists()  # refused before any file was written


@pytest.mark.parametrize("top", ["0", "-2"])
def test_issue_table_predict_top(capsys, tmp_path, top):
    ckpt = untrained_checkpoint(tmp_path / "m")
    Image.new("L", (28, 28)).save(tmp_path / "x.png")
    code, err = run_main(capsys, "predict", str(ckpt), str(tmp_path / "x.png"), "--top", top)
    assert code == 2 and err == f"cnnlab: error: --top {top}: must be a whole number >= 1\n"


@pytest.mark.parametrize(
    "argv, line",
    [
        (["trian"], "invalid choice: 'trian'"),
        (["eval", "x", "--batch-size", "0"], "--batch-size 0: must be a whole number >= 1"),
        (["plot", "curvs", "x"], "did you mean curves?"),
        (["plot", "feature-maps", "x", "--index", "-1", "--max-channels", "0"], "--index -1: must be"),
        (["serve", "x", "--port", "70000"], "--port 70000: must be a whole number from 0 to 65535"),
        (["export", "x", "y.onnx", "--opset", "3"], "--opset 3: must be a whole number from 7 to 100"),
        (["bench", "--batch-size", "0", "--classes", "0"], "--classes 0: must be a whole number"),
        (["summary", "chapter-cnn", "--width", "0"], "--width 0.0: must be a finite number in (0, 64]"),
        (["summary", "resnt18"], "unknown model 'resnt18'; did you mean resnet18?"),
        (["explain", "conv", "1", "1", "--stride", "0"], "--stride 0: must be a whole number from 1 to 1024"),
    ],
)
def test_other_commands_options(capsys, argv, line):
    code, err = run_main(capsys, *argv)
    assert code == 2 and "unexpected error" not in err and line in err, err


def test_version(capsys):
    from cnnlab import __version__

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out == f"cnnlab {__version__}\n"


def test_bad_saved_config_is_named_on_resume(capsys, tmp_path):
    """--resume takes the settings from the resume state (not config.json); they pass the same checks."""
    import torch

    out = tmp_path / "r"
    out.mkdir()
    bad = {**TrainConfig().to_dict(), "lr": -1, "epochs": "3"}
    torch.save({"format": "cnnlab-state/1", "meta": {"config": bad}}, out / "state.pt")
    code, err = run_main(capsys, "train", "--resume", "--out", str(out))
    assert code == 2
    assert err.splitlines() == [
        f"cnnlab: error: {out / 'state.pt'}: --epochs '3': must be a whole number >= 1",
        f"cnnlab: error: {out / 'state.pt'}: --lr -1.0: must be a finite number in (0, 1000000]",
    ]


def test_real_process_reports_every_problem_and_exits_2(cli, tmp_path):
    """One subprocess through `python -m cnnlab`: the exit code and the lines a shell user sees."""
    proc = cli("train", "--batch-size", "0", "--lr", "-1", "--epochs", "0", check=False, cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == [
        "cnnlab: error: --epochs 0: must be a whole number >= 1",
        "cnnlab: error: --batch-size 0: must be a whole number >= 1",
        "cnnlab: error: --lr -1.0: must be a finite number in (0, 1000000]",
    ]
    assert not (tmp_path / "runs").exists()


def test_time_budget_shorter_than_one_step_is_refused():
    from cnnlab.training.budget import TimeBudget

    budget = TimeBudget(TrainConfig(time_budget=0.01), steps_per_epoch=10, cap=100, eval_fraction=0.0)
    budget._step_times = [0.05, 0.06]  # as measured over the probe steps
    with pytest.raises(CnnlabError, match=r"^--time-budget 0.01: shorter than one training step \(0.055 s"):
        budget.check_one_step_fits()
    budget.seconds = 1.0
    budget.check_one_step_fits()  # 18 steps fit: no error


def test_time_budget_check_runs_at_the_first_plan(monkeypatch):
    from cnnlab.training import budget as b

    clock = itertools.count()  # every step takes 1 "second" on this clock
    monkeypatch.setattr(b.time, "perf_counter", lambda: float(next(clock)))
    tb = b.TimeBudget(TrainConfig(time_budget=0.5), steps_per_epoch=100, cap=1000, eval_fraction=0.0)
    with pytest.raises(CnnlabError, match="--time-budget"):
        for step in range(b.PROBE_STEPS + 1):
            tb.update(step)


def test_no_far_fetched_suggestion():
    assert did_you_mean("alexnet", RULES["model"].names()) is None
    assert did_you_mean("Chapter-CNN", RULES["model"].names()) == "chapter-cnn"
    assert did_you_mean("fats", ["best", "chapter", "fast"]) == "fast"


def test_resume_of_a_run_made_with_overwrite_is_not_a_conflict(tmp_path):
    import torch

    from cnnlab.cli import build_parser
    from cnnlab.training.settings import config_from_args

    out = tmp_path / "r"
    out.mkdir()
    saved = {**TrainConfig().to_dict(), "overwrite": True, "lr": 0.01}
    torch.save({"format": "cnnlab-state/1", "meta": {"config": saved}}, out / "state.pt")
    cfg = config_from_args(build_parser("train").parse_args(["train", "--resume", "--out", str(out)]))
    assert cfg.resume and not cfg.overwrite and cfg.lr == 0.01 and cfg.betas == (0.9, 0.999)
    args = build_parser("train").parse_args(["train", "--resume", "--overwrite", "--out", str(out)])
    with pytest.raises(CnnlabError, match="--resume and --overwrite exclude each other"):
        config_from_args(args)  # both typed by the user: that is the conflict


def test_train_help_shows_comments_choices_ranges_and_no_flags(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert "--tta, --no-tta test-time augmentation at evaluation; default: off" in text
    assert "--aux, --no-aux GoogLeNet auxiliary classifiers" in text
    assert "--ema EMA EMA decay of weights per step (0 = off)" in text and "[0, 1)" in text
    assert "choices: adam, adamw, sgd; default: adam" in text
    assert "run control:" in text and "--betas B1 B2" in text


def test_no_flag_turns_off_a_recipe_setting():
    from cnnlab.cli import build_parser
    from cnnlab.training.settings import config_from_args

    parse = build_parser("train").parse_args
    assert config_from_args(parse(["train", "--recipe", "best"])).tta is True
    assert config_from_args(parse(["train", "--recipe", "best", "--no-tta"])).tta is False
    assert config_from_args(parse(["train", "--no-channels-last"])).channels_last is False


def test_nproc_relaunch_repeats_the_flags_given():
    from cnnlab.cli import build_parser
    from cnnlab.training.launch import train_argv

    args = build_parser("train").parse_args(["train", "--no-tta", "--lr", "0.1", "--nproc", "2", "--json"])
    assert train_argv(args) == ["--lr", "0.1", "--no-tta", "--json"]


@pytest.mark.parametrize("dataset", [[], {}, 3])
def test_a_dataset_of_the_wrong_type_is_one_error_not_a_crash(dataset):
    """Combination checks that read the dataset (is it a folder?) wait for its own rule: a list as the
    dataset once reached `_splits` and crashed with "unhashable type" (found by test_validate_property)."""
    with pytest.raises(CnnlabError, match="dataset"):
        TrainConfig(dataset=dataset)

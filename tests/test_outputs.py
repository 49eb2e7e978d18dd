"""Files a command writes where the user said: never the checkpoint it reads or another record of its run
(compared like `cp`'s "are the same file": device and inode), never a device, FIFO or socket, written
through a symbolic link; and images read only when they are regular files (a FIFO would hang).

One tiny real run (the CLI, 5 steps on the bundled MNIST sample) serves the whole file; the tests that
could damage it work on copies.
"""

import os
import shutil
import socket
import stat
from pathlib import Path

import pytest
from PIL import Image

from cnnlab.errors import CnnlabError

TINY = ("--dataset", "mnist-sample", "--limit-train", "512", "--max-steps", "5", "--width", "0.5")


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    from conftest import run_cli

    out = tmp_path_factory.mktemp("run") / "run"
    run_cli("train", *TINY, "--out", str(out))
    return out


@pytest.fixture
def copy(run, tmp_path) -> Path:
    return Path(shutil.copytree(run, tmp_path / "run"))


@pytest.fixture(scope="module")
def digit_png(tmp_path_factory) -> Path:
    """A real MNIST test digit as a PNG file."""
    from cnnlab.data import load_dataset

    d = load_dataset("mnist-sample")
    path = tmp_path_factory.mktemp("img") / "digit.png"
    Image.fromarray(d.test_x[0, 0].numpy()).save(path)
    return path


def contents(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def one_line_error(proc, code: int, text: str) -> None:
    assert proc.returncode == code, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cnnlab: error:") and text in lines[0], proc.stderr


# ---- export onto the run it reads ------------------------------------------------------------------------


def test_export_onto_its_own_run_is_refused_and_the_run_still_evaluates(cli, copy):
    """The issue: `export RUN RUN/best.safetensors` exited 0 and left an ONNX file where the checkpoint was
    (eval: exit 7); over state.pt, --resume then called the ONNX file malicious."""
    before = contents(copy)
    for name in ("best.safetensors", "state.pt"):
        proc = cli("export", str(copy), str(copy / name), check=False)
        one_line_error(proc, 2, "is read by this command")
    assert contents(copy) == before
    assert cli("eval", str(copy), "--json").returncode == 0
    assert cli("eval", str(copy / "state.pt"), "--json").returncode == 0


def test_links_to_a_run_file_are_the_same_file(copy, tmp_path):
    """A symbolic or a hard link elsewhere that names a file of the run is that file."""
    from cnnlab.core.files import RUN_RECORDS, output_file

    (tmp_path / "soft.onnx").symlink_to(copy / "best.safetensors")
    os.link(copy / "state.pt", tmp_path / "hard.onnx")
    for target, twin in (("soft.onnx", "best.safetensors"), ("hard.onnx", "state.pt")):
        with pytest.raises(CnnlabError, match=f"the same file as .*{twin}.* is read by this command") as e:
            output_file(tmp_path / target, [copy])
        assert e.value.exit_code == 2
    for name in RUN_RECORDS:  # a checkpoint file brings the rest of its run folder
        if (copy / name).exists():
            with pytest.raises(CnnlabError, match="is read by this command"):
                output_file(copy / name, [copy / "last.json"])
    assert output_file(copy / "model.onnx", [copy]) == copy / "model.onnx"  # a new name in the run: fine


def test_export_writes_through_a_symbolic_link(cli, run, tmp_path):
    """The link stays a link and its target gets the ONNX file, with the target's permissions kept."""
    import onnx

    real = tmp_path / "models" / "real.onnx"
    real.parent.mkdir()
    real.write_text("old")
    real.chmod(0o644)
    link = tmp_path / "link.onnx"
    link.symlink_to(real)
    cli("export", str(run), str(link))
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert onnx.load(str(real)).graph.input[0].name == "input"
    assert stat.S_IMODE(real.stat().st_mode) == 0o644
    assert not list(tmp_path.glob(".*.tmp")) and not list(real.parent.glob(".*.tmp"))


def test_a_dangling_link_is_not_written_through(tmp_path):
    from cnnlab.core.files import output_file

    (tmp_path / "out.onnx").symlink_to(tmp_path / "nowhere" / "x.onnx")
    with pytest.raises(CnnlabError, match="symbolic link to a missing file"):
        output_file(tmp_path / "out.onnx")


# ---- special files: refused, never replaced ----------------------------------------------------------------


def test_a_device_is_refused_and_stays_a_device(cli, run, tmp_path):
    """As root, export's atomic rename replaced /dev/full by a plain file. The CLI is pointed at a private
    twin of /dev/full made here (a test that failed on /dev/full itself would destroy it)."""
    from cnnlab.core.files import output_file

    with pytest.raises(CnnlabError, match="not a regular file"):
        output_file("/dev/full")  # checked only: nothing is written
    device = tmp_path / "full"
    try:
        os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 7))
    except OSError as e:
        pytest.skip(f"cannot make a device node here ({e.strerror}): needs root")
    proc = cli("export", str(run), str(device), check=False)
    one_line_error(proc, 2, "not a regular file")
    assert stat.S_ISCHR(os.stat(device).st_mode)


def test_fifos_sockets_and_folders_are_refused_by_every_writer(tmp_path):
    from cnnlab.core.files import atomic_write_text, output_file

    fifo = tmp_path / "f.png"
    os.mkfifo(fifo)
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "s.png"))
    try:
        for special in (fifo, tmp_path / "s.png"):
            with pytest.raises(CnnlabError, match="not a regular file"):
                atomic_write_text(special, "x")  # every checkpoint, curve and ONNX file goes through here
            assert not stat.S_ISREG(os.stat(special).st_mode)
    finally:
        sock.close()
    with pytest.raises(CnnlabError, match="is a folder"):
        output_file(tmp_path)


# ---- the other commands that write a file the user names ------------------------------------------------


def test_plot_eval_and_predict_refuse_to_overwrite_what_they_read(cli, copy, digit_png, tmp_path):
    before = contents(copy)
    for args in (
        ("eval", str(copy), "--plot", str(copy / "best.safetensors")),
        ("plot", "curves", str(copy), "--out", str(copy / "metrics.csv")),
        ("plot", "filters", str(copy / "best.safetensors"), "--out", str(copy / "best.json")),
        ("predict", str(copy), str(digit_png), "--csv", str(copy / "metrics.csv")),
        ("lr-find", *TINY[:2], "--weights", str(copy), "--num-steps", "5", "--plot", str(copy / "best.json")),
    ):
        one_line_error(cli(*args, check=False), 2, "is read by this command")
    assert contents(copy) == before
    # predict --save-input into the inputs' own folder: digit.png would be replaced by its 28x28 input
    image = tmp_path / "digit.png"
    shutil.copy(digit_png, image)
    proc = cli("predict", str(copy), str(image), "--save-input", str(tmp_path), check=False)
    one_line_error(proc, 2, "digit.png is read by this command")
    assert image.read_bytes() == digit_png.read_bytes()
    cli("predict", str(copy), str(image), "--save-input", str(tmp_path / "inputs"))
    assert Image.open(tmp_path / "inputs" / "digit.png").size == (28, 28)


def test_a_plot_into_a_fifo_is_refused_without_waiting_for_a_reader(cli, run, tmp_path):
    fifo = tmp_path / "curves.png"
    os.mkfifo(fifo)
    proc = cli("plot", "curves", str(run), "--out", str(fifo), check=False, timeout=120)
    one_line_error(proc, 2, "not a regular file")


# ---- images: only regular files are opened ------------------------------------------------------------------


def test_predict_skips_a_fifo_and_predicts_the_other_files(cli, run, digit_png, tmp_path):
    """The issue: `predict RUN fifo.png` hung and never reached the other files."""
    fifo = tmp_path / "fifo.png"
    os.mkfifo(fifo)
    (tmp_path / "zero.png").symlink_to("/dev/zero")
    proc = cli(
        "predict", str(run), str(fifo), str(tmp_path / "zero.png"), str(digit_png), check=False, timeout=120
    )
    assert proc.returncode == 2, proc.stderr
    assert "fifo.png: not a regular file" in proc.stderr and "zero.png: not a regular file" in proc.stderr
    assert f"{digit_png}: " in proc.stdout  # the real image was still predicted


def test_open_image_reads_regular_files_only(tmp_path, digit_png):
    from cnnlab.prediction import open_image

    assert open_image(digit_png).size == (28, 28)
    os.mkfifo(tmp_path / "f.png")
    for path, why in ((tmp_path / "f.png", "not a regular file"), (tmp_path, "a folder")):
        with pytest.raises(CnnlabError, match=why):
            open_image(path, str(path))

"""What `headstart fit` leaves on disk: run folders that say what they hold, readable files, absolute
paths, and checkpoints that go once the model is saved (issue 26, items 9 and 10)."""

import contextlib
import io
import json
import os
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from headstart.atomic import write_atomic, write_json
from headstart.checkpoint import CHECKPOINT_FILE, remove_checkpoints
from headstart.cli import main
from headstart.cli.format import fit_summary_lines

from helpers import tiny_images

FINETUNE = ["--strategy", "finetune", "--epochs", "2", "--patience", "2", "--batch-size", "4", "--image-size", "32",
            "--backbone", "mobilenetv2_100", "--quiet"]


def run(argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def write_images(root: Path, per_class: int = 4) -> Path:
    X, y = tiny_images(per_class)
    for i, (pixels, label) in enumerate(zip(X, y)):
        (root / label).mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(root / label / f"{i}.png")
    return root


@contextlib.contextmanager
def working_directory_and_umask(folder: Path, umask: int):
    old_folder, old_umask = os.getcwd(), os.umask(umask)
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(old_folder)
        os.umask(old_umask)


@pytest.fixture(scope="module")
def two_fits(tmp_path_factory):
    """Two fits with the same options and the same --checkpoint-dir, all paths relative, umask 022;
    the checkpoint folder also holds a file of the user's."""
    base = tmp_path_factory.mktemp("two-fits")
    write_images(base / "data")
    (base / "ckpt").mkdir()
    (base / "ckpt" / "notes.txt").write_text("mine")
    options = [*FINETUNE, "--checkpoint-dir", "ckpt", "--cache-dir", "cache"]
    with working_directory_and_umask(base, 0o022):
        first = run(["fit", "data", "--out", "run1", *options])
        left = sorted(str(p.relative_to(base / "ckpt")) for p in (base / "ckpt").rglob("*"))
        second = run(["fit", "data", "--out", "run2", *options])
    assert first[0] == 0 and second[0] == 0, first[2] + second[2]
    return SimpleNamespace(base=base, first=first, second=second, left_in_checkpoint_dir=left)


def test_fit_checkpoint_dir_keeps_only_the_users_files_after_success(two_fits):
    """A custom --checkpoint-dir kept its 54 MB spent checkpoint after the fit succeeded."""
    assert two_fits.left_in_checkpoint_dir == ["notes.txt"]
    assert (two_fits.base / "ckpt" / "notes.txt").read_text() == "mine"


def test_fit_again_with_the_same_checkpoint_dir_trains_every_epoch(two_fits):
    """The second fit used to resume the first's finished checkpoint: 0 epochs trained, 'resumed after epoch 2'."""
    code, out, err = two_fits.second
    assert "resumed:" not in out
    history = json.loads((two_fits.base / "run2" / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]
    assert json.loads((two_fits.base / "run2" / "metrics.json").read_text())["resumed_after_epoch"] is None


def test_fit_run_folder_records_absolute_paths(two_fits):
    """config.json stored checkpoint_dir='ckpt' and cache_dir='cache', which mean nothing from another folder."""
    base = two_fits.base
    params = json.loads((base / "run1" / "config.json").read_text())["params"]
    assert (params["checkpoint_dir"], params["cache_dir"]) == (str(base / "ckpt"), str(base / "cache"))
    recorded = json.loads((base / "run1" / "fit_args.json").read_text())["args"]
    assert (recorded["data"], recorded["checkpoint_dir"]) == (str(base / "data"), str(base / "ckpt"))


def test_fit_run_folder_files_follow_the_umask(two_fits):
    """Every file was written 0600 (tempfile.mkstemp's mode, kept by the rename)."""
    modes = {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in (two_fits.base / "run1").iterdir()}
    assert modes and set(modes.values()) == {"0o644"}, modes


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_writes_follow_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        write_json(tmp_path / "a.json", {"a": 1})
        write_atomic(tmp_path / "b.safetensors", lambda temporary: save_file({"t": torch.zeros(2)}, temporary))
    finally:
        os.umask(old)
    assert [stat.S_IMODE((tmp_path / name).stat().st_mode) for name in ("a.json", "b.safetensors")] == [mode, mode]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.safetensors"]  # no temporary left


def test_remove_checkpoints_removes_headstart_checkpoints_and_nothing_else(tmp_path):
    ours = {"headstart": json.dumps({"epoch": 1})}
    for folder in ("", "planner/linear_probe@x/split-1", "dann_0.3"):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
        save_file({"model/w": torch.zeros(1)}, str(tmp_path / folder / CHECKPOINT_FILE), metadata=ours)
    (tmp_path / f".{CHECKPOINT_FILE}.1a2b3c4d.tmp").write_bytes(b"half")  # a kill during the write
    (tmp_path / "other").mkdir()
    save_file({"w": torch.zeros(1)}, str(tmp_path / "other" / CHECKPOINT_FILE))  # another program's
    (tmp_path / "planner" / "notes.txt").write_text("mine")
    (tmp_path / "empty").mkdir()
    assert remove_checkpoints(tmp_path) is True
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == [
        "empty", "other", f"other/{CHECKPOINT_FILE}", "planner", "planner/notes.txt"]


def test_fit_interrupted_names_the_checkpoint_dir_it_was_given(tmp_path, monkeypatch):
    """The message named RUN_DIR/checkpoint even where --checkpoint-dir put the checkpoint elsewhere."""
    import headstart.train as train_module

    write_images(tmp_path / "data")
    real = train_module.save_checkpoint

    def save_then_interrupt(folder, **kwargs):
        real(folder, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "save_checkpoint", save_then_interrupt)
    code, _, err = run(["fit", tmp_path / "data", "--out", tmp_path / "run", *FINETUNE,
                        "--checkpoint-dir", tmp_path / "elsewhere", "--cache-dir", "none"])
    assert code == 130
    assert f"the epochs that finished are checkpointed in {tmp_path / 'elsewhere'}: continue with" in err
    assert (tmp_path / "elsewhere" / CHECKPOINT_FILE).is_file()


def test_predict_on_the_folder_of_an_unfinished_fit_says_how_to_resume(tmp_path, capsys):
    """A failed or interrupted fit leaves RUN_DIR/fit_args.json only; predict called it 'not a headstart run folder'."""
    (tmp_path / "run").mkdir()
    write_json(tmp_path / "run" / "fit_args.json", {"args": {}})
    (tmp_path / "texts.txt").write_text("a text\n")
    assert main(["predict", str(tmp_path / "run"), str(tmp_path / "texts.txt")]) == 2
    err = capsys.readouterr().err
    assert "not a headstart run folder" not in err
    assert f"{tmp_path / 'run'} holds no model yet: the `headstart fit` that writes it did not finish" in err
    assert f"continue it with `headstart fit --resume {tmp_path / 'run'}`" in err


@pytest.fixture(scope="module")
def auto_run(tmp_path_factory):
    """strategy auto on 2 x 10 images: tiny data, so 3-fold scoring and a refit of the winner on all 20."""
    base = tmp_path_factory.mktemp("auto-run")
    write_images(base / "data", per_class=10)
    code, out, err = run(["fit", base / "data", "--out", base / "run", "--strategy", "auto", "--budget", "15s",
                          "--epochs", "1", "--image-size", "32", "--cache-dir", "none", "--quiet"])
    assert code == 0, err
    return SimpleNamespace(run=base / "run", out=out)


def test_auto_fit_summary_says_what_the_final_model_was_trained_on(auto_run):
    """It said 'train / validation: 13 / 7 examples (one of the planner's 3 folds)' of a model refit on all 20."""
    assert json.loads((auto_run.run / "plan.json").read_text())["winner_refit"] is True
    assert "final model:         refit on all 20 labeled examples (candidates were scored on 3 folds of 13 / 7 " \
           "examples)" in auto_run.out
    assert "one of the planner's" not in auto_run.out


def test_auto_fit_history_is_never_a_bare_empty_list(auto_run):
    history = json.loads((auto_run.run / "history.json").read_text())
    assert history, "history.json is [] and says nothing"
    winner = json.loads((auto_run.run / "plan.json").read_text())["winner"]
    assert all("epoch" in record or "C" in record for record in history) or (
        len(history) == 1 and f"strategy='auto' chose {winner}" in history[0]["note"])


def test_auto_summary_of_a_winner_kept_as_scored_gives_its_own_split():
    summary = {"strategy": "auto", "backbone": "minilm_l6", "modality": "text", "n_train": 96, "n_val": 24,
               "n_labeled": 120, "splits": 1, "verdict": "v", "chosen": "finetune@minilm_l6", "val_accuracy": 0.9,
               "fit_seconds": 1.0}
    clf = SimpleNamespace(fit_summary_=summary, classes_=["a", "b"], skipped_=[], plan_={"winner_refit": False},
                          adapt=None)
    assert ("train / validation:  96 / 24 examples (the final model, kept as scored on the planner's split)"
            in fit_summary_lines(clf, "run"))

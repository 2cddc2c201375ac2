"""headstart's training loop against a plain loop, timed in interleaved pairs: ``python -m bench.paired``.

Timing each side in its own processes one after the other lets drift on a shared machine land on
one side only (issue 29: the same code measured 0.79× and 1.15× in two runs). Here both sides run
in one process, on the same inputs, batch size, epochs, seed and threads, alternately A B B A …:
each pair gives one ratio (headstart's examples/s ÷ the peer's), and the table reports the median
ratio with its spread (min–max over the pairs). One warm-up call of each side is not timed.

Rows (``--rows``):

* ``image:freeze=K`` — efficientnet_lite0 on Fashion-MNIST at 64 px, batch 32, augmentation off:
  ``TransferClassifier(strategy="finetune", freeze=K)`` against a plain PyTorch loop
  (bench.peers' loop: AdamW 5e-4, cosine, preprocessing every step) that freezes the same layer
  groups (no gradients, BatchNorm in eval mode), K = 0 and the first half of the groups.
* ``text`` — minilm_l6 on VADER movie snippets, batch 8: headstart's fine-tune against the Hugging
  Face ``Trainer`` (``DataCollatorWithPadding``, its defaults otherwise).

headstart's rate is its training batches' own clock (``fit_summary_["batch_examples_per_second"]``:
preprocessing, forward, backward, step, and building any reused prefix or input cache; not its
per-epoch validation, which the peers do not run); the peers' is their loop's: the plain loop's
epochs, and the HF Trainer's epochs (a callback's clock from each epoch's start to its end, so not
the Trainer's set-up). ``--accuracy`` adds
the check that grouping text by length leaves a short fine-tune's test accuracy where it was.
Results: ``bench/results/speed.json`` (key ``pairs``) and the section in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from headstart import TransferClassifier, __version__

from . import datasets
from .peers import _image_model, _image_tensor, hf_trainer_peer
from .report import cpu_model, write_section

ROOT = Path(__file__).resolve().parent.parent
HF_TRAINER_CLOCK = "epochs"  # what the HF Trainer's rate is timed over: text runs timed otherwise do not compare


def headstart_rate(X, y, args, **options) -> float:
    clf = TransferClassifier(strategy="finetune", epochs=args.epochs, augment=False, patience=args.epochs,
                             val_size=0.1, cache_dir="none", verbose=0, random_state=0, **options).fit(X, y)
    return clf.fit_summary_["batch_examples_per_second"]


def group_module_names(image_size: int) -> list[tuple[list[str], str]]:
    """``(module names, output module name)`` of each efficientnet_lite0 layer group, to freeze the
    peer's copy by name and to time its frozen groups."""
    from headstart.backbones import create_backbone

    backbone = create_backbone("efficientnet_lite0", image_size=image_size, pretrained=False)
    by_id = {id(m): name for name, m in backbone.model.named_modules()}
    return [([by_id[id(m)] for m in group.modules], by_id[id(group.output_module)])
            for group in backbone.layer_groups()]


def plain_loop_rate(X, y, args, freeze: int, frozen_share: list | None = None) -> float:
    """bench.peers' plain loop, with the first ``freeze`` of headstart's layer groups frozen by hand.

    ``frozen_share`` gets the fraction of the loop's time spent in the frozen groups' forward pass
    (hooks at the first frozen module's input and the last frozen group's output): all that reusing
    their outputs can save, so ``1 / (1 - share)`` bounds the speed-up of a reused prefix.
    """
    torch.manual_seed(0)
    classes, encoded = np.unique(y, return_inverse=True)
    network = _image_model(len(classes), args.image_size).train()
    groups = group_module_names(args.image_size)[:freeze]
    names = {name for modules, _ in groups for name in modules}
    frozen = [m for name, m in network.named_modules() if name in names]
    assert len(frozen) == len(names), f"found {len(frozen)} of the {len(names)} modules to freeze"
    for module in frozen:
        module.requires_grad_(False)
    in_prefix = [0.0]
    if groups:
        modules = dict(network.named_modules())
        clock = {}
        modules[groups[0][0][0]].register_forward_pre_hook(lambda m, a: clock.update(start=time.perf_counter()))
        modules[groups[-1][1]].register_forward_hook(
            lambda m, a, o: in_prefix.__setitem__(0, in_prefix[0] + time.perf_counter() - clock["start"]))
    optimizer = torch.optim.AdamW([p for p in network.parameters() if p.requires_grad], lr=5e-4, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, args.epochs * -(-len(X) // args.image_batch))
    labels, generator = torch.as_tensor(encoded), torch.Generator().manual_seed(0)
    started = time.perf_counter()
    for _ in range(args.epochs):
        for batch in torch.randperm(len(X), generator=generator).split(args.image_batch):
            network.train()
            for module in frozen:
                module.eval()  # frozen BatchNorm keeps its statistics, as headstart's freeze does
            loss = torch.nn.functional.cross_entropy(network(_image_tensor(X[batch.numpy()], args.image_size)),
                                                     labels[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    elapsed = time.perf_counter() - started
    if frozen_share is not None:
        frozen_share.append(in_prefix[0] / elapsed)
    return len(X) * args.epochs / elapsed


def paired(side_a, side_b, pairs: int) -> dict:
    """Warm both sides, then ``pairs`` A/B pairs in A B B A order; the per-pair ratios A ÷ B."""
    side_a(), side_b()
    a_rates, b_rates = [], []
    for index in range(pairs):
        order = ((side_a, a_rates), (side_b, b_rates)) if index % 2 == 0 else ((side_b, b_rates), (side_a, a_rates))
        for side, rates in order:
            rates.append(side())
    ratios = [a / b for a, b in zip(a_rates, b_rates)]
    return {"ratio_median": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
            "ratios": ratios, "headstart_examples_per_s": statistics.median(a_rates),
            "peer_examples_per_s": statistics.median(b_rates), "pairs": pairs}


def image_rows(args) -> dict:
    X, y = datasets.digits() if args.smoke else datasets.fashion_mnist("train")
    keep = datasets.few_shot(y, args.n_image // len(np.unique(y)), seed=0)
    X, y = X[keep], np.asarray(y)[keep].astype(str)
    n_groups = len(group_module_names(args.image_size))
    rows = {}
    for k in sorted({0, n_groups // 2, *args.freeze}):
        headstart = lambda: headstart_rate(X, y, args, backbone="efficientnet_lite0", image_size=args.image_size,
                                           batch_size=args.image_batch, freeze=k)
        # the peer trains on the rows headstart trains on (it holds out 10% for validation)
        shares: list[float] = []
        peer = lambda: plain_loop_rate(X[: int(len(X) * 0.9)], y[: int(len(y) * 0.9)], args, freeze=k,
                                       frozen_share=shares)
        rows[f"image:freeze={k}"] = {**paired(headstart, peer, args.pairs), "frozen_groups": k, "groups": n_groups}
        if k:
            share = statistics.median(shares)
            rows[f"image:freeze={k}"].update(frozen_forward_share=share, reuse_bound=1 / (1 - share))
        _say(f"image:freeze={k}", rows[f"image:freeze={k}"])
    return rows


def text_row(args) -> dict:
    texts, y = datasets.vader("movie")
    keep = datasets.few_shot(y, args.n_text // 2, seed=0)
    X, y = [texts[i] for i in keep], np.asarray(y)[keep].astype(str)
    peer_args = argparse.Namespace(text_batch=args.text_batch, epochs=args.epochs)
    headstart = lambda: headstart_rate(X, y, args, backbone="minilm_l6", batch_size=args.text_batch)
    peer = lambda: hf_trainer_peer(X[: int(len(X) * 0.9)], y[: int(len(y) * 0.9)], None, 0, peer_args,
                                   epochs=args.epochs, measure=True)
    row = paired(headstart, peer, args.pairs)
    _say("text", row)
    return {"text": row}


def length_grouping_accuracy(args) -> dict:
    """Test accuracy of a short text fine-tune with batches grouped by length and with random batches."""
    import headstart.train as train

    from .strategies import load_task

    grouped = train._bucket_lengths
    out: dict = {"task": args.accuracy_task, "grouped": [], "random": []}
    for seed in range(args.seeds):
        X, y, Xt, yt = load_task(args.accuracy_task, seed, args.smoke)
        for label in ("grouped", "random"):
            train._bucket_lengths = grouped if label == "grouped" else (lambda setup, items: None)
            try:
                clf = TransferClassifier(strategy="finetune", backbone="minilm_l6", epochs=args.epochs, random_state=seed,
                                         cache_dir="none", verbose=0).fit(X, y)
            finally:
                train._bucket_lengths = grouped
            out[label].append(float((clf.predict(Xt) == np.asarray(yt)).mean()))
            print(f"accuracy {args.accuracy_task} seed {seed} {label}: {out[label][-1]:.3f}", flush=True)
    return out


def _say(name: str, row: dict) -> None:
    print(f"{name:18s} {row['ratio_median']:.2f}x (min {row['ratio_min']:.2f}, max {row['ratio_max']:.2f}; "
          f"{row['headstart_examples_per_s']:.1f} vs {row['peer_examples_per_s']:.1f} ex/s)", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.paired", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="image,text")
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=10, help="the fine-tune default: what a fit runs")
    parser.add_argument("--freeze", type=lambda s: [int(k) for k in s.split(",") if k], default=[2, 6],
                        help="frozen-group counts to measure beside 0 and half")
    parser.add_argument("--n-image", type=int, default=256)
    parser.add_argument("--n-text", type=int, default=128)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--image-batch", type=int, default=32)
    parser.add_argument("--text-batch", type=int, default=8)
    parser.add_argument("--accuracy", action="store_true", help="also: length grouping against random text batches")
    parser.add_argument("--accuracy-task", default="vader@64")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI: checks the harness runs")
    parser.add_argument("--render", action="store_true", help="only rewrite the docs table from speed.json")
    args = parser.parse_args(argv)
    if args.render:
        body = render(json.loads((ROOT / "bench" / "results" / "speed.json").read_text())["pairs_runs"])
        write_section(ROOT / "docs" / "benchmarks.md", "paired", "Faster than a plain loop: paired ratios (issue 29)", body)
        print(body)
        return 0
    if args.smoke:
        args.pairs, args.epochs, args.n_image, args.n_text, args.image_size, args.seeds = 2, 1, 40, 24, 32, 1
        args.accuracy_task, args.freeze = "vader@8", []
    torch.set_num_threads(args.threads)
    import transformers

    transformers.logging.set_verbosity_error()  # the HF Trainer's per-run model-loading report
    wanted = {r.strip() for r in args.rows.split(",") if r.strip()}
    rows = {**(image_rows(args) if "image" in wanted else {}), **(text_row(args) if "text" in wanted else {})}
    accuracy = length_grouping_accuracy(args) if args.accuracy else None
    meta = {"machine": f"{platform.machine()}, {args.threads} torch threads", "cpu": cpu_model(),
            "python": platform.python_version(),
            "torch": torch.__version__, "headstart": __version__, "date": time.strftime("%Y-%m-%d %H:%M"),
            "epochs": args.epochs, "pairs": args.pairs, "n_image": args.n_image, "n_text": args.n_text,
            "image_size": args.image_size, "smoke": args.smoke, "hf_trainer_clock": HF_TRAINER_CLOCK}
    result = {"meta": meta, "rows": rows, **({"length_grouping_accuracy": accuracy} if accuracy else {})}
    path = ROOT / "bench" / "results" / ("speed-smoke.json" if args.smoke else "speed.json")
    stored = json.loads(path.read_text()) if path.exists() else {}
    stored.setdefault("pairs_runs", []).append(result)  # every run kept: issue 29 asks that two runs agree
    stored["pairs"] = result
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(stored, indent=2))
    body = render(stored["pairs_runs"])
    print(body)
    if not args.smoke:
        write_section(ROOT / "docs" / "benchmarks.md", "paired", "Faster than a plain loop: paired ratios (issue 29)", body)
    return 0


SETTINGS = ("epochs", "n_image", "n_text", "image_size", "smoke")


def render(runs: list[dict]) -> str:
    """Each row's latest run beside the latest earlier run of that row with the same settings on the
    same processor (a run may measure only some rows: ``--rows text``)."""
    last = runs[-1]
    meta = last["meta"]
    same = [run for run in runs if all(run["meta"].get(k) == meta.get(k) for k in SETTINGS)]
    names = list(dict.fromkeys(name for run in same for name in run["rows"]))
    lines = [f"`python -m bench.paired`, {meta['machine']}; headstart {meta['headstart']}, torch "
             f"{meta['torch']}. Both sides in one process on the same inputs, {meta['epochs']} epochs, seed 0, "
             f"interleaved pairs (A B B A …); the ratio is headstart's examples/s ÷ the peer's, "
             f"median (min–max) over the pairs. Images: {meta['n_image']} "
             f"{'digits' if meta['smoke'] else 'Fashion-MNIST'} at {meta['image_size']} px, "
             f"batch 32; text: {meta['n_text']} VADER movie snippets, batch 8, the HF Trainer timed over "
             f"{'its epochs' if meta.get('hf_trainer_clock') == 'epochs' else 'train()'}.", "",
             "| row | run (pairs) | headstart, ex/s | peer, ex/s | ratio, this run | ratio, the run before "
             "| runs agree within ±5% | frozen forward, share of the plain step (bound on reuse: 1 ÷ (1 − share)) |",
             "|---|---|---|---|---|---|---|---|"]
    for name in names:
        having = [run for run in same if name in run["rows"]]
        # runs on another processor, or (text) with another HF Trainer clock, do not compare
        keys = ("cpu", "hf_trainer_clock") if name == "text" else ("cpu",)
        having = [run for run in having if all(run["meta"].get(k) == having[-1]["meta"].get(k) for k in keys)]
        row, previous = having[-1]["rows"][name], having[-2]["rows"][name] if len(having) > 1 else None
        agree = (f"{'yes' if abs(row['ratio_median'] / previous['ratio_median'] - 1) <= 0.05 else 'no'} "
                 f"({100 * (row['ratio_median'] / previous['ratio_median'] - 1):+.1f}%)") if previous else "—"
        peer = "HF Trainer" if name == "text" else "plain loop"
        earlier = f"{previous['ratio_median']:.2f}×" if previous else "—"
        bound = (f"{100 * row['frozen_forward_share']:.0f}% ({row['reuse_bound']:.2f}×)"
                 if "frozen_forward_share" in row else "—")
        cpu = having[-1]["meta"].get("cpu")
        lines.append(f"| {name} vs {peer} | {having[-1]['meta']['date']} ({row['pairs']}){', ' + cpu if cpu else ''} "
                     f"| {row['headstart_examples_per_s']:.1f} | {row['peer_examples_per_s']:.1f} "
                     f"| **{row['ratio_median']:.2f}×** ({row['ratio_min']:.2f}–{row['ratio_max']:.2f}) "
                     f"| {earlier} | {agree} | {bound} |")
    accuracy = last.get("length_grouping_accuracy")
    if accuracy:
        mean = lambda xs: sum(xs) / len(xs)
        lines += ["", f"Text batches grouped by length against random batches, a {meta['epochs']}-epoch fine-tune on "
                      f"{accuracy['task']}, {len(accuracy['grouped'])} seeds: test accuracy {mean(accuracy['grouped']):.3f} "
                      f"grouped, {mean(accuracy['random']):.3f} random (per seed: "
                      + ", ".join(f"{g:.3f}/{r:.3f}" for g, r in zip(accuracy['grouped'], accuracy['random'])) + ")."]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())

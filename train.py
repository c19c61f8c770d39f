#!/usr/bin/env python
"""Fine-tune the ClarityX classifier on fundus photos.

    python train.py --data ../shared/data/eye_diseases_manifest.csv --output models/clarityx_b0.keras

Steps: read the dataset → audit it (duplicates, conflicting labels, augmented
copies) → leak-free split (written out and reused) → phase 1: head only, on
cached frozen-backbone features → phase 2: whole network (BatchNorm frozen) with
augmentation and a cosine learning-rate schedule → temperature scaling on
validation → test metrics → model, card and gate statistics.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("data")
    g.add_argument("--data", required=True, help="dataset folder or manifest CSV")
    g.add_argument("--layout", choices=["folders", "aptos", "glaucoma", "manifest"], help="default: detected")
    g.add_argument("--classes", default="normal,cataract,diabetic_retinopathy,glaucoma",
                   help="class order of the model's outputs; other labels are dropped")
    g.add_argument("--dr-grade0", choices=["keep", "drop", "normal"], default="normal",
                   help="what a diabetic_retinopathy image with a known DR grade 0 becomes")
    g.add_argument("--dr-ungraded", choices=["keep", "drop"], default="keep",
                   help="diabetic_retinopathy images without a known grade: keep, or drop as unreliable")
    g.add_argument("--keep-augmented", action="store_true",
                   help="train on the dataset's pre-made augmented copies (train split only)")
    g.add_argument("--split-file", help="reuse this split CSV (default: <output>.split.csv, made if absent)")
    g.add_argument("--val-frac", type=float, default=0.15)
    g.add_argument("--test-frac", type=float, default=0.15)
    g.add_argument("--max-per-class", type=int, default=0, help="cap images per class (quick runs)")
    g = p.add_argument_group("model")
    g.add_argument("--backbone", default="efficientnet_b0_relu6",
                   help="efficientnet_b0 | efficientnet_b0_relu6 | efficientnet_b0_swish | efficientnet_lite0")
    g.add_argument("--weights", default="lite0-imagenet",
                   help="lite0-imagenet | imagenet | none | PATH to an .h5 weights file")
    g.add_argument("--img-size", type=int, default=224)
    g = p.add_argument_group("optimisation")
    g.add_argument("--batch-size", type=int, default=16)
    g.add_argument("--head-epochs", type=int, default=40, help="phase 1 (head only, cached features)")
    g.add_argument("--head-lr", type=float, default=1e-3)
    g.add_argument("--epochs", type=int, default=3, help="phase 2 (whole network); 0 = head only")
    g.add_argument("--lr", type=float, default=1e-4, help="phase 2 peak learning rate (cosine decay)")
    g.add_argument("--freeze-blocks", type=int, default=0, help="phase 2: keep the first N blocks frozen")
    g.add_argument("--aug-strength", type=float, default=1.0,
                   help="scale of the photometric augmentation ranges (0 = geometry only)")
    g.add_argument("--patience", type=int, default=2, help="phase 2 early stopping (epochs)")
    g.add_argument("--seed", type=int, default=0)
    g = p.add_argument_group("output")
    g.add_argument("--output", default="models/clarityx.keras")
    g.add_argument("--name", help="model name in the card (default: output file stem)")
    g.add_argument("--cache-dir", default=".cache", help="decoded images and checkpoints")
    g.add_argument("--resume", action="store_true", help="continue phase 2 from the last checkpoint")
    return p.parse_args(argv)


def prepare_data(args: argparse.Namespace, classes: list[str]):
    """Read, audit and split the dataset (reusing a split file when it exists)."""
    from clarityx.audit import audit
    from clarityx.datasets import drop_ungraded_dr, load_dataset, relabel_dr_grade0
    from clarityx.split import make_split, read_split, write_split

    samples = load_dataset(args.data, args.layout)
    if args.dr_ungraded == "drop":
        samples = drop_ungraded_dr(samples)
    samples = [s for s in relabel_dr_grade0(samples, args.dr_grade0) if s.label in classes]
    report = audit(samples, root=args.data)
    print(report.summary(), flush=True)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    Path(str(output.with_suffix("")) + ".audit.json").write_text(report.to_json())

    split_file = Path(args.split_file) if args.split_file else Path(str(output.with_suffix("")) + ".split.csv")
    if split_file.exists():
        split = read_split(split_file)
        print(f"Reusing split {split_file}")
    else:
        split = make_split(samples, report, args.val_frac, args.test_frac, args.seed, args.keep_augmented)
        write_split(split, split_file)
    parts = {}
    for name in ("train", "validation", "test"):
        chosen = split.of(name)
        if args.max_per_class:
            per: Counter = Counter()
            chosen = [s for s in chosen if (per.update([s.label]) or per[s.label] <= args.max_per_class)]
        parts[name] = chosen
        print(f"{name}: {len(chosen)} images {dict(Counter(s.label for s in chosen))}")
    return samples, report, split, parts


def train_head(model, x: dict, y: dict, args: argparse.Namespace, class_weight: dict) -> None:
    """Phase 1: the head alone, on frozen-backbone features computed once."""
    import keras

    from clarityx import training as T

    backbone, head = model.get_layer("backbone"), model.get_layer("head")
    f_train = T.backbone_features(backbone, x["train"], args.batch_size)
    f_val = T.backbone_features(backbone, x["validation"], args.batch_size)
    head.compile(optimizer=keras.optimizers.Adam(args.head_lr),
                 loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    head.fit(f_train, y["train"], validation_data=(f_val, y["validation"]), epochs=args.head_epochs,
             batch_size=32, class_weight=class_weight, verbose=2,
             callbacks=[keras.callbacks.EarlyStopping(patience=5, restore_best_weights=True)])


def fine_tune(model, x: dict, y: dict, args: argparse.Namespace, class_weight: dict) -> int:
    """Phase 2: the whole network (BatchNorm frozen), augmentation, cosine schedule, early stopping,
    a checkpoint every epoch (``--resume``). Leaves the best validation-loss weights; returns epochs run."""
    import keras
    import numpy as np

    from clarityx import training as T
    from clarityx.augment import augmenter

    T.freeze_batchnorm(model)
    T.freeze_first_blocks(model.get_layer("backbone"), args.freeze_blocks)
    steps = args.epochs * int(np.ceil(len(x["train"]) / args.batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(
        args.lr / 10, steps, alpha=0.01, warmup_target=args.lr, warmup_steps=max(1, steps // 20))
    model.compile(optimizer=keras.optimizers.Adam(schedule),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    ckpt_dir = Path(args.cache_dir) / "checkpoints" / Path(args.output).stem
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    last, best, state = ckpt_dir / "last.weights.h5", ckpt_dir / "best.weights.h5", ckpt_dir / "state.json"
    initial_epoch = 0
    if args.resume and last.exists() and state.exists():
        model.load_weights(last)
        initial_epoch = json.loads(state.read_text())["epoch"]
        print(f"Resuming phase 2 at epoch {initial_epoch}")

    class SaveState(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.model.save_weights(last)
            state.write_text(json.dumps({"epoch": epoch + 1}))

    history = model.fit(
        T.train_dataset(x["train"], y["train"], args.batch_size, args.seed, augmenter(args.seed, args.aug_strength)),
        validation_data=T.eval_dataset(x["validation"], y["validation"], args.batch_size),
        epochs=args.epochs, initial_epoch=initial_epoch, class_weight=class_weight, verbose=1,
        callbacks=[keras.callbacks.ModelCheckpoint(best, save_best_only=True, save_weights_only=True),
                   keras.callbacks.EarlyStopping(patience=args.patience), SaveState()])
    if best.exists():
        model.load_weights(best)
    return initial_epoch + len(history.history.get("loss", []))


def evaluate_model(model, x: dict, y: dict, parts: dict, classes: list[str], batch_size: int):
    """Temperature fitted on validation; calibrated metrics on validation and test (per source too)."""
    import numpy as np

    from clarityx import training as T
    from clarityx.metrics import apply_temperature, classification_report, fit_temperature

    p_val = T.predict_probs(model, x["validation"], batch_size)
    temperature = fit_temperature(p_val, y["validation"])
    metrics = {"validation": classification_report(apply_temperature(p_val, temperature), y["validation"], classes)}
    if len(x["test"]):
        raw = T.predict_probs(model, x["test"], batch_size)
        p_test = apply_temperature(raw, temperature)
        metrics["test"] = classification_report(p_test, y["test"], classes)
        metrics["test_uncalibrated_ece"] = classification_report(raw, y["test"], classes)["ece"]
        sources = np.array([s.source or "unknown" for s in parts["test"]])
        metrics["test_by_source"] = {
            src: {"n": int((sources == src).sum()),
                  "accuracy": float((p_test[sources == src].argmax(1) == y["test"][sources == src]).mean()),
                  "labels": dict(Counter(s.label for s, m in zip(parts["test"], sources == src) if m))}
            for src in sorted(set(sources))}
        print(json.dumps(metrics["test"], indent=1))
    return metrics, temperature


def relative_to(root: Path, path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.time()

    import keras
    import numpy as np

    from clarityx import training as T
    from clarityx.backbones import BACKBONES, WeightsUnavailable
    from clarityx.card import ModelCard, data_decisions
    from clarityx.model import build_classifier, save_model
    from clarityx.ood import MahalanobisModel, ood_path

    T.set_seeds(args.seed)
    classes = args.classes.split(",")
    output = Path(args.output)
    data_root = Path(args.data).parent if args.data.endswith(".csv") else Path(args.data)

    samples, report, split, parts = prepare_data(args, classes)
    if not parts["train"] or not parts["validation"]:
        print("error: the split left no training or validation images", file=sys.stderr)
        return 2
    index = {c: i for i, c in enumerate(classes)}
    y = {k: np.array([index[s.label] for s in v], dtype=np.int32) for k, v in parts.items()}
    x = {k: T.load_pixels(v, args.img_size, Path(args.cache_dir)) if v
         else np.zeros((0, args.img_size, args.img_size, 3), np.uint8) for k, v in parts.items()}

    try:
        model = build_classifier(args.backbone, len(classes), args.img_size,
                                 None if args.weights == "none" else args.weights)
    except WeightsUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    class_weight = T.class_weights(y["train"], len(classes))

    t0 = time.time()
    train_head(model, x, y, args, class_weight)
    phase1_s, t0 = time.time() - t0, time.time()
    phase2_epochs = fine_tune(model, x, y, args, class_weight) if args.epochs > 0 else 0
    phase2_s = time.time() - t0

    metrics, temperature = evaluate_model(model, x, y, parts, classes, args.batch_size)
    ood = MahalanobisModel.fit(T.embeddings(model, x["train"], args.batch_size), y["train"])
    val_dist = ood.distance(T.embeddings(model, x["validation"], args.batch_size))

    card = ModelCard(
        name=args.name or output.stem,
        classes=classes,
        input_size=args.img_size,
        backbone=args.backbone,
        architecture=(f"{BACKBONES[args.backbone].description} → BatchNorm → [GlobalMaxPool, GlobalAveragePool]"
                      " → Dense 512 ReLU → Dropout 0.4 → Dense softmax"),
        initialisation=args.weights,
        temperature=temperature,
        data={
            "source": args.data,
            "licence": "Research and non-commercial use only (public Kaggle aggregate of ODIR-5K, EyePACS "
                       "and other collections); a model trained on it inherits that restriction.",
            "dr_grade0_policy": args.dr_grade0,
            "dr_ungraded_policy": args.dr_ungraded,
            "pre_made_augmented_copies": "used for training only" if args.keep_augmented else "excluded",
            "defects_handled": data_decisions(args.dr_grade0, args.dr_ungraded, args.keep_augmented),
            "counts": {k: dict(Counter(s.label for s in v)) for k, v in parts.items()},
            "sources": {k: dict(Counter(s.source or "unknown" for s in v)) for k, v in parts.items()},
        },
        audit={
            "files": report.files, "unreadable": len(report.unreadable),
            "exact_duplicate_groups": len(report.exact_duplicate_groups),
            "near_duplicate_groups": len(report.near_duplicate_groups),
            "conflicting_label_groups": len(report.conflicting_groups),
            "augmented_copies": len(report.augmented_copies),
            "dropped": len(samples) - len(split.samples),
        },
        split={"method": "near-duplicate and patient groups kept whole, stratified by (label, source)",
               "seed": args.seed, "test_files": [relative_to(data_root, s.path) for s in parts["test"]],
               "test_labels": [s.label for s in parts["test"]],
               "test_sources": [s.source or "unknown" for s in parts["test"]],
               "test_grades": [s.grade for s in parts["test"]]},
        metrics=metrics,
        gate={"ood_validation_distance_percentiles": {
            str(q): float(np.percentile(val_dist, q)) for q in (50, 90, 95, 98, 99)}},
        training={
            "command": "python " + " ".join(shlex.quote(a) for a in [sys.argv[0]] + (argv or sys.argv[1:])),
            "phase1_seconds": round(phase1_s), "phase2_seconds": round(phase2_s),
            "phase2_epochs": phase2_epochs, "aug_strength": args.aug_strength,
            "total_seconds": round(time.time() - started),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}",
            "keras": keras.__version__, "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        },
    )
    save_model(model, card, output)
    ood.save(ood_path(output))
    print(f"Saved {output} ({output.stat().st_size / 2**20:.1f} MB) with its card; "
          f"temperature {temperature:.2f}; {time.time() - started:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())

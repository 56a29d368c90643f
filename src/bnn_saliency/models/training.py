"""Train a CIFAR-10 twin: ``python -m bnn_saliency.models.training --model vgg-bnn --seed 0``.

A *recipe* (:class:`Recipe`) fixes everything but the seed: width, batch, epochs, optimizer,
learning-rate schedule, label smoothing, augmentation. Precision is chosen for the machine
(:func:`pick_precision`: mixed_bfloat16 where the CPU has native bf16, float32 elsewhere,
since emulated bf16 is several times slower) and recorded. Augmentation (reflect-pad 4 +
random 32x32 crop per image, random horizontal flip) runs inside the graph on uint8 batches.

A seed controls the initial weights (same-seed twins of one family share them), the data
order and the augmentation draws. Each epoch writes a checkpoint (an interrupted run resumes)
and the epoch's weights (the accuracy-matched controls are picked from those), and appends
to a CSV log; on completion the weights (no optimizer state) and a provenance record go to
``data/``. An uninterrupted run is deterministic; a resumed one restarts the shuffle sequence
at the checkpointed epoch, so it is equally valid but not bit-identical.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .. import data as data_mod

DATA_OUT = data_mod.PROJECT_ROOT / "data"


PRECISIONS = ("auto", "float32", "mixed_bfloat16")


@dataclass(frozen=True)
class Recipe:
    """Everything but the seed that decides how a twin is trained."""

    width: int = 32
    epochs: int = 15
    batch_size: int = 128
    optimizer: str = "adam"  # "adam", or "sgd" (Nesterov momentum 0.9)
    lr: float = 1e-3  # peak learning rate
    warmup_epochs: float = 0.0  # linear warm-up from lr/10 to lr, then cosine decay to 0
    label_smoothing: float = 0.0
    weight_decay: float = 0.0  # decoupled (AdamW / SGDW); only for full-precision kernels
    augment: bool = True

    def __post_init__(self):
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer must be 'adam' or 'sgd', got {self.optimizer!r}")
        for field in ("width", "epochs", "batch_size"):
            if getattr(self, field) < 1:
                raise ValueError(f"{field} must be >= 1, got {getattr(self, field)}")
        if not 0 <= self.warmup_epochs < self.epochs:
            raise ValueError("warmup_epochs must be in [0, epochs)")

    def describe(self) -> str:
        warm = f"{self.warmup_epochs:g}-epoch warm-up, " if self.warmup_epochs else ""
        return (f"{self.optimizer}, peak lr {self.lr:g}, {warm}cosine decay to 0 over "
                f"{self.epochs} epochs, batch {self.batch_size}, label smoothing "
                f"{self.label_smoothing:g}, weight decay {self.weight_decay:g}")


def twin_name(model: str, seed: int, random_labels: bool = False, suffix: str = "") -> str:
    return f"{model}-s{seed}" + ("-randlabels" if random_labels else "") + suffix


def cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def pick_precision(requested: str = "auto") -> str:
    """``requested`` unless it is ``"auto"``: then mixed_bfloat16 on CPUs with native bf16
    (``avx512_bf16`` or ``amx_bf16``), float32 elsewhere."""
    if requested not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {requested!r}")
    if requested != "auto":
        return requested
    return "mixed_bfloat16" if cpu_flags() & {"avx512_bf16", "amx_bf16"} else "float32"


def augment_batch(images, seed=None):
    """Per-image reflect-pad-4 random crop and random horizontal flip of a uint8 or float
    batch ``(B, 32, 32, C)``; returns float32 in [0, 1]."""
    import tensorflow as tf

    x = tf.cast(images, tf.float32)
    if images.dtype == tf.uint8:
        x = x / 255.0
    size = tf.shape(x)[1]
    padded = tf.pad(x, [[0, 0], [4, 4], [4, 4], [0, 0]], mode="REFLECT")
    batch = tf.shape(x)[0]
    offsets = tf.random.uniform((batch, 2), 0, 9, dtype=tf.int32)
    rows = offsets[:, :1] + tf.range(size)[None]
    cols = offsets[:, 1:] + tf.range(size)[None]
    x = tf.gather(padded, rows, axis=1, batch_dims=1)
    x = tf.gather(x, cols, axis=2, batch_dims=1)
    flip = tf.random.uniform((batch, 1, 1, 1)) < 0.5
    return tf.where(flip, tf.reverse(x, axis=[2]), x)


def training_dataset(x, y, batch_size: int, seed: int, augment: bool = True):
    """Seeded reshuffle every epoch, batches of uint8 (or float) images, in-graph
    augmentation (:func:`augment_batch`, unless ``augment=False``), prefetch."""
    import tensorflow as tf

    ds = (tf.data.Dataset.from_tensor_slices((x, y))
          .shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
          .batch(batch_size))
    if augment:
        ds = ds.map(lambda a, b: (augment_batch(a), b))
    else:
        ds = ds.map(lambda a, b: (tf.cast(a, tf.float32) / (255.0 if a.dtype == tf.uint8 else 1.0), b))
    return ds.prefetch(2)


def _optimizer(recipe: Recipe, steps_per_epoch: int):
    from tensorflow import keras

    total = recipe.epochs * steps_per_epoch
    warmup = int(recipe.warmup_epochs * steps_per_epoch)
    if warmup:
        schedule = keras.optimizers.schedules.CosineDecay(
            recipe.lr / 10, decay_steps=total - warmup, warmup_target=recipe.lr,
            warmup_steps=warmup)
    else:
        schedule = keras.optimizers.schedules.CosineDecay(recipe.lr, decay_steps=total)
    wd = recipe.weight_decay or None
    if recipe.optimizer == "sgd":
        return keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True, weight_decay=wd)
    return keras.optimizers.AdamW(schedule, weight_decay=wd) if wd else keras.optimizers.Adam(schedule)


def compiled_twin(family: str, variant: str, width: int, lr: float | None = None,
                  decay_steps: int | None = None, recipe: Recipe | None = None,
                  steps_per_epoch: int | None = None):
    """A freshly initialized twin compiled for training, under the current global precision
    policy: the ``recipe``'s optimizer and schedule (or, given ``lr`` and ``decay_steps``,
    Adam with cosine decay from ``lr`` to 0), cross-entropy on logits with the recipe's label
    smoothing, accuracy. Weight decay never touches binary (latent) kernels or BatchNorm.
    Returns ``(net, optimizer)``."""
    from tensorflow import keras

    from .twins import build_twin

    if recipe is None:
        if lr is None or decay_steps is None:
            raise ValueError("give a recipe, or lr and decay_steps")
        recipe, steps_per_epoch = Recipe(width=width, lr=lr, epochs=1), decay_steps
    net = build_twin(family, variant, width)
    optimizer = _optimizer(recipe, steps_per_epoch)
    if recipe.weight_decay:
        optimizer.exclude_from_weight_decay(var_names=["gamma", "beta", "bias"])
        binary = [layer.kernel for layer in net.layers
                  if type(layer).__name__.startswith("Quant") and hasattr(layer, "kernel")]
        if binary:
            optimizer.exclude_from_weight_decay(var_list=binary)
    if recipe.label_smoothing:  # sparse labels: smoothing needs one-hot targets
        loss = keras.losses.CategoricalCrossentropy(from_logits=True,
                                                    label_smoothing=recipe.label_smoothing)
        metrics = [keras.metrics.CategoricalAccuracy(name="accuracy")]
    else:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        metrics = ["accuracy"]
    net.compile(optimizer=optimizer, loss=loss, metrics=metrics)
    return net, optimizer


def save_weights_only(net, family: str, variant: str, width: int, path: Path) -> None:
    """Weights without optimizer state: copied into a fresh float32 twin, then saved."""
    from tensorflow import keras

    from .twins import build_twin

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        clean = build_twin(family, variant, width)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    clean.set_weights(net.get_weights())
    clean.save_weights(path)


def _read_log(path: Path) -> list[dict]:
    return [dict(r) for r in csv.DictReader(path.open())] if path.exists() else []


def train(model: str, seed: int, recipe: Recipe, *, random_labels: bool = False,
          train_subset: int | None = None, out_dir: Path = DATA_OUT,
          run_dir: Path | None = None, precision: str = "auto", suffix: str = "",
          role: str | None = None, stop_after: int | None = None,
          matched_to: str | None = None) -> dict | None:
    """Train one twin; write ``<name>.weights.h5`` and ``<name>.json`` into ``out_dir``.

    ``stop_after`` ends the run after that epoch of the full schedule without shipping it:
    the run directory keeps the log and per-epoch weights (used to recover an accuracy-matched
    checkpoint when the original run's epochs were not kept). ``matched_to`` names the BNN twin
    an accuracy-matched control (e.g. a narrower FP network) is trained to match; it is
    recorded in the provenance."""
    import larq
    import tensorflow as tf
    from tensorflow import keras

    from .twins import VARIANT_DESCRIPTION

    family, variant = model.split("-")
    name = twin_name(model, seed, random_labels, suffix)
    run_dir = Path(run_dir or data_mod.PROJECT_ROOT / "runs" / name)
    (run_dir / "epochs").mkdir(parents=True, exist_ok=True)
    precision = pick_precision(precision)
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    keras.mixed_precision.set_global_policy(precision)

    cifar = data_mod.load_cifar10()
    rng = np.random.default_rng(seed)
    x_train, y_train = cifar.x_train, cifar.y_train
    if train_subset:
        keep = np.sort(rng.choice(len(y_train), train_subset, replace=False))
        x_train, y_train = x_train[keep], y_train[keep]
    if random_labels:
        y_train = rng.permutation(y_train)
    x_test = data_mod.to_float(cifar.x_test)
    one_hot = recipe.label_smoothing > 0
    targets = (lambda y: np.eye(10, dtype=np.float32)[y]) if one_hot else (lambda y: y)

    steps_per_epoch = int(np.ceil(len(y_train) / recipe.batch_size))
    net, optimizer = compiled_twin(family, variant, recipe.width, recipe=recipe,
                                   steps_per_epoch=steps_per_epoch)
    ds = training_dataset(x_train, targets(y_train), recipe.batch_size, seed, recipe.augment)

    epoch_var = tf.Variable(0, dtype=tf.int64, name="epoch")
    ckpt = tf.train.Checkpoint(model=net, optimizer=optimizer, epoch=epoch_var)
    manager = tf.train.CheckpointManager(ckpt, run_dir / "ckpt", max_to_keep=2)
    if manager.latest_checkpoint:
        ckpt.restore(manager.latest_checkpoint)
        print(f"resumed from {manager.latest_checkpoint} at epoch {int(epoch_var.numpy())}")
    log_path = run_dir / "log.csv"
    last_epoch = min(stop_after or recipe.epochs, recipe.epochs)
    for epoch in range(int(epoch_var.numpy()), last_epoch):
        keras.utils.set_random_seed(seed * 1000 + epoch)  # a resumed run redraws the same
        t0 = time.time()
        hist = net.fit(ds, epochs=1, verbose=0)
        seconds = time.time() - t0
        _, test_acc = net.evaluate(x_test, targets(cifar.y_test), batch_size=1000, verbose=0)
        row = {"epoch": epoch + 1, "loss": round(hist.history["loss"][0], 5),
               "train_acc_augmented": round(hist.history["accuracy"][0], 5),
               "test_acc": round(test_acc, 5), "seconds": round(seconds, 2),
               "load_avg_1min": round(os.getloadavg()[0], 2)}  # > cores: shared machine
        print(json.dumps(row), flush=True)
        rows = [r for r in _read_log(log_path) if int(r["epoch"]) <= epoch] + [row]
        with log_path.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(row))
            writer.writeheader()
            writer.writerows(rows)
        save_weights_only(net, family, variant, recipe.width,
                          run_dir / "epochs" / f"epoch{epoch + 1:03d}.weights.h5")
        epoch_var.assign(epoch + 1)
        manager.save()
    if last_epoch < recipe.epochs:
        print(f"stopped after epoch {last_epoch} of {recipe.epochs}; nothing shipped ({run_dir})")
        return None

    _, test_acc = net.evaluate(x_test, targets(cifar.y_test), batch_size=1000, verbose=0)
    _, train_acc = net.evaluate(data_mod.to_float(x_train), targets(y_train),
                                batch_size=1000, verbose=0)
    log = _read_log(log_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    weights_path = out_dir / f"{name}.weights.h5"
    save_weights_only(net, family, variant, recipe.width, weights_path)
    record = {
        "name": name, "family": family, "variant": variant, "width": recipe.width,
        "binarization": VARIANT_DESCRIPTION[variant], "role": role or "twin",
        "params": int(net.count_params()), "seed": seed,
        "seed_controls": "initial weights, data order, augmentation draws",
        "recipe": asdict(recipe), "epochs": recipe.epochs, "batch_size": recipe.batch_size,
        "schedule": recipe.describe(),
        "augmentation": ("reflect-pad 4 + random 32x32 crop, random horizontal flip (per image)"
                         if recipe.augment else "none"),
        "precision": precision, "random_labels": random_labels,
        "train_images": int(len(y_train)),
        "data_source": cifar.source, "data_sha256": cifar.source_sha256,
        "test_accuracy": round(float(test_acc), 4),
        "train_accuracy": round(float(train_acc), 4),
        "wall_time_s": round(sum(float(r["seconds"]) for r in log), 1),
        "versions": {"tensorflow": tf.__version__, "larq": larq.__version__,
                     "numpy": np.__version__, "python": platform.python_version()},
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {_cpu_model()}",
        "weights_file": weights_path.name,
        "weights_sha256": data_mod.sha256_of(weights_path),
        "log": log,
    }
    if matched_to:
        record["matched_to"] = matched_to
    (out_dir / f"{name}.json").write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps({k: v for k, v in record.items() if k != "log"}, indent=1))
    return record


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def record_float32_accuracy(name: str, out_dir: Path = DATA_OUT, subset: int = 1000) -> dict:
    """Re-evaluate a shipped twin in float32 (how saliency runs) and store it in its record.

    Adds ``float32_test_accuracy`` (all 10,000 test images) and ``subset_accuracy`` (the fixed
    seed-0 subset of ``subset`` images that CI re-measures) to ``<name>.json``.
    """
    path = out_dir / f"{name}.json"
    record = json.loads(path.read_text())
    weights = out_dir / record["weights_file"]
    data_mod.verify_sha256(weights, record["weights_sha256"])
    net = _float32_twin(record, weights)
    cifar = data_mod.load_cifar10()
    if cifar.source != record["data_source"]:
        raise ValueError(f"{name} was trained on {record['data_source']}, data here is {cifar.source}")
    x_test = data_mod.to_float(cifar.x_test)
    pred = np.argmax(net.predict(x_test, batch_size=500, verbose=0), axis=1)
    idx = data_mod.cifar10_subset(cifar, subset, seed=0)
    record["float32_test_accuracy"] = round(float(np.mean(pred == cifar.y_test)), 4)
    record["subset_accuracy"] = {"n": subset, "seed": 0,
                                 "accuracy": round(float(np.mean(pred[idx] == cifar.y_test[idx])), 4)}
    path.write_text(json.dumps(record, indent=1) + "\n")
    return record


def _float32_twin(record: dict, weights: Path):
    from tensorflow import keras

    from .twins import build_twin

    keras.mixed_precision.set_global_policy("float32")
    net = build_twin(record["family"], record["variant"], record["width"])
    net.load_weights(weights)
    return net


def _accuracy(net, x, y) -> float:
    return float(np.mean(np.argmax(net.predict(x, batch_size=500, verbose=0), 1) == y))


def checkpoint_source(fp_name: str, shipped_log: list[dict], run_log: list[dict],
                      epoch: int) -> str:
    """Where a checkpoint control comes from: the shipped twin's own run (its logged test
    accuracies match the run directory's), or a re-run of the same recipe and seed."""
    shipped = {int(r["epoch"]): float(r["test_acc"]) for r in shipped_log}
    run = {int(r["epoch"]): float(r["test_acc"]) for r in run_log}
    if all(shipped.get(e) == acc for e, acc in run.items()):
        return f"the training run of {fp_name}"
    original = f"{shipped[epoch]:.2%}" if epoch in shipped else "not logged"
    return (f"a re-run of {fp_name}'s recipe and seed stopped after epoch {max(run)} (the "
            f"original run's per-epoch weights were not kept); logged test accuracy after epoch "
            f"{epoch}: {run[epoch]:.2%} in the re-run, {original} in the original run")


def ship_checkpoint_control(fp_name: str, bnn_name: str, out_dir: Path = DATA_OUT,
                            run_dir: Path | None = None, tolerance: float = 0.015) -> dict:
    """Accuracy-matched control from a checkpoint: the epoch of FP twin ``fp_name`` whose
    float32 test accuracy is closest to BNN twin ``bnn_name``'s, shipped as
    ``<fp_name>-at-bnn-acc``.

    Candidates are the epochs whose logged test accuracy (training precision) is within
    3 points of the BNN's; each is re-evaluated in float32 on the 10,000 test images. The
    closest, not the first to reach the BNN's accuracy: on a fast-rising curve the first such
    epoch can overshoot by more than ``tolerance``, and then this raises.
    """
    import shutil

    fp = json.loads((out_dir / f"{fp_name}.json").read_text())
    bnn = json.loads((out_dir / f"{bnn_name}.json").read_text())
    target = bnn.get("float32_test_accuracy", bnn["test_accuracy"])
    run_dir = Path(run_dir or data_mod.PROJECT_ROOT / "runs" / out_dir.name / fp_name)
    log = _read_log(run_dir / "log.csv")
    candidates = [int(r["epoch"]) for r in log if abs(float(r["test_acc"]) - target) <= 0.03]
    if not candidates:
        raise ValueError(f"no epoch of {fp_name} ({run_dir}/log.csv) is within 3 points of "
                         f"{bnn_name}'s {target:.2%}: train a narrower FP control instead")
    cifar = data_mod.load_cifar10()
    x_test = data_mod.to_float(cifar.x_test)
    accuracy = {e: _accuracy(_float32_twin(fp, run_dir / "epochs" / f"epoch{e:03d}.weights.h5"),
                             x_test, cifar.y_test) for e in candidates}
    epoch = min(accuracy, key=lambda e: abs(accuracy[e] - target))
    if abs(accuracy[epoch] - target) > tolerance:
        raise ValueError(f"closest epoch of {fp_name} is {epoch} at {accuracy[epoch]:.2%}, more "
                         f"than {tolerance:.1%} from {bnn_name}'s {target:.2%}")
    name = f"{fp_name}-at-bnn-acc"
    weights_path = out_dir / f"{name}.weights.h5"
    shutil.copyfile(run_dir / "epochs" / f"epoch{epoch:03d}.weights.h5", weights_path)
    net = _float32_twin(fp, weights_path)
    kept = [r for r in log if int(r["epoch"]) <= epoch]
    record = {**fp, "name": name,
              "role": f"accuracy-matched control for {bnn_name}: {fp_name} after epoch {epoch}",
              "matched_to": bnn_name, "source_twin": fp_name, "checkpoint_epoch": epoch,
              "checkpoint_source": checkpoint_source(fp_name, fp.get("log", []), log, epoch),
              "candidate_float32_test_accuracy": {str(e): round(a, 4) for e, a in accuracy.items()},
              "epochs": epoch,
              "schedule": f"{fp['schedule']}; stopped after epoch {epoch} (checkpoint)",
              "test_accuracy": round(accuracy[epoch], 4),
              "train_accuracy": round(_accuracy(net, data_mod.to_float(cifar.x_train),
                                                cifar.y_train), 4),
              "wall_time_s": round(sum(float(r["seconds"]) for r in kept), 1),
              "weights_file": weights_path.name,
              "weights_sha256": data_mod.sha256_of(weights_path), "log": kept}
    for stale in ("float32_test_accuracy", "subset_accuracy"):
        record.pop(stale, None)
    (out_dir / f"{name}.json").write_text(json.dumps(record, indent=1) + "\n")
    return record_float32_accuracy(name, out_dir)


def pilot_summary(run_dir: Path) -> list[dict]:
    """One row per pilot run (a provenance JSON in ``run_dir``): recipe, width, batch,
    epochs, median seconds per epoch, test accuracy, precision, machine."""
    rows = []
    for path in sorted(Path(run_dir).glob("*.json")):
        rec = json.loads(path.read_text())
        seconds = [float(r["seconds"]) for r in rec["log"]]
        loads = [float(r["load_avg_1min"]) for r in rec["log"] if "load_avg_1min" in r]
        rows.append({"run": rec["name"], "model": f"{rec['family']}-{rec['variant']}",
                     "recipe": rec["schedule"], "width": rec["width"],
                     "batch_size": rec["batch_size"], "epochs": rec["epochs"],
                     "seconds_per_epoch": round(float(np.median(seconds)), 1),
                     "max_load_avg": max(loads) if loads else None,
                     "test_accuracy": rec["test_accuracy"], "precision": rec["precision"],
                     "machine": rec["machine"],
                     "test_acc_by_epoch": [round(float(r["test_acc"]), 4) for r in rec["log"]]})
    if not rows:
        raise FileNotFoundError(f"no pilot runs (provenance *.json) in {run_dir}")
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model",
                        help="family-variant, e.g. vgg-fp, vgg-bnn, vgg-binw, vgg-bina, resnet-bnn")
    parser.add_argument("--seed", type=int, default=0)
    defaults = Recipe()
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--width", type=int, default=defaults.width)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--optimizer", choices=("adam", "sgd"), default=defaults.optimizer)
    parser.add_argument("--lr", type=float, default=defaults.lr, help="peak learning rate")
    parser.add_argument("--warmup-epochs", type=float, default=defaults.warmup_epochs)
    parser.add_argument("--label-smoothing", type=float, default=defaults.label_smoothing)
    parser.add_argument("--weight-decay", type=float, default=defaults.weight_decay)
    parser.add_argument("--random-labels", action="store_true",
                        help="train on a seeded permutation of the labels (data randomization test)")
    parser.add_argument("--train-subset", type=int, default=None,
                        help="train on a seeded subset of this many images")
    parser.add_argument("--no-augment", action="store_true",
                        help="no crop/flip augmentation (used to memorize random labels)")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="auto: mixed_bfloat16 on CPUs with native bf16, else float32")
    parser.add_argument("--suffix", default="", help="appended to the model name")
    parser.add_argument("--role", default=None, help="recorded in the provenance")
    parser.add_argument("--matched-to", default=None, metavar="BNN_TWIN",
                        help="the BNN twin an accuracy-matched control is trained to match")
    parser.add_argument("--out-dir", type=Path, default=DATA_OUT)
    parser.add_argument("--run-dir", type=Path, default=None,
                        help="checkpoints, per-epoch weights and log (default runs/<name>)")
    parser.add_argument("--stop-after", type=int, default=None, metavar="EPOCH",
                        help="stop after this epoch of the schedule and ship nothing (keeps "
                             "the run directory's per-epoch weights)")
    parser.add_argument("--float32-eval-only", action="store_true",
                        help="only re-evaluate the shipped weights in float32 and update the record")
    parser.add_argument("--matched-checkpoint", nargs=2, metavar=("FP_TWIN", "BNN_TWIN"),
                        help="ship the FP twin's epoch checkpoint closest in accuracy to the BNN")
    parser.add_argument("--pilot-summary", type=Path, metavar="RUN_DIR",
                        help="print the pilot table (JSON) of the runs in RUN_DIR and exit")
    args = parser.parse_args(argv)
    if args.pilot_summary:
        print(json.dumps(pilot_summary(args.pilot_summary), indent=1))
        return
    if args.matched_checkpoint:
        record = ship_checkpoint_control(*args.matched_checkpoint, out_dir=args.out_dir,
                                         run_dir=args.run_dir)
        print(record["role"], record["float32_test_accuracy"])
        return
    if not args.model:
        parser.error("--model is required (e.g. --model vgg-bnn)")
    name = twin_name(args.model, args.seed, args.random_labels, args.suffix)
    if args.float32_eval_only:
        print(json.dumps(record_float32_accuracy(name, args.out_dir)["subset_accuracy"]))
        return
    recipe = Recipe(width=args.width, epochs=args.epochs, batch_size=args.batch_size,
                    optimizer=args.optimizer, lr=args.lr, warmup_epochs=args.warmup_epochs,
                    label_smoothing=args.label_smoothing, weight_decay=args.weight_decay,
                    augment=not args.no_augment)
    train(args.model, args.seed, recipe, random_labels=args.random_labels,
          train_subset=args.train_subset, out_dir=args.out_dir, run_dir=args.run_dir,
          precision=args.precision, suffix=args.suffix, role=args.role,
          stop_after=args.stop_after, matched_to=args.matched_to)


if __name__ == "__main__":
    main()

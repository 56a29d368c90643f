"""Train a CIFAR-10 twin: ``python -m bnn_saliency.train --model vgg-bnn --seed 0``.

Seeded, bf16 mixed precision on CPU, random crop (pad 4) + horizontal flip, Adam with a
cosine learning-rate schedule, a checkpoint every epoch (an interrupted run resumes),
a CSV log, and on completion the weights plus a provenance record in ``data/``.
An uninterrupted run is deterministic; a resumed one restarts the data pipeline's shuffle
sequence at the checkpointed epoch, so it is equally valid but not bit-identical.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import time
from pathlib import Path

import numpy as np

from . import data as data_mod

DATA_OUT = data_mod.PROJECT_ROOT / "data"


def twin_name(model: str, seed: int, random_labels: bool) -> str:
    return f"{model}-s{seed}" + ("-randlabels" if random_labels else "")


def _augment(tf, images, labels):
    padded = tf.pad(images, [[0, 0], [4, 4], [4, 4], [0, 0]], mode="REFLECT")
    crops = tf.image.random_crop(padded, tf.shape(images))
    flipped = tf.image.random_flip_left_right(crops)
    return flipped, labels


def compiled_twin(family: str, variant: str, width: int, lr: float, decay_steps: int):
    """A freshly initialized twin compiled as :func:`train` compiles it: Adam with a cosine
    decay from ``lr`` to 0 over ``decay_steps`` steps, cross-entropy on logits, accuracy.
    Built under the current global Keras precision policy. Returns ``(net, optimizer)``."""
    from tensorflow import keras

    from .twins import build_twin

    net = build_twin(family, variant, width)
    schedule = keras.optimizers.schedules.CosineDecay(lr, decay_steps=decay_steps)
    optimizer = keras.optimizers.Adam(schedule)
    net.compile(optimizer=optimizer,
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"])
    return net, optimizer


def training_dataset(x, y, batch_size: int, seed: int, augment: bool = True):
    """The training input pipeline of :func:`train`: seeded reshuffle every epoch, batches,
    augmentation (:func:`_augment`, unless ``augment=False``), prefetch."""
    import tensorflow as tf

    ds = (tf.data.Dataset.from_tensor_slices((x, y))
          .shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
          .batch(batch_size))
    if augment:
        ds = ds.map(lambda a, b: _augment(tf, a, b), num_parallel_calls=1)
    return ds.prefetch(2)


def train(model: str, seed: int, epochs: int, width: int = 64, batch_size: int = 128,
          lr: float = 1e-3, random_labels: bool = False, train_subset: int | None = None,
          out_dir: Path = DATA_OUT, run_dir: Path | None = None, mixed: bool = True,
          augment: bool = True) -> dict:
    """Train one twin and write ``<name>.weights.h5`` and ``<name>.json`` into ``out_dir``."""
    import tensorflow as tf
    from tensorflow import keras

    from .twins import VARIANT_DESCRIPTION

    family, variant = model.split("-")
    name = twin_name(model, seed, random_labels)
    run_dir = Path(run_dir or data_mod.PROJECT_ROOT / "runs" / name)
    run_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    if mixed:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")

    cifar = data_mod.load_cifar10()
    rng = np.random.default_rng(seed)
    x_train, y_train = cifar.x_train, cifar.y_train
    if train_subset:
        keep = np.sort(rng.choice(len(y_train), train_subset, replace=False))
        x_train, y_train = x_train[keep], y_train[keep]
    if random_labels:
        y_train = rng.permutation(y_train)
    x_train_f, x_test_f = data_mod.to_float(x_train), data_mod.to_float(cifar.x_test)

    steps_per_epoch = int(np.ceil(len(y_train) / batch_size))
    net, optimizer = compiled_twin(family, variant, width, lr, epochs * steps_per_epoch)
    ds = training_dataset(x_train_f, y_train, batch_size, seed, augment)

    epoch_var = tf.Variable(0, dtype=tf.int64, name="epoch")
    ckpt = tf.train.Checkpoint(model=net, optimizer=optimizer, epoch=epoch_var)
    manager = tf.train.CheckpointManager(ckpt, run_dir / "ckpt", max_to_keep=2)
    if manager.latest_checkpoint:
        ckpt.restore(manager.latest_checkpoint)
        print(f"resumed from {manager.latest_checkpoint} at epoch {int(epoch_var.numpy())}")
    log_path = run_dir / "log.csv"
    start_epoch = int(epoch_var.numpy())
    wall_before = 0.0
    if start_epoch and log_path.exists():
        wall_before = sum(float(r["seconds"]) for r in csv.DictReader(log_path.open()))
    for epoch in range(start_epoch, epochs):
        # reseed per epoch so a resumed run sees the same shuffles/augmentations
        keras.utils.set_random_seed(seed * 1000 + epoch)
        t0 = time.time()
        hist = net.fit(ds, epochs=1, verbose=2)
        _, test_acc = net.evaluate(x_test_f, cifar.y_test, batch_size=500, verbose=0)
        row = {"epoch": epoch + 1, "loss": hist.history["loss"][0],
               "train_acc_augmented": hist.history["accuracy"][0], "test_acc": test_acc,
               "seconds": time.time() - t0}
        print(json.dumps(row), flush=True)
        new = not log_path.exists() or epoch == 0
        with log_path.open("w" if epoch == 0 else "a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)
        epoch_var.assign(epoch + 1)
        manager.save()

    _, test_acc = net.evaluate(x_test_f, cifar.y_test, batch_size=500, verbose=0)
    _, train_acc = net.evaluate(x_train_f, y_train, batch_size=500, verbose=0)
    wall = sum(float(r["seconds"]) for r in csv.DictReader(log_path.open())) or wall_before
    out_dir.mkdir(parents=True, exist_ok=True)
    weights_path = out_dir / f"{name}.weights.h5"
    net.save_weights(weights_path)
    import larq
    import tensorflow as tf_mod

    record = {
        "name": name, "family": family, "variant": variant, "width": width,
        "binarization": VARIANT_DESCRIPTION[variant],
        "params": int(net.count_params()),
        "seed": seed, "epochs": epochs, "batch_size": batch_size,
        "optimizer": "Adam", "learning_rate": lr,
        "schedule": f"cosine decay from {lr} to 0 over {epochs} epochs",
        "augmentation": ("reflect-pad 4 + random 32x32 crop, random horizontal flip"
                         if augment else "none"),
        "precision": "mixed_bfloat16" if mixed else "float32",
        "random_labels": random_labels, "train_images": int(len(y_train)),
        "data_source": cifar.source, "data_sha256": cifar.source_sha256,
        "test_accuracy": round(float(test_acc), 4),
        "train_accuracy": round(float(train_acc), 4),
        "wall_time_s": round(wall, 1),
        "versions": {"tensorflow": tf_mod.__version__, "larq": larq.__version__,
                     "numpy": np.__version__, "python": platform.python_version()},
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} CPUs",
        "weights_file": weights_path.name,
        "weights_sha256": data_mod.sha256_of(weights_path),
        "log": [dict(r) for r in csv.DictReader(log_path.open())],
    }
    (out_dir / f"{name}.json").write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps({k: v for k, v in record.items() if k != "log"}, indent=1))
    return record


def record_float32_accuracy(name: str, out_dir: Path = DATA_OUT, subset: int = 1000) -> dict:
    """Re-evaluate a shipped twin in float32 (how saliency runs) and store it in its record.

    Adds ``float32_test_accuracy`` (all 10,000 test images) and ``subset_accuracy`` (the fixed
    seed-0 subset of ``subset`` images that CI re-measures) to ``<name>.json``.
    """
    from tensorflow import keras

    from .twins import build_twin

    path = out_dir / f"{name}.json"
    record = json.loads(path.read_text())
    weights = out_dir / record["weights_file"]
    data_mod.verify_sha256(weights, record["weights_sha256"])
    keras.mixed_precision.set_global_policy("float32")
    net = build_twin(record["family"], record["variant"], record["width"])
    net.load_weights(weights)
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


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True,
                        help="family-variant, e.g. vgg-fp, vgg-bnn, vgg-binw, vgg-bina, resnet-bnn")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--random-labels", action="store_true",
                        help="train on a seeded permutation of the labels (data randomization test)")
    parser.add_argument("--train-subset", type=int, default=None,
                        help="train on a seeded subset of this many images")
    parser.add_argument("--no-augment", action="store_true",
                        help="no crop/flip augmentation (used to memorize random labels)")
    parser.add_argument("--float32", action="store_true", help="disable bf16 mixed precision")
    parser.add_argument("--out-dir", type=Path, default=DATA_OUT)
    parser.add_argument("--float32-eval-only", action="store_true",
                        help="only re-evaluate the shipped weights in float32 and update the record")
    args = parser.parse_args(argv)
    if args.float32_eval_only:
        print(json.dumps(record_float32_accuracy(
            twin_name(args.model, args.seed, args.random_labels), args.out_dir)["subset_accuracy"]))
        return
    train(args.model, args.seed, args.epochs, args.width, args.batch_size, args.lr,
          args.random_labels, args.train_subset, args.out_dir, mixed=not args.float32,
          augment=not args.no_augment)


if __name__ == "__main__":
    main()

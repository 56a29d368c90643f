"""Performance benchmark: ``python -m bnn_saliency.bench`` (``make bench``).

Measures, in one run on one machine, and writes to ``book/results/performance/bench.json``
(read by the performance appendix):

1. **SmoothGrad throughput** (maps/s) of :func:`bnn_saliency.methods.smoothgrad` and of
   tf-keras-vis (:func:`~bnn_saliency.methods.smoothgrad_tfkerasvis`) on the same model,
   images, ``n`` and noise level: an FP twin, a BNN twin (32x32) and VGG16 (224x224, random
   weights). Goal: ours at least :data:`GOALS` ``["smoothgrad_speedup"]`` times faster.
2. **SmoothGrad time per map vs its lower bound**: ``n x`` the time of one forward+backward
   pass per image at the best batch size of a sweep (the same compiled gradient SmoothGrad
   uses). Goal: ratio at most ``GOALS["smoothgrad_bound_ratio"]``.
3. **Grad-CAM, integrated gradients (64 steps) and Score-CAM** maps/s on the same models.
4. **Twin training throughput** (images/s), float32 vs mixed_bfloat16, a few optimizer steps
   of the twin :func:`bnn_saliency.models.training.compiled_twin` builds, on random data through the
   training input pipeline (:func:`bnn_saliency.models.training.training_dataset`).
5. **Book build wall times**, cold (no execution cache) and warm, as recorded by ``make
   book`` into ``_build/build_time.json`` (``--builds`` runs both builds first).

Every timing is repeated; the JSON keeps each repetition (seconds) and the appendix reports
medians with bootstrap intervals over repetitions (:func:`bnn_saliency.stats.ratio_ci` with ``paired=False``). Inputs are seeded
uniform random images in the model's input range (throughput does not depend on content);
each timed call is preceded by an untimed warm-up call (tracing, kernel selection). Timings
depend on the machine and on anything else running on it: the JSON records the CPU, core
count, library versions and the load average before and after the run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from . import methods, models
from .models import training
from .data import PROJECT_ROOT
from .methods._core import _grad_fn

# not in book/results/ itself, where every *.json is a chapter's claims file (claims.load_all)
DEFAULT_OUT = PROJECT_ROOT / "book" / "results" / "performance" / "bench.json"


BUILD_LOG = PROJECT_ROOT / "_build" / "build_time.json"


#: The goals the appendix checks: our SmoothGrad at least 5x tf-keras-vis's throughput, and
#: its time per map at most 1.2x the lower bound n x (forward+backward time per image).
GOALS = {"smoothgrad_speedup": 5.0, "smoothgrad_bound_ratio": 1.2}


@dataclass(frozen=True)
class ModelCase:
    """One benchmarked model and the workload sizes used on it."""

    name: str                 # registry name (models.load) or "VGG16"
    weights: str | None       # "trained" twins, None for random ImageNet weights
    n_images: int             # images per SmoothGrad / method call
    n_samples: int            # SmoothGrad noisy copies per image
    batch_sizes: tuple[int, ...]  # forward+backward sweep for the lower bound
    scorecam_max_n: int | None = None  # Score-CAM channels kept (None: all)
    ig_images: int | None = None       # images for IG / Score-CAM (default n_images)


@dataclass(frozen=True)
class BenchConfig:
    cases: tuple[ModelCase, ...]
    reps: int = 5                 # repetitions of each timed call (median reported)
    heavy_reps: int = 3           # repetitions for calls on 224x224 models
    noise: float = 0.2            # SmoothGrad noise level (fraction of the value range)
    ig_steps: int = 64
    train_families: tuple[str, ...] = ("vgg-fp", "vgg-bnn")
    train_width: int | None = None  # default: the shipped twins' width (provenance record)
    train_batch: int = 128
    train_steps: int = 8
    seed: int = 0


FULL = BenchConfig(cases=(
    ModelCase("vgg-fp-s0", "trained", 16, 50, (16, 32, 64, 128, 256, 512)),
    ModelCase("vgg-bnn-s0", "trained", 16, 50, (16, 32, 64, 128, 256, 512)),
    ModelCase("VGG16", None, 2, 10, (1, 2, 4, 8), scorecam_max_n=32, ig_images=1),
))


QUICK = BenchConfig(cases=(
    ModelCase("vgg-fp-s0", "trained", 4, 8, (16, 32)),
    ModelCase("vgg-bnn-s0", "trained", 4, 8, (16, 32)),
), reps=2, heavy_reps=1, train_steps=2)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2 ** 20, 1)
    except OSError:
        pass
    return None


def machine() -> dict:
    """CPU model, cores, memory, OS, Python and library versions, current load average."""
    import larq
    import tensorflow as tf

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count()
    return {
        "cpu": _cpu_model(), "cores": os.cpu_count(), "usable_cores": usable,
        "memory_gb": _memory_gb(), "platform": platform.platform(),
        "python": platform.python_version(), "tensorflow": tf.__version__,
        "larq": larq.__version__, "numpy": np.__version__,
        "load_average": [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None,
    }


def time_calls(fn: Callable[[], object], reps: int, warmup: int = 1,
               warmup_fn: Callable[[], object] | None = None) -> list[float]:
    """Wall times (s) of ``reps`` calls of ``fn`` after ``warmup`` untimed calls of
    ``warmup_fn`` (default ``fn`` itself; a cheaper call of the same method traces the same
    compiled functions)."""
    if isinstance(reps, bool) or not isinstance(reps, (int, np.integer)) or reps < 1:
        raise ValueError(f"reps must be a positive integer, got {reps!r}")
    for _ in range(warmup):
        (warmup_fn or fn)()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def _inputs(model, n: int, seed: int, value_range: tuple[float, float]):
    """Seeded uniform random images in ``value_range`` and random target classes."""
    shape = tuple(model.inputs[0].shape[1:])
    rng = np.random.default_rng(seed)
    lo, hi = value_range
    x = (lo + (hi - lo) * rng.random((n,) + shape)).astype(np.float32)
    t = rng.integers(0, int(model.outputs[0].shape[-1]), size=n)
    return x, t


def grad_pass_times(model, batch_sizes: Sequence[int], reps: int, seed: int = 0,
                    value_range: tuple[float, float] = (0.0, 1.0)) -> dict[int, list[float]]:
    """Seconds per image of one forward+backward pass (input gradient of the target logit)
    at each batch size: the compiled function every gradient method of
    :mod:`bnn_saliency.methods` runs, called on one batch of ``B`` rows.

    Returns:
        ``{B: [seconds per image of each repetition]}``.
    """
    import tensorflow as tf


    fn = _grad_fn(model)
    out = {}
    for b in batch_sizes:
        x, t = _inputs(model, int(b), seed, value_range)
        xc, tc = tf.constant(x), tf.constant(t.astype(np.int32))
        times = time_calls(lambda: fn(xc, tc)[0].numpy(), reps)
        out[int(b)] = [s / b for s in times]
    return out


def best_batch(per_image: dict[int, list[float]]) -> int:
    """The batch size with the smallest median time per image."""
    return min(per_image, key=lambda b: float(np.median(per_image[b])))


def bench_smoothgrad(model, x, t, *, n_samples: int, noise: float, batch_size: int, reps: int,
                     tfkerasvis: bool = True, seed: int = 0, cheap_warmup: bool = False) -> dict:
    """Wall times of our SmoothGrad and tf-keras-vis's on the same images, ``n`` and noise.

    Ours: ``methods.smoothgrad(model, x, t, noise=noise, n_samples=n_samples,
    magnitude="abs", batch_size=batch_size)`` (the average of |gradient|, which is what
    tf-keras-vis computes). tf-keras-vis: ``methods.smoothgrad_tfkerasvis`` with all images
    in one call (its loop over samples runs one eager gradient of the whole batch each).
    Each is warmed up by one untimed identical call, or with ``cheap_warmup`` (for large
    models) by a call with 2 samples, which traces the same functions.

    Returns:
        ``{"ours_s": [...], "tfkerasvis_s": [...] or None}``: seconds per call (all images).
    """

    def ours_call(n=n_samples):
        return methods.smoothgrad(model, x, t, noise=noise, n_samples=n, seed=seed,
                                   magnitude="abs", batch_size=batch_size)

    def theirs_call(n=n_samples):
        return methods.smoothgrad_tfkerasvis(model, x, t, noise=noise, n_samples=n, seed=seed,
                                              batch_size=len(x))

    ours = time_calls(ours_call, reps, warmup_fn=(lambda: ours_call(2)) if cheap_warmup else None)
    theirs = (time_calls(theirs_call, reps, warmup_fn=(lambda: theirs_call(2)) if cheap_warmup
                         else None) if tfkerasvis else None)
    return {"ours_s": ours, "tfkerasvis_s": theirs}


def bench_methods(model, x, t, *, layer: str, reps: int, ig_steps: int = 64,
                  batch_size: int = 64, scorecam_max_n: int | None = None,
                  ig_images: int | None = None, cheap_warmup: bool = False) -> list[dict]:
    """Seconds per call of Grad-CAM (on ``x``), integrated gradients with ``ig_steps`` steps
    and Score-CAM (on the first ``ig_images`` images; Score-CAM keeps ``scorecam_max_n``
    channels, all by default). Warm-up: one identical untimed call, or with ``cheap_warmup``
    a call with 2 IG steps / 2 Score-CAM channels.

    Returns:
        one dict per method: ``method``, ``params``, ``images``, ``seconds`` (per call).
    """

    k = len(x) if ig_images is None else int(ig_images)
    xs, ts = x[:k], t[:k]
    def ig(steps):
        return methods.integrated_gradients(model, xs, ts, steps=steps, batch_size=batch_size)

    def score(max_n):
        return methods.scorecam(model, xs, ts, layer=layer, max_n=max_n)

    def cam():
        return methods.gradcam(model, x, t, layer=layer, batch_size=batch_size)

    runs = [  # method, params, images, timed call, cheap warm-up of the same compiled code
        ("gradcam", {"layer": layer}, len(x), cam, cam),
        ("integrated_gradients", {"steps": ig_steps}, k, lambda: ig(ig_steps), lambda: ig(2)),
        ("scorecam", {"layer": layer, "max_n": scorecam_max_n}, k,
         lambda: score(scorecam_max_n), lambda: score(2)),
    ]
    return [{"method": method, "params": params, "images": int(n),
             "seconds": time_calls(call, reps, warmup_fn=warm if cheap_warmup else None)}
            for method, params, n, call, warm in runs]


def bench_training(family_variant: str, width: int, *, precision: str, batch_size: int,
                   steps: int, reps: int, seed: int = 0) -> dict:
    """Training throughput of a freshly compiled twin on random data.

    The twin, optimizer and input pipeline are those of :func:`bnn_saliency.models.training.train`
    (:func:`~bnn_saliency.models.training.compiled_twin`, :func:`~bnn_saliency.models.training.training_dataset`),
    built under the ``precision`` policy (``"float32"`` or ``"mixed_bfloat16"``); each
    repetition is one ``fit`` over ``steps`` batches, after a warm-up ``fit`` that traces the
    train step. The global policy is restored afterwards.

    Returns:
        ``{"model", "precision", "width", "batch_size", "steps", "seconds": [...]}``.
    """
    from tensorflow import keras


    if precision not in ("float32", "mixed_bfloat16"):
        raise ValueError(f"precision must be 'float32' or 'mixed_bfloat16', got {precision!r}")
    family, variant = family_variant.split("-")
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(precision)
    try:
        keras.utils.set_random_seed(seed)
        n = batch_size * steps
        rng = np.random.default_rng(seed)
        x = rng.random((n, 32, 32, 3)).astype(np.float32)
        y = rng.integers(0, 10, size=n)
        net, _ = training.compiled_twin(family, variant, width, 1e-3, decay_steps=10 * steps)
        ds = training.training_dataset(x, y, batch_size, seed)
        seconds = time_calls(lambda: net.fit(ds, epochs=1, verbose=0), reps)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    return {"model": family_variant, "precision": precision, "width": int(width),
            "batch_size": int(batch_size), "steps": int(steps), "images": int(n),
            "seconds": seconds}


def record_build(seconds: float, cold: bool, exit_code: int, path: Path | None = None,
                 keep: int = 20) -> dict:
    """Append one book build's wall time to ``path`` (default :data:`BUILD_LOG`; a JSON list,
    newest last, at most ``keep`` records). Called by ``make book``."""
    seconds = float(seconds)
    if not np.isfinite(seconds) or seconds < 0:
        raise ValueError(f"seconds must be a finite number >= 0, got {seconds!r}")
    path = Path(BUILD_LOG if path is None else path)
    records = _read_builds(path)
    rec = {"finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "seconds": round(seconds, 1), "cold": bool(cold), "exit_code": int(exit_code),
           "cores": os.cpu_count(), "cpu": _cpu_model()}
    records = (records + [rec])[-keep:]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records, indent=1) + "\n")
    return rec


def _read_builds(path: Path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        return []
    try:
        records = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err}); delete it, the next `make book` "
                         "starts a new one") from None
    if not isinstance(records, list):
        raise ValueError(f"{path} must hold a JSON list of build records; delete it")
    return records


def latest_builds(path: Path | None = None) -> dict:
    """The newest successful cold and warm build records in ``path`` (default
    :data:`BUILD_LOG`), ``None`` where there is none."""
    ok = [r for r in _read_builds(BUILD_LOG if path is None else path) if r.get("exit_code") == 0]
    return {"cold": next((r for r in reversed(ok) if r.get("cold")), None),
            "warm": next((r for r in reversed(ok) if not r.get("cold")), None)}


def update_builds(out: Path, build_log: Path) -> dict:
    """Replace the ``book_build`` entry of an existing benchmark JSON ``out`` with the latest
    successful cold and warm records of ``build_log``; the other timings are kept."""
    if not out.exists():
        raise FileNotFoundError(f"{out} does not exist: run `make bench` first")
    if not build_log.exists():
        raise FileNotFoundError(f"{build_log} does not exist: run `make book` to record a build")
    results = json.loads(out.read_text())
    builds = latest_builds(build_log)
    results["book_build"] = {k: v or results.get("book_build", {}).get(k)
                             for k, v in builds.items()}
    out.write_text(json.dumps(results, indent=1) + "\n")
    return results["book_build"]


def run_builds() -> None:
    """``make clean`` then ``make book`` twice (cold, then warm); each build records itself."""
    for target in ("clean", "book", "book"):
        subprocess.run(["make", target], cwd=PROJECT_ROOT, check=True)




def _load_case(case: ModelCase):

    model = models.load(case.name, weights=case.weights, seed=0)
    spec = models.get_spec(case.name)
    return model, spec.gradcam_layer, tuple(spec.input_range)


def _round(obj, digits: int = 6):
    if isinstance(obj, float):
        return float(f"{obj:.{digits}g}")
    if isinstance(obj, dict):
        return {k: _round(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_round(v, digits) for v in obj]
    return obj


def run(config: BenchConfig = FULL, *, log: Callable[[str], None] = print) -> dict:
    """Run every measurement of ``config``; return the JSON-ready results."""

    started = time.time()
    results = {"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "machine": machine(), "goals": dict(GOALS),
               "config": asdict(config), "smoothgrad": [], "methods": [], "training": []}
    for case in config.cases:
        try:
            model, layer, value_range = _load_case(case)
        except (FileNotFoundError, KeyError) as err:
            log(f"skipping {case.name}: {err}")
            continue
        heavy = model.inputs[0].shape[1] >= 128
        reps = config.heavy_reps if heavy else config.reps
        log(f"{case.name}: forward+backward sweep over batch sizes {case.batch_sizes}")
        per_image = grad_pass_times(model, case.batch_sizes, reps, config.seed, value_range)
        best = best_batch(per_image)
        x, t = _inputs(model, case.n_images, config.seed, value_range)
        log(f"{case.name}: SmoothGrad, {case.n_images} images x {case.n_samples} samples, batch {best}")
        sg = bench_smoothgrad(model, x, t, n_samples=case.n_samples, noise=config.noise,
                              batch_size=best, reps=reps, seed=config.seed, cheap_warmup=heavy)
        results["smoothgrad"].append({
            "model": case.name, "input": "x".join(map(str, model.inputs[0].shape[1:3])),
            "weights": case.weights or "random", "images": case.n_images,
            "n_samples": case.n_samples, "noise": config.noise, "batch_size": best,
            "best_batch": best, "per_image_pass_s": {str(b): v for b, v in per_image.items()},
            **sg})
        log(f"{case.name}: Grad-CAM, IG ({config.ig_steps} steps), Score-CAM")
        for row in bench_methods(model, x, t, layer=layer, reps=reps, ig_steps=config.ig_steps,
                                 batch_size=best, scorecam_max_n=case.scorecam_max_n,
                                 ig_images=case.ig_images, cheap_warmup=heavy):
            results["methods"].append({"model": case.name, **row})
        methods.clear_cache(model)
        del model
    width = config.train_width
    if width is None:
        try:
            width = int(models.provenance("vgg-fp-s0").get("width", 32))
        except (FileNotFoundError, KeyError):
            width = 32
    for fv in config.train_families:
        for precision in ("float32", "mixed_bfloat16"):
            log(f"training {fv} (width {width}) in {precision}")
            results["training"].append(bench_training(
                fv, width, precision=precision, batch_size=config.train_batch,
                steps=config.train_steps, reps=config.reps, seed=config.seed))
    results["book_build"] = latest_builds()
    results["machine"]["load_average_after"] = (
        [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None)
    results["bench_seconds"] = round(time.time() - started, 1)
    return _round(results)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bnn_saliency.bench",
        description="Benchmark SmoothGrad, CAM methods, IG and twin training; write JSON.")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default {DEFAULT_OUT}")
    parser.add_argument("--quick", action="store_true",
                        help="small smoke run (twins only, 2 repetitions); not for the book")
    parser.add_argument("--reps", type=int, default=None, help="repetitions per timing")
    parser.add_argument("--builds", action="store_true",
                        help="first run `make clean` and `make book` twice (cold, warm); "
                             "this deletes the execution cache and takes a long time")
    parser.add_argument("--record-build", type=float, metavar="SECONDS", default=None,
                        help="(used by `make book`) append a build's wall time and exit")
    parser.add_argument("--cold", type=int, choices=(0, 1), default=0,
                        help="with --record-build: 1 if the build started without a cache")
    parser.add_argument("--exit-code", type=int, default=0, help="with --record-build")
    parser.add_argument("--builds-only", type=Path, metavar="BUILD_LOG", default=None,
                        help="only refresh the build times in --out from this build log "
                             "(e.g. another checkout's _build/build_time.json)")
    args = parser.parse_args(argv)
    if args.builds_only is not None:
        update_builds(args.out, args.builds_only)
        return
    if args.record_build is not None:
        rec = record_build(args.record_build, bool(args.cold), args.exit_code)
        print(f"book build: {rec['seconds']} s ({'cold' if rec['cold'] else 'warm'} cache), "
              f"recorded in {BUILD_LOG}")
        return
    if args.builds:
        run_builds()
    config = QUICK if args.quick else FULL
    if args.reps is not None:
        config = replace(config, reps=args.reps, heavy_reps=min(args.reps, config.heavy_reps))
    results = run(config, log=lambda msg: print(msg, flush=True))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.out} ({results['bench_seconds']} s)")


if __name__ == "__main__":
    main(sys.argv[1:])

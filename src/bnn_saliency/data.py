"""Data access: CIFAR-10, ImageNet sample images, package-shipped photos.

The offline mirror's location comes from the environment variable
``BNN_SALIENCY_DATA`` (``.ci/run`` points it at ``../shared/data``). Without it,
CIFAR-10 comes from ``keras.datasets.cifar10`` (online). Nothing from the mirror
is ever written into the project: decoded arrays go to the git-ignored cache.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATA_ENV = "BNN_SALIENCY_DATA"
CACHE_ENV = "BNN_SALIENCY_CACHE"
CIFAR10_ARCHIVE = "cifar10-jpeg.tar.gz"
CIFAR10_SHA256 = "095226df70d299448b2d6b0433dadc24e791ac148eb9f83cc45cc2b65ea3897f"
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)
IMAGENET_SAMPLES_URL = "https://github.com/EliSchwartz/imagenet-sample-images"
PROJECT_ROOT = Path(__file__).resolve().parents[2]


class DataNotFoundError(FileNotFoundError):
    """Raised when data the study needs is neither in the mirror nor reachable."""


class ChecksumError(ValueError):
    """Raised when a file's sha256 does not match the recorded one."""


def sha256_of(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256(path: str | Path, expected: str) -> None:
    """Raise :class:`ChecksumError` unless ``path`` hashes to ``expected``."""
    actual = sha256_of(path)
    if actual != expected:
        raise ChecksumError(
            f"{path}: sha256 is {actual}, expected {expected}. The file is corrupted or "
            "not the one the study was built with; fetch it again."
        )


def data_dir(required: bool = True) -> Path | None:
    """The offline data mirror named by ``BNN_SALIENCY_DATA``, or None if unset."""
    value = os.environ.get(DATA_ENV)
    if not value:
        return None
    path = Path(value).expanduser().resolve()
    if not path.is_dir():
        if required:
            raise DataNotFoundError(
                f"{DATA_ENV}={value} is not a directory. Point it at the offline data mirror "
                "(the folder holding cifar10-jpeg.tar.gz and imagenet-samples/), or unset it "
                "to download CIFAR-10 with keras.datasets."
            )
        return None
    return path


def cache_dir() -> Path:
    """Git-ignored folder for decoded arrays and computed results."""
    path = Path(os.environ.get(CACHE_ENV, PROJECT_ROOT / ".cache"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass(frozen=True)
class Cifar10:
    """CIFAR-10 as uint8 arrays (N, 32, 32, 3) and int64 labels in canonical order."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    source_sha256: str | None


def _decode_cifar10_archive(archive: Path) -> dict[str, np.ndarray]:
    from PIL import Image

    images: dict[str, list] = {"train": [], "test": []}
    labels: dict[str, list] = {"train": [], "test": []}
    keys: dict[str, list] = {"train": [], "test": []}
    with tarfile.open(archive, mode="r:gz") as tar:
        for member in tar:
            if not member.isfile() or not member.name.endswith(".jpg"):
                continue
            _, split, cls, fname = member.name.split("/")
            raw = tar.extractfile(member).read()
            img = np.asarray(Image.open(io.BytesIO(raw)).convert("RGB"), dtype=np.uint8)
            images[split].append(img)
            labels[split].append(CIFAR10_CLASSES.index(cls))
            keys[split].append((CIFAR10_CLASSES.index(cls), fname))
    out = {}
    for split in ("train", "test"):
        order = sorted(range(len(keys[split])), key=keys[split].__getitem__)
        out[f"x_{split}"] = np.stack([images[split][i] for i in order])
        out[f"y_{split}"] = np.asarray([labels[split][i] for i in order], dtype=np.int64)
    return out


def load_cifar10() -> Cifar10:
    """CIFAR-10 from the offline mirror if ``BNN_SALIENCY_DATA`` is set, else keras.datasets.

    The mirror's archive is sha256-checked and decoded once into the cache. The mirror
    orders images by class then file number; keras.datasets keeps its own order. Labels
    use the canonical order :data:`CIFAR10_CLASSES` either way.

    Returns:
        A :class:`Cifar10` whose ``source`` names where the arrays came from.
    """
    mirror = data_dir()
    if mirror is not None:
        archive = mirror / CIFAR10_ARCHIVE
        if not archive.is_file():
            raise DataNotFoundError(
                f"{archive} is missing. Put cifar10-jpeg.tar.gz in {mirror} or unset {DATA_ENV} "
                "to download CIFAR-10 with keras.datasets.cifar10."
            )
        cached = cache_dir() / f"cifar10-jpeg-{CIFAR10_SHA256[:12]}.npz"
        if not cached.is_file():
            verify_sha256(archive, CIFAR10_SHA256)
            arrays = _decode_cifar10_archive(archive)
            tmp = cached.with_suffix(".tmp.npz")
            np.savez(tmp, **arrays)
            tmp.replace(cached)
        with np.load(cached) as npz:
            arrays = {k: npz[k] for k in npz.files}
        return Cifar10(**arrays, source="mirror:cifar10-jpeg", source_sha256=CIFAR10_SHA256)
    try:
        from tensorflow import keras

        (x_tr, y_tr), (x_te, y_te) = keras.datasets.cifar10.load_data()
    except Exception as err:  # no network, no cache
        raise DataNotFoundError(
            f"CIFAR-10 is not available: set {DATA_ENV} to the offline data mirror, or go "
            f"online so keras.datasets.cifar10 can download it ({err})."
        ) from err
    return Cifar10(x_tr, y_tr.ravel().astype(np.int64), x_te, y_te.ravel().astype(np.int64),
                   source="keras.datasets.cifar10", source_sha256=None)


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 images to float32 in [0, 1], the twins' input range."""
    return np.asarray(images, dtype=np.float32) / 255.0


def cifar10_panel(data: Cifar10, seed: int = 0) -> np.ndarray:
    """Indices into the test set: one seeded image per class, in class order."""
    rng = np.random.default_rng(seed)
    return np.array([rng.choice(np.flatnonzero(data.y_test == c)) for c in range(10)])


def cifar10_subset(data: Cifar10, n: int, seed: int = 0) -> np.ndarray:
    """Seeded random indices into the test set (without replacement, sorted)."""
    if not 0 < n <= len(data.y_test):
        raise ValueError(f"n must be in 1..{len(data.y_test)}, got {n}")
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(len(data.y_test), size=n, replace=False))


# ---------------------------------------------------------------- ImageNet samples
@dataclass(frozen=True)
class ImageNetSample:
    index: int
    synset: str
    name: str
    path: Path
    sha256: str


def imagenet_samples() -> list[ImageNetSample]:
    """The mirror's ImageNet sample images, from ``imagenet-samples/index.tsv``."""
    mirror = data_dir()
    folder = mirror / "imagenet-samples" if mirror else None
    if folder is None or not (folder / "index.tsv").is_file():
        raise DataNotFoundError(
            f"ImageNet sample images not found. Set {DATA_ENV} to the offline data mirror, or "
            f"clone {IMAGENET_SAMPLES_URL} and arrange it as <dir>/imagenet-samples/ with an "
            "index.tsv (index, synset, name, file, sha256)."
        )
    rows = (folder / "index.tsv").read_text().strip().splitlines()[1:]
    out = []
    for row in rows:
        idx, synset, name, fname, digest = row.split("\t")
        out.append(ImageNetSample(int(idx), synset, name, folder / fname, digest))
    return out


def load_imagenet_sample(which: int | str, size: int = 224) -> tuple[np.ndarray, int]:
    """One ImageNet sample as float32 RGB in [0, 255], resized (short side) and center-cropped.

    Args:
        which: ImageNet class index (0-999) or class name (e.g. ``"tabby"``).
        size: output height and width.

    Returns:
        (image of shape (size, size, 3), class index). Apply the model's own
        preprocessing afterwards (see :mod:`bnn_saliency.models`).
    """
    from PIL import Image

    samples = imagenet_samples()
    key = "index" if isinstance(which, (int, np.integer)) else "name"
    match = [s for s in samples if getattr(s, key) == which]
    if not match:
        names = ", ".join(sorted(s.name for s in samples)[:12])
        raise KeyError(f"no ImageNet sample with {key}={which!r}; available names include {names}, ...")
    sample = match[0]
    verify_sha256(sample.path, sample.sha256)
    img = Image.open(sample.path).convert("RGB")
    scale = size / min(img.size)
    img = img.resize((max(size, round(img.width * scale)), max(size, round(img.height * scale))),
                     Image.BILINEAR)
    left, top = (img.width - size) // 2, (img.height - size) // 2
    img = img.crop((left, top, left + size, top + size))
    return np.asarray(img, dtype=np.float32), sample.index


def package_photo(name: str) -> np.ndarray:
    """A natural photo that ships with an installed package, as uint8 RGB.

    Names: ``chelsea``, ``coffee``, ``astronaut``, ``rocket`` (scikit-image) and
    ``china``, ``flower`` (scikit-learn's sample images).
    """
    import skimage.data

    if name in ("chelsea", "coffee", "astronaut", "rocket"):
        return np.asarray(getattr(skimage.data, name)(), dtype=np.uint8)
    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_image

        return load_sample_image(f"{name}.jpg")
    raise KeyError(f"unknown photo {name!r}: use chelsea, coffee, astronaut, rocket, china or flower")

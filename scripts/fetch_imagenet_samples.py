#!/usr/bin/env python3
"""Fetch the study's ImageNet sample images from their public source and write ``index.tsv``.

Usage (online; ``.github/workflows/book.yml`` runs it)::

    python scripts/fetch_imagenet_samples.py "$BNN_SALIENCY_DATA"

It clones https://github.com/EliSchwartz/imagenet-sample-images (one ILSVRC-2012 validation
image per class, files named ``<synset>_<name>.JPEG``), copies the study's 126 classes into
``<dest>/imagenet-samples/`` and writes ``<dest>/imagenet-samples/index.tsv``, the file that
:func:`bnn_saliency.data.imagenet_samples` reads: a header line, then one tab-separated row per
image, sorted by class index, with the columns

    index   ImageNet class index 0-999 in the standard Keras order
    synset  WordNet id, e.g. n01440764
    name    Keras class name, e.g. tench
    file    file name inside imagenet-samples/
    sha256  hex sha256 of the file (checked by bnn_saliency.data.load_imagenet_sample)

Index and name come from Keras's class index
(https://storage.googleapis.com/download.tensorflow.org/data/imagenet_class_index.json,
``{"0": ["n01440764", "tench"], ...}``).

The 126 classes are those of the offline mirror the book's published numbers were computed
from: every tenth class plus the named ones in :data:`EXTRA_CLASSES` (robin, tabby, church,
espresso, ...). With that default selection the written ``index.tsv`` must hash to
:data:`MIRROR_INDEX_SHA256`, which holds only if every image is byte-identical to the mirror's;
otherwise the script stops (exit code 1), since the chapters would then fail their
published-number checks. ``--all`` copies every class instead (and skips that check).

``--source`` and ``--class-index`` also accept a local folder and a local JSON file, so the
script runs offline on copies (the tests use a tiny fake folder). Only the standard library
and ``git`` (for cloning) are used.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

SOURCE_URL = "https://github.com/EliSchwartz/imagenet-sample-images"
CLASS_INDEX_URL = ("https://storage.googleapis.com/download.tensorflow.org/data/"
                   "imagenet_class_index.json")
SUBDIR = "imagenet-samples"
INDEX_NAME = "index.tsv"
COLUMNS = ("index", "synset", "name", "file", "sha256")
#: Classes beyond every tenth one (the paper's robin, the GBP paper's tabby, and others).
EXTRA_CLASSES = (11, 15, 22, 94, 107, 207, 217, 281, 282, 285, 301, 323, 386, 482, 491, 497,
                 566, 569, 571, 574, 701, 779, 817, 963, 967, 985)
#: The study's selection: 126 classes.
DEFAULT_CLASSES = tuple(sorted(set(range(0, 1000, 10)) | set(EXTRA_CLASSES)))
#: sha256 of the offline mirror's imagenet-samples/index.tsv (126 rows, sha256 of each image).
MIRROR_INDEX_SHA256 = "8b2de4b44843d39b21caf8f8979e5cb1695e56367d2044f3ae7595b8845e337a"
IMAGE_SUFFIXES = (".JPEG", ".jpeg", ".jpg", ".JPG", ".png", ".PNG")


class FetchError(RuntimeError):
    """The source does not hold what the study needs, or the result differs from the mirror."""


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def load_class_index(location: str) -> dict[int, tuple[str, str]]:
    """Keras's class index ``{"0": [synset, name], ...}`` from a URL or a local file."""
    if location.startswith(("http://", "https://")):
        with urllib.request.urlopen(location, timeout=60) as response:
            raw = json.load(response)
    else:
        raw = json.loads(Path(location).read_text())
    return {int(k): (str(v[0]), str(v[1])) for k, v in raw.items()}


def clone(url: str, into: Path) -> Path:
    """Shallow clone of ``url`` into ``into`` (which must not exist)."""
    subprocess.run(["git", "clone", "--quiet", "--depth", "1", url, str(into)], check=True)
    return into


def find_image(source: Path, synset: str, name: str) -> Path:
    """The source's image of class ``synset``: ``<synset>_<name>.JPEG`` or the one file
    whose name starts with ``<synset>_`` (or is ``<synset>.<ext>``)."""
    exact = source / f"{synset}_{name}.JPEG"
    if exact.is_file():
        return exact
    found = sorted(p for p in source.iterdir()
                   if p.is_file() and p.suffix in IMAGE_SUFFIXES
                   and (p.stem == synset or p.name.startswith(f"{synset}_")))
    if len(found) != 1:
        what = "no image" if not found else f"{len(found)} images ({', '.join(p.name for p in found)})"
        raise FetchError(f"{source} has {what} for class {synset} ({name})")
    return found[0]


def index_rows(classes, class_index: dict[int, tuple[str, str]], folder: Path) -> list[tuple]:
    """(index, synset, name, file, sha256) for each class, from files already in ``folder``."""
    rows = []
    for idx in sorted(classes):
        synset, name = class_index[idx]
        path = find_image(folder, synset, name)
        rows.append((idx, synset, name, path.name, sha256_of(path)))
    return rows


def write_index(rows, path: Path) -> str:
    """Write ``index.tsv`` (header, rows sorted by index, ``\\n`` line ends); return its sha256."""
    lines = ["\t".join(COLUMNS)]
    for row in sorted(rows, key=lambda r: int(r[0])):
        fields = [str(f) for f in row]
        if len(fields) != len(COLUMNS) or any(("\t" in f or "\n" in f) for f in fields):
            raise FetchError(f"cannot write row {row!r} as {len(COLUMNS)} tab-separated fields")
        lines.append("\t".join(fields))
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8", newline="\n")
    tmp.replace(path)
    return sha256_of(path)


def fetch(dest: Path, source: Path, class_index: dict[int, tuple[str, str]],
          classes=DEFAULT_CLASSES, expect_index_sha256: str | None = MIRROR_INDEX_SHA256) -> Path:
    """Copy the selected classes' images from ``source`` into ``dest/imagenet-samples/`` and
    write its ``index.tsv``. Returns that folder.

    Raises:
        FetchError: a class is missing from ``class_index`` or ``source``, or the index does
            not hash to ``expect_index_sha256`` (when given).
    """
    missing = sorted(set(classes) - set(class_index))
    if missing:
        raise FetchError(f"the class index has no entry for classes {missing}")
    folder = Path(dest) / SUBDIR
    folder.mkdir(parents=True, exist_ok=True)
    for idx in sorted(classes):
        synset, name = class_index[idx]
        image = find_image(Path(source), synset, name)
        target = folder / image.name
        if Path(source).resolve() != folder.resolve():
            shutil.copyfile(image, target)
    digest = write_index(index_rows(classes, class_index, folder), folder / INDEX_NAME)
    if expect_index_sha256 is not None and digest != expect_index_sha256:
        raise FetchError(
            f"{folder / INDEX_NAME} hashes to {digest}, not to the offline mirror's "
            f"{expect_index_sha256}: the images in {source} differ from the ones the book's "
            "numbers were computed from (compare the sha256 column with the mirror's index.tsv). "
            "Pass --no-verify to keep them anyway.")
    return folder


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dest", type=Path,
                        help="the data folder (BNN_SALIENCY_DATA); imagenet-samples/ goes inside")
    parser.add_argument("--source", default=SOURCE_URL,
                        help=f"git URL to clone, or a local folder of images (default {SOURCE_URL})")
    parser.add_argument("--class-index", default=CLASS_INDEX_URL,
                        help="URL or local path of Keras's imagenet_class_index.json")
    parser.add_argument("--all", action="store_true",
                        help="copy every class of the class index, not the study's 126")
    parser.add_argument("--no-verify", action="store_true",
                        help="do not compare index.tsv with the offline mirror's")
    args = parser.parse_args(argv)

    class_index = load_class_index(args.class_index)
    classes = sorted(class_index) if args.all else DEFAULT_CLASSES
    expect = None if (args.all or args.no_verify) else MIRROR_INDEX_SHA256
    try:
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(args.source)
            if not local.is_dir():
                local = clone(args.source, Path(tmp) / "imagenet-sample-images")
            folder = fetch(args.dest, local, class_index, classes, expect)
    except FetchError as err:
        print(f"fetch_imagenet_samples: {err}", file=sys.stderr)
        return 1
    print(f"wrote {len(classes)} images and {INDEX_NAME} into {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

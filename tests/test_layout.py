"""The house rules of the package layout: library and study apart, thin chapters, small modules."""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "src" / "bnn_saliency"
STUDY = PKG / "study"
MAX_LINES = 530  # "no module over ~500 lines"


def _modules():
    return sorted(PKG.rglob("*.py"))


def _imports(path: Path) -> set[str]:
    """Absolute dotted names of the bnn_saliency modules ``path`` imports."""
    module = ".".join(path.relative_to(PKG.parent).with_suffix("").parts)
    return _imports_of(path.read_text(), module)


def _imports_of(source: str, module: str) -> set[str]:
    """``module``: the importing module's dotted name (``pkg.sub.__init__`` for a package)."""
    base = module.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                parts = base[: len(base) - node.level + 1] if node.level > 1 else base
                mod = ".".join(parts + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return {m for m in out if m.startswith("bnn_saliency")}


def _chapter_module(name: str) -> str | None:
    m = re.match(r"bnn_saliency\.study\.([a-z0-9_]+)", name)
    return m.group(1) if m and m.group(1) != "common" else None


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PKG)))
def test_module_size(path):
    n = len(path.read_text().splitlines())
    assert n <= MAX_LINES, f"{path.relative_to(ROOT)} has {n} lines; split it (limit ~500)"


@pytest.mark.parametrize("path", [p for p in _modules() if STUDY not in p.parents],
                         ids=lambda p: str(p.relative_to(PKG)))
def test_library_never_imports_the_study(path):
    bad = sorted(m for m in _imports(path) if m.startswith("bnn_saliency.study"))
    assert not bad, f"library module {path.relative_to(ROOT)} imports the study: {bad}"


@pytest.mark.parametrize("path", [p for p in _modules() if STUDY in p.parents],
                         ids=lambda p: str(p.relative_to(PKG)))
def test_chapter_modules_do_not_import_each_other(path):
    own = _chapter_module(".".join(path.relative_to(PKG.parent).with_suffix("").parts))
    others = sorted({c for m in _imports(path) if (c := _chapter_module(m)) and c != own})
    assert not others, f"{path.relative_to(ROOT)} imports other chapters' modules: {others}"


@pytest.mark.parametrize("page", sorted((ROOT / "book").glob("*.md")), ids=lambda p: p.stem)
def test_pages_define_no_functions(page):
    code = "\n".join(re.findall(r"```\{code-cell\}[^\n]*\n(.*?)```", page.read_text(), re.S))
    defs = re.findall(r"^(?:def|class) (\w+)", code, re.M)
    assert not defs, f"{page.name} defines {defs}: move them into bnn_saliency.study"


def test_the_checks_can_fail():
    """The import walker resolves relative imports, so a violation would be seen."""
    got = _imports_of("from ..study import ch03_gradcam\nfrom . import faithfulness\n",
                      "bnn_saliency.evaluation.x")
    assert "bnn_saliency.study.ch03_gradcam" in got
    assert "bnn_saliency.evaluation.faithfulness" in got
    got = _imports_of("from ...verdicts import Rule\n", "bnn_saliency.study.ch04_sanity.tables")
    assert "bnn_saliency.verdicts.Rule" in got
    assert _chapter_module("bnn_saliency.study.ch03_gradcam.tables") == "ch03_gradcam"
    assert _chapter_module("bnn_saliency.study.common") is None

"""The built site in a real browser: every page of ``_build/html`` opened in headless Chromium.

Run after ``make book`` with ``make site-test`` (``.ci/run`` does both; plain ``pytest`` skips
this module unless ``BNN_SALIENCY_SITE_TEST=1``). For each page: it loads
with its article, every ``<img>`` has loaded (``naturalWidth > 0``), the browser console shows
no error (level SEVERE, see :func:`_ignored` for the only exceptions), and every link to a
local file resolves, including its ``#anchor``. At the 1280 px wide window it also checks the
page reads well: the math is typeset (:func:`math_problems`), no table, code block or cell
output sticks out of the article or scrolls sideways (:func:`overflow_problems`), and no pandas
table shows a bare 0..n-1 row index (:func:`raw_index_problems`). A full-page screenshot of
each page is saved to ``_build/screenshots/`` as a test artefact.

Each check is a function of the driver on an opened page, so the unit tests below run it on
tiny static pages, one bad page per fault and a good one; they need only the browser, not the
built site, and run without ``BNN_SALIENCY_SITE_TEST``.

Needs the Debian packages ``chromium`` and ``chromium-driver`` (``/usr/bin/chromium``,
``/usr/bin/chromedriver``; override with ``CHROMIUM`` / ``CHROMEDRIVER``) and selenium. Skips
when ``_build/html`` is absent; without the browser it skips, except for the site test under
CI (``CI`` and ``BNN_SALIENCY_SITE_TEST`` set), which fails: ``.ci/run`` installs it.
"""

from __future__ import annotations

import base64
import functools
import http.server
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1280,1000"]
ASSET_DIRS = {"_static", "_sources", "_images", "_downloads"}
IMG_TIMEOUT_S = 15
MATH_TIMEOUT_S = 20  # MathJax (served from _static/ by sphinx-mathjax-offline) typesets a page
#: The page's main content: sphinx-book-theme's article, else any article/main element.
ARTICLE_JS = ("(document.querySelector('article.bd-article')"
              " || document.querySelector('article, main, [role=main]'))")
#: Console errors raised by the pinned theme packages themselves (checked by message):
#: sphinx-thebe 0.3.1 adds its inline config script twice, so the second ``const`` declaration
#: fails (it only concerns the live-code button, which the book does not enable); and
#: pydata-sphinx-theme 0.17.1 logs an invalid (empty) colour mode on a first visit when
#: ``html_theme_options.default_mode`` is unset, then falls back to "auto".
KNOWN_THEME_ERRORS = ("Identifier 'THEBE_JS_URL' has already been declared",
                      "Got invalid theme mode: . Resetting to auto.")


def _pages() -> list[str]:
    """Every HTML page of the site, relative to ``_build/html`` (assets excluded)."""
    if not HTML.is_dir():
        return []
    return sorted(p.relative_to(HTML).as_posix() for p in HTML.rglob("*.html")
                  if not ASSET_DIRS & set(p.relative_to(HTML).parts[:-1]))


PAGES = _pages()
NO_SITE = f"{HTML.relative_to(ROOT)} is absent: build the book first (`make book`)"
SITE_TEST_ENV = "BNN_SALIENCY_SITE_TEST"

# Opt-in, so that `make test` does not judge a stale local build: `make site-test` sets it.
# The checks' own unit tests (on scratch pages, not the site) run without it.
needs_site_test = pytest.mark.skipif(not os.environ.get(SITE_TEST_ENV),
                                     reason=f"browser test of the built site: run `make site-test` "
                                            f"(or set {SITE_TEST_ENV}=1)")


# ------------------------------------------------------------------------ fixtures
class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest's output clean
        pass


def _serve(root: Path):
    """Serve ``root`` on a free localhost port in a daemon thread; returns (server, base URL)."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}"


@pytest.fixture(scope="module")
def server():
    """The built site served on localhost for the duration of the module."""
    if not HTML.is_dir():
        pytest.skip(NO_SITE)
    httpd, url = _serve(HTML)
    yield url
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium through chromedriver, with a fresh profile and console logging."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not shutil.which(p)]
    if missing:
        msg = (f"{', '.join(missing)} not found: `apt-get install -y chromium chromium-driver` "
               "(or set CHROMIUM / CHROMEDRIVER)")
        site_test_in_ci = os.environ.get("CI") and os.environ.get(SITE_TEST_ENV)
        pytest.fail(msg) if site_test_in_ci else pytest.skip(msg)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="site-test-profile-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in CHROMIUM_ARGS + [f"--user-data-dir={profile}"]:
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    driver.set_window_size(1280, 1000)  # the width the layout checks judge the pages at
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


# ------------------------------------------------------------------------ helpers
def _ignored(entry: dict, origin: str) -> bool:
    """Console errors that say nothing about the site itself.

    * ``/favicon.ico`` 404: the browser asks every origin for a favicon; the book has none.
    * a resource from another origin failing to load: the test machine (and CI) is offline,
      so the theme's CDN scripts (thebe) cannot load there; our own files, MathJax included
      (sphinx-mathjax-offline), are all served from ``origin`` and still count.
    * :data:`KNOWN_THEME_ERRORS`: two bugs of the pinned theme packages, not of the book.
    """
    msg = entry.get("message", "")
    if "/favicon.ico" in msg or any(known in msg for known in KNOWN_THEME_ERRORS):
        return True
    url = msg.split(" ", 1)[0]
    return url.startswith("http") and not url.startswith(origin) and (
        "Failed to load resource" in msg or "net::ERR_" in msg)


@functools.lru_cache(maxsize=None)
def _anchors(page: Path) -> frozenset[str]:
    """Element ids and ``<a name>`` targets of a local HTML file."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(page.read_text(encoding="utf-8"), "html.parser")
    ids = {tag["id"] for tag in soup.find_all(id=True)}
    return frozenset(ids | {tag["name"] for tag in soup.find_all("a", attrs={"name": True})})


def _local_target(url: str, origin: str, root: Path = HTML) -> tuple[Path, str] | None:
    """(file under ``root``, fragment) for a link to the served site, else None."""
    if not url.startswith(origin + "/"):
        return None
    parts = urlsplit(url)
    path = root / unquote(parts.path).lstrip("/")
    if parts.path.endswith("/"):
        path = path / "index.html"
    return path, unquote(parts.fragment)


def _wait_for_images(driver) -> list[str]:
    """Load every image (lazy ones too) and return the sources of those that failed."""
    driver.execute_script(
        "document.querySelectorAll('img[loading=lazy]').forEach(i => i.loading = 'eager');"
        "window.scrollTo(0, document.body.scrollHeight);")
    deadline = time.time() + IMG_TIMEOUT_S
    while time.time() < deadline:
        pending = driver.execute_script(
            "return Array.from(document.images).filter(i => !i.complete).length;")
        if not pending:
            break
        time.sleep(0.2)
    return driver.execute_script(
        "return Array.from(document.images)"
        ".filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.currentSrc || i.src);")


def _screenshot(driver, page: str) -> None:
    """Full-page PNG through the DevTools protocol (viewport only if that is unavailable)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    out = SHOTS / (page.replace("/", "__").removesuffix(".html") + ".png")
    try:
        size = driver.execute_script(
            "return [document.documentElement.scrollWidth, document.documentElement.scrollHeight];")
        shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size[0], "height": min(size[1], 20000), "scale": 1}})
        out.write_bytes(base64.b64decode(shot["data"]))
    except Exception:  # noqa: BLE001 - an artefact, never a reason to fail the page
        driver.save_screenshot(str(out))


# ------------------------------------------------------------------------ page checks
# Each takes the driver on an opened page and returns a list of problems (empty: fine).

#: Text that is TeX MathJax should have typeset: \( or \[ delimiters, $$, or $...$ around a
#: backslash command (a bare "$5" or "$HOME" is not math).
_RAW_TEX_JS = r"/\\\(|\\\[|\$\$|\$[^$\n]*\\[A-Za-z]+[^$\n]*\$/"

_MATH_SCAN_JS = f"""
const art = {ARTICLE_JS};
if (!art) return {{raw: [], unrendered: [], errors: []}};
const rawTex = {_RAW_TEX_JS};
// code, program output and MathJax's own output are not prose that should have been typeset
const skip = 'pre, code, kbd, samp, script, style, textarea, mjx-container, .highlight';
const visible = el => el.checkVisibility
    ? el.checkVisibility({{visibilityProperty: true}}) : el.getClientRects().length > 0;
const short = t => t.replace(/\\s+/g, ' ').trim().slice(0, 80);
const raw = [];
const walker = document.createTreeWalker(art, NodeFilter.SHOW_TEXT);
for (let n = walker.nextNode(); n; n = walker.nextNode()) {{
  const el = n.parentElement;
  if (el && !el.closest(skip) && rawTex.test(n.nodeValue) && visible(el))
    raw.push(short(n.nodeValue));
}}
const unrendered = Array.from(art.querySelectorAll('.math'))
    .filter(m => !m.querySelector('mjx-container')).map(m => short(m.textContent));
const errors = Array.from(art.querySelectorAll('mjx-merror'))
    .map(e => short(e.getAttribute('data-mjx-error') || e.textContent));
return {{raw: raw, unrendered: unrendered, errors: errors}};
"""


def wait_for_mathjax(driver, timeout: float = MATH_TIMEOUT_S) -> str | None:
    """Wait until MathJax has typeset the page (``MathJax.startup.promise`` resolved); None
    when it has, or when the page has no ``.math`` element to typeset, else the problem."""
    if not driver.execute_script("return !!document.querySelector('.math');"):
        return None
    deadline = time.time() + timeout
    while not driver.execute_script(
            "return !!(window.MathJax && MathJax.startup && MathJax.startup.promise);"):
        if time.time() > deadline:
            return f"MathJax did not start within {timeout:g} s (script not loaded?)"
        time.sleep(0.2)
    driver.set_script_timeout(max(deadline - time.time(), 1))
    try:
        state = driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "MathJax.startup.promise.then(() => done('ok'), e => done('failed: ' + e));")
    except Exception as exc:  # noqa: BLE001 - a script timeout, reported as a page problem
        return f"MathJax did not finish typesetting within {timeout:g} s ({type(exc).__name__})"
    return None if state == "ok" else f"MathJax typesetting {state}"


def math_problems(driver, timeout: float = MATH_TIMEOUT_S) -> list[str]:
    r"""No untypeset math in the article once MathJax is done: no visible prose text still
    holding ``\(``, ``\[``, ``$$`` or ``$...\cmd...$`` (code blocks and outputs excepted),
    every ``.math`` element rendered (holds an ``mjx-container``), no MathJax TeX error."""
    problems = []
    waited = wait_for_mathjax(driver, timeout)
    if waited:
        problems.append(waited)
    found = driver.execute_script(_MATH_SCAN_JS)
    problems += [f"untypeset math text: {t!r}" for t in found["raw"]]
    problems += [f"math element not rendered by MathJax: {t!r}" for t in found["unrendered"]]
    problems += [f"MathJax error: {t!r}" for t in found["errors"]]
    return problems


_OVERFLOW_JS = f"""
const art = {ARTICLE_JS};
if (!art) return [];
const cs = getComputedStyle(art);  // the right edge of the article's content, inside its padding
const edge = art.getBoundingClientRect().right - parseFloat(cs.paddingRight)
    - parseFloat(cs.borderRightWidth);
const out = [];
const what = el => {{
  const kind = el.tagName === 'DIV' ? 'cell output' : el.tagName === 'PRE' ? 'code block' : 'table';
  const sec = el.closest('section[id]');
  const text = el.textContent.replace(/\\s+/g, ' ').trim().slice(0, 50);
  return kind + (sec ? ' in #' + sec.id : '') + ' ("' + text + '")';
}};
const doc = document.documentElement;
if (doc.scrollWidth > window.innerWidth + 1)
  out.push('the page scrolls sideways: ' + doc.scrollWidth + ' px wide in a '
           + window.innerWidth + ' px window');
for (const el of art.querySelectorAll('table, pre, .cell_output')) {{
  const r = el.getBoundingClientRect();
  if (r.width === 0 && r.height === 0) continue;  // not displayed (e.g. a collapsed cell)
  if (r.right > edge + 2)
    out.push(what(el) + ' extends ' + Math.round(r.right - edge) + ' px beyond the article');
  if (el.tagName === 'PRE' && el.scrollWidth > el.clientWidth + 1)
    out.push(what(el) + ' scrolls sideways: ' + el.scrollWidth + ' px of lines in '
             + el.clientWidth + ' px');
}}
return out;
"""


def overflow_problems(driver) -> list[str]:
    """Nothing wider than the article: every ``table``, ``pre`` and ``.cell_output`` of the
    article ends within 2 px of the right edge of the article's content box (its padding is
    the gutter, not room for content; a table in the theme's scrolling
    wrapper still fails: it is cut off), no ``pre`` scrolls sideways (scrollWidth >
    clientWidth + 1), and the page itself does not scroll sideways."""
    return driver.execute_script(_OVERFLOW_JS)


_RAW_INDEX_JS = f"""
const art = {ARTICLE_JS};
if (!art) return [];
const out = [];
art.querySelectorAll('table.dataframe').forEach(t => {{
  const rows = Array.from(t.tBodies).flatMap(b => Array.from(b.rows));
  const first = rows.map(r => r.cells.length ? r.cells[0].textContent.trim() : '');
  const vals = first.filter(v => v !== '...' && v !== '\u2026');  // pandas' truncation row
  if (!vals.length || !vals.every(v => /^\\d+$/.test(v))) return;
  const ints = vals.map(Number);
  const gaps = ints.slice(1).filter((v, i) => v !== ints[i] + 1).length;
  const truncated = vals.length < first.length;
  if (ints[0] !== 0 || gaps > (truncated ? 1 : 0)) return;
  const firstText = r => r.cells.length ? r.cells[0].textContent.trim() : '';
  const head = t.tHead ? Array.from(t.tHead.rows).map(firstText) : [];
  if (head.some(h => h)) return;  // a labelled first column: a named index or a data column
  const sec = t.closest('section[id]');
  const columns = t.tHead ? t.tHead.rows[0].textContent.replace(/\\s+/g, ' ').trim() : '';
  out.push('pandas table' + (sec ? ' in #' + sec.id : '') + ' shows its raw 0..'
           + ints[ints.length - 1] + ' row index (columns: ' + columns.slice(0, 50) + ')');
}});
return out;
"""


def raw_index_problems(driver) -> list[str]:
    """No pandas table (``table.dataframe``) in the article whose first body column is exactly
    0, 1, ..., n-1 under an empty header: an unlabelled RangeIndex, row numbers that mean
    nothing. Index by something meaningful, or hide the index."""
    return driver.execute_script(_RAW_INDEX_JS)


def layout_problems(driver, math_timeout: float = MATH_TIMEOUT_S) -> list[str]:
    """The three reading checks on the opened page, math first (it changes the layout)."""
    return (math_problems(driver, math_timeout) + overflow_problems(driver)
            + raw_index_problems(driver))


# ------------------------------------------------------------------------ tests
@needs_site_test
def test_every_toc_chapter_was_built():
    if not HTML.is_dir():
        pytest.skip(NO_SITE)
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]] + [ch["file"] for part in toc["parts"] for ch in part["chapters"]]
    missing = [f for f in files if not (HTML / f"{f}.html").exists()]
    assert not missing, f"_toc.yml chapters without a built page: {missing}; rebuild with `make book`"


def page_problems(driver, origin: str, page: str, root: Path = HTML,
                  math_timeout: float = MATH_TIMEOUT_S) -> list[str]:
    """Open ``origin/page`` and list everything wrong with it (empty list: the page is fine)."""
    driver.get_log("browser")  # drop anything left over from the previous page
    driver.get(f"{origin}/{page}")
    deadline = time.time() + 30  # a redirect page (the root index) starts a second load
    while driver.execute_script("return document.readyState") != "complete":
        if time.time() > deadline:
            return ["still loading after 30 s"]
        time.sleep(0.2)
    problems = []
    article = driver.execute_script(
        "const a = document.querySelector('article, main, [role=main]');"
        "return a ? a.innerText.trim().length : -1;")
    if article <= 0:
        problems.append("no article content rendered")
    if "404" in driver.title:
        problems.append(f"title {driver.title!r}")
    problems += [f"image not loaded: {src}" for src in _wait_for_images(driver)]
    problems += layout_problems(driver, math_timeout)
    links = driver.execute_script(
        "return Array.from(document.querySelectorAll('a[href]')).map(a => a.href);")
    if root == HTML:
        _screenshot(driver, page)
    problems += [f"console error: {e['message']}" for e in driver.get_log("browser")
                 if e.get("level") == "SEVERE" and not _ignored(e, origin)]
    for url in sorted(set(links)):
        target = _local_target(url, origin, root)
        if target is None:
            continue
        path, fragment = target
        if not path.is_file():
            problems.append(f"broken link: {url} (no file {path.relative_to(root)})")
        elif fragment and path.suffix == ".html" and fragment not in _anchors(path):
            problems.append(f"broken link: {url} (no #{fragment} in {path.relative_to(root)})")
    return problems


@needs_site_test
@pytest.mark.parametrize("page", PAGES or [pytest.param(None, marks=pytest.mark.skip(reason=NO_SITE))])
def test_page_in_browser(page, server, browser):
    problems = page_problems(browser, server, page)
    assert not problems, f"{page}:\n  " + "\n  ".join(problems)


def test_checker_catches_a_broken_page(browser, tmp_path):
    """Oracle: a tiny site with one of each fault the page check must report, and a clean page."""
    (tmp_path / "img.png").write_bytes(base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="))
    (tmp_path / "good.html").write_text(
        '<html><head><title>ok</title></head><body><main><h1 id="top">Fine</h1>'
        '<img src="img.png"><a href="good.html#top">self</a></main></body></html>')
    (tmp_path / "bad.html").write_text(
        "<html><head><title>bad</title></head><body><main><p>text</p>"
        '<img src="missing.png"><a href="good.html#nowhere">anchor</a>'
        '<a href="gone.html">file</a><script>undefinedFunction();</script></main></body></html>')
    httpd, origin = _serve(tmp_path)
    try:
        assert page_problems(browser, origin, "good.html", tmp_path) == []
        bad = "\n".join(page_problems(browser, origin, "bad.html", tmp_path))
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert "image not loaded" in bad and "missing.png" in bad
    assert "no #nowhere in good.html" in bad and "no file gone.html" in bad
    assert "undefinedFunction" in bad


# ------------------------------------------------------------------------ the layout checks' oracle
# Static pages shaped like the book's (sphinx-book-theme's article, Sphinx's math markup and
# MathJax configuration, pandas' HTML tables), served from a temporary directory with the
# MathJax that sphinx-mathjax-offline ships: one good page, one bad page per fault.
_HEAD = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body {{ margin: 0; font: 16px sans-serif; }}
.bd-article {{ box-sizing: border-box; width: 800px; margin-left: 120px; padding: 0 1em; }}
pre {{ overflow: auto; }} .pst-scrollable-table-container {{ overflow-x: auto; }}</style>
<script>window.MathJax = {{"options": {{"processHtmlClass":
  "tex2jax_process|mathjax_process|math|output_area"}}}}</script>
<script defer="defer" src="{mathjax}"></script></head><body>
<article class="bd-article" role="main"><section class="tex2jax_ignore mathjax_ignore" id="{title}">
<h1>{title}</h1>
"""
_FOOT = "</section></article></body></html>"
_LOCAL_MATHJAX = "_static/mathjax/tex-chtml.js"
_OFFLINE_MATHJAX = "http://127.0.0.1:9/mathjax/tex-chtml.js"  # a CDN the test cannot reach
_INLINE = '<span class="math notranslate nohighlight">\\(A^k\\)</span>'
_DISPLAY = '<div class="math notranslate nohighlight">\\[\\sum_{i=1}^n x_i^2 = \\|x\\|^2\\]</div>'


def _scratch_pages() -> dict[str, str]:
    import pandas as pd

    named = pd.DataFrame({"test acc": [0.81, 0.64], "variant": ["fp", "bnn"]},
                         index=["vgg-fp-s0", "vgg-bnn-s0"]).rename_axis(index=None, columns="twin")
    by_epoch = pd.DataFrame({"loss": [1.2, 0.9, 0.7]}).rename_axis("epoch")  # labelled 0..n-1
    wide = pd.DataFrame([[0.123456] * 24], columns=[f"measure_number_{i:02d}" for i in range(24)],
                        index=pd.Index(["vgg-fp-s0"], name="twin"))
    long = pd.DataFrame({"value": range(40)})
    body = {
        "good": (_LOCAL_MATHJAX,
                 f"<p>Inline {_INLINE} and a display:</p>{_DISPLAY}"
                 "<p>A price of $5 and $HOME are not math.</p>"
                 '<div class="cell_output docutils container"><div class="output text_html">'
                 f'<div class="pst-scrollable-table-container">{named.to_html()}</div>'
                 f"{by_epoch.to_html()}</div>"
                 '<div class="output stream highlight-myst-ansi notranslate"><pre>'
                 "print(r'$\\alpha^k$ in code is code')</pre></div></div>"),
        "bad_math_text": (_LOCAL_MATHJAX,
                          "<p>A claim about $\\alpha^k$ that dollarmath never parsed, and "
                          "\\(A^k\\) written with parentheses.</p>"),
        "bad_math_offline": (_OFFLINE_MATHJAX, f"<p>Inline {_INLINE} and a display:</p>{_DISPLAY}"),
        "bad_wide_table": (_LOCAL_MATHJAX,
                           f'<div class="pst-scrollable-table-container">{wide.to_html()}</div>'),
        # a table only 12 px too wide: into the article's padding, cut off at its content edge
        "bad_table_in_padding": (_LOCAL_MATHJAX,
                                 '<div class="pst-scrollable-table-container">'
                                 '<table style="width: calc(100% + 12px)"><tr><td>a</td></tr>'
                                 "</table></div>"),
        "bad_wide_code": (_LOCAL_MATHJAX,
                          "<pre>" + "x = compute(" + ", ".join(f"arg{i}" for i in range(60))
                          + ")</pre>"),
        "bad_raw_index": (_LOCAL_MATHJAX,
                          pd.DataFrame({"claim": ["a", "b", "c"], "verdict": ["ok"] * 3}).to_html()
                          + long.to_html(max_rows=6)),
    }
    return {f"{name}.html": _HEAD.format(title=name, mathjax=mathjax) + html + _FOOT
            for name, (mathjax, html) in body.items()}


@pytest.fixture(scope="module")
def scratch_site(tmp_path_factory):
    """The scratch pages served on localhost: (origin, root)."""
    import importlib.util

    spec = importlib.util.find_spec("sphinx-mathjax-offline")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("sphinx-mathjax-offline is not installed (pip install -r requirements.txt)")
    mathjax = Path(list(spec.submodule_search_locations)[0]) / "static" / "mathjax"
    root = tmp_path_factory.mktemp("scratch-site")
    (root / "_static").mkdir()
    (root / "_static" / "mathjax").symlink_to(mathjax, target_is_directory=True)
    for name, html in _scratch_pages().items():
        (root / name).write_text(html, encoding="utf-8")
    httpd, origin = _serve(root)
    yield origin, root
    httpd.shutdown()
    httpd.server_close()


def _open(driver, origin: str, page: str) -> None:
    driver.get(f"{origin}/{page}")
    deadline = time.time() + 30
    while driver.execute_script("return document.readyState") != "complete":
        assert time.time() < deadline, f"{page} still loading after 30 s"
        time.sleep(0.2)


def test_window_is_1280_px_wide(browser, scratch_site):
    origin, _ = scratch_site
    _open(browser, origin, "good.html")
    assert browser.execute_script("return window.innerWidth;") == 1280


def test_layout_checks_pass_the_good_page(browser, scratch_site):
    """Typeset math, tables inside the article, a named index (on the columns' axis, as
    report.twin_table does, and as a labelled 0..n-1 "epoch"), TeX only inside code: no
    problem from any check, nor from the whole page check (images, console, links)."""
    origin, root = scratch_site
    assert page_problems(browser, origin, "good.html", root) == []
    rendered = browser.execute_script(
        "return document.querySelectorAll('.math mjx-container').length;")
    assert rendered == 2, "MathJax from _static/ should have typeset both formulas"


@pytest.mark.parametrize("page, check, expected", [
    ("bad_math_text", "math", ["untypeset math text: 'A claim about $\\\\alpha^k$"]),
    ("bad_math_offline", "math", ["MathJax did not start", "math element not rendered",
                                  "untypeset math text: '\\\\(A^k\\\\)'"]),
    ("bad_wide_table", "overflow", ["table", "px beyond the article"]),
    ("bad_table_in_padding", "overflow", ["table in #bad_table_in_padding",
                                          "extends 12 px beyond"]),
    ("bad_wide_code", "overflow", ["code block", "scrolls sideways"]),
    ("bad_raw_index", "raw_index", ["shows its raw 0..2 row index",
                                    "shows its raw 0..39 row index"]),
])
def test_layout_check_catches_its_bad_page(browser, scratch_site, page, check, expected):
    """Each bad page fails its own check (with the expected messages) and passes the others."""
    origin, _ = scratch_site
    _open(browser, origin, f"{page}.html")
    found = {"math": math_problems(browser, timeout=3), "overflow": overflow_problems(browser),
             "raw_index": raw_index_problems(browser)}
    text = "\n".join(found[check])
    assert found[check] and all(e in text for e in expected), f"{page}: {found}"
    others = {k: v for k, v in found.items() if k != check and v}
    assert not others, f"{page} should only fail the {check} check: {others}"

"""The built site in a real browser: every page of ``_build/html`` opened in headless Chromium.

Run after ``make book`` with ``make site-test`` (``.ci/run`` does both; plain ``pytest`` skips
this module unless ``BNN_SALIENCY_SITE_TEST=1``). For each page: it loads
with its article, every ``<img>`` has loaded (``naturalWidth > 0``), the browser console shows
no error (level SEVERE, see :func:`_ignored` for the only exceptions), and every link to a
local file resolves, including its ``#anchor``. A full-page screenshot of each page is saved
to ``_build/screenshots/`` as a test artefact.

Needs the Debian packages ``chromium`` and ``chromium-driver`` (``/usr/bin/chromium``,
``/usr/bin/chromedriver``; override with ``CHROMIUM`` / ``CHROMEDRIVER``) and selenium. Skips
when ``_build/html`` is absent; without the browser it skips locally and fails under CI
(``CI`` set), where ``.ci/run`` installs it.
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
pytestmark = pytest.mark.skipif(not os.environ.get(SITE_TEST_ENV),
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
        pytest.fail(msg) if os.environ.get("CI") else pytest.skip(msg)
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
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


# ------------------------------------------------------------------------ helpers
def _ignored(entry: dict, origin: str) -> bool:
    """Console errors that say nothing about the site itself.

    * ``/favicon.ico`` 404: the browser asks every origin for a favicon; the book has none.
    * a resource from another origin failing to load: the test machine (and CI) is offline,
      so the theme's CDN scripts (MathJax, thebe) cannot load there; our own files are all
      served from ``origin`` and still count.
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


# ------------------------------------------------------------------------ tests
def test_every_toc_chapter_was_built():
    if not HTML.is_dir():
        pytest.skip(NO_SITE)
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]] + [ch["file"] for part in toc["parts"] for ch in part["chapters"]]
    missing = [f for f in files if not (HTML / f"{f}.html").exists()]
    assert not missing, f"_toc.yml chapters without a built page: {missing}; rebuild with `make book`"


def page_problems(driver, origin: str, page: str, root: Path = HTML) -> list[str]:
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

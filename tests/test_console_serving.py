"""The console's files: served at /ui/ with every asset from the installed
package (nothing external), and `headrace ui`, the UI-only mode that proxies the
API routes to another Headrace."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from tests.support.live import AUTH, live_server

ROOT = Path(__file__).resolve().parent.parent
# What makes a browser fetch something: HTML attributes, module imports
# (static, side-effect and dynamic), CSS url() and @import.
_HTML_REFS = re.compile(r"""\b(?:src|href)\s*=\s*["']([^"']+)["']""")
_JS_REFS = re.compile(r"""(?:\bfrom\s*|\bimport\s*\(?\s*)["']([^"']+)["']""")
_CSS_REFS = re.compile(r"""url\(\s*["']?([^"')]+)["']?\s*\)|@import\s+["']([^"']+)["']""")


def crawl(base_url: str) -> dict[str, int]:
    """Every URL the console page references, transitively, with its status.
    Fails on any reference that leaves the server."""
    start = f"{base_url}/ui/"
    seen: dict[str, int] = {}
    queue = [start]
    with httpx.Client(timeout=10) as http:
        while queue:
            url = queue.pop()
            if url in seen:
                continue
            response = http.get(url)
            seen[url] = response.status_code
            if response.status_code != 200:
                continue
            kind = response.headers.get("content-type", "")
            text = response.text
            if "html" in kind:
                refs = _HTML_REFS.findall(text)
            elif "javascript" in kind:
                refs = _JS_REFS.findall(text)
            elif "css" in kind:
                refs = [a or b for a, b in _CSS_REFS.findall(text)]
            else:
                refs = []
            for ref in refs:
                if ref.startswith(("data:", "#", "mailto:")):
                    continue
                target = urljoin(url, ref)
                assert urlsplit(target).netloc == urlsplit(base_url).netloc, (
                    f"{url} loads {ref} from outside the server")
                if urlsplit(target).path.startswith("/ui/"):
                    queue.append(target.split("#")[0])
    return seen


@pytest.fixture(scope="module")
def installed_headrace(tmp_path_factory) -> Path:
    """`pip install` of a wheel built from this checkout into a new virtualenv;
    the dependencies come from the test environment (a .pth file), Headrace's own
    files only from the wheel."""
    root = tmp_path_factory.mktemp("installed")
    # Build from a copy of the checkout's files (what a clean clone holds), so the
    # build leaves nothing in the working tree.
    source = root / "source"
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.splitlines()
    for name in listed:
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    wheels = root / "wheels"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(wheels), str(source)],
        capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-3000:]
    env_dir = root / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(env_dir),
                                                    "platbase": str(env_dir)}))
    (site / "test-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    wheel = next(wheels.glob("headrace-*.whl"))
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(env_dir / "bin" / "python"),
         "install", "--no-deps", "--no-index", str(wheel)],
        capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr[-3000:]
    return env_dir


def test_the_installed_package_serves_every_console_asset(installed_headrace: Path,
                                                          tmp_path: Path):
    python = str(installed_headrace / "bin" / "python")
    where = subprocess.run([python, "-c", "import ui; print(ui.STATIC_DIR)"],
                           capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert where.returncode == 0, where.stderr
    assert str(installed_headrace) in where.stdout, "the console came from the checkout"
    with live_server(tmp_path / "data", executable=[python, "-m", "api.cli"],
                     cwd=tmp_path) as server:
        root = httpx.get(server.url + "/", follow_redirects=False)
        assert root.status_code in (302, 307, 308) and root.headers["location"] == "/ui/"
        statuses = crawl(server.url)
    assert len(statuses) >= 3, statuses  # the page, its script and its style sheet
    assert {url: s for url, s in statuses.items() if s != 200} == {}


def test_console_routes_and_missing_assets(live):
    page = httpx.get(f"{live.url}/ui/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    deep_link = httpx.get(f"{live.url}/ui/models/some-model")
    assert deep_link.status_code == 200 and deep_link.text == page.text
    assert httpx.get(f"{live.url}/ui/no-such-file.js").status_code == 404
    assert httpx.get(f"{live.url}/ui/../pyproject.toml").status_code == 404


def test_ui_command_proxies_the_api(live, tmp_path: Path):
    with live_server(tmp_path, command="ui", args=["--api-url", live.url]) as console:
        assert httpx.get(f"{console.url}/ui/").status_code == 200
        direct = httpx.get(f"{live.url}/admin/models", headers=AUTH)
        proxied = httpx.get(f"{console.url}/admin/models", headers=AUTH)
        assert proxied.status_code == 200 and proxied.json() == direct.json()
        refused = httpx.get(f"{console.url}/admin/models")
        assert refused.status_code == 401 and refused.json()["error"]["type"]
        created = httpx.post(f"{console.url}/admin/prompts", headers=AUTH, json={
            "id": "console-proxy-prompt", "content": "Hi {{ name }}"})
        assert created.status_code == 201, created.text
        assert httpx.get(f"{live.url}/admin/prompts/console-proxy-prompt",
                         headers=AUTH).status_code == 200
        listed = httpx.get(f"{console.url}/v1/models", headers=AUTH)
        assert listed.status_code == 200 and listed.json()["object"] == "list"
        assert httpx.delete(f"{console.url}/admin/prompts/console-proxy-prompt",
                            headers=AUTH).status_code in (200, 204)


def test_ui_command_without_an_api(tmp_path: Path):
    with live_server(tmp_path / "a", command="ui", args=["--skip-proxy"]) as console:
        assert httpx.get(f"{console.url}/ui/").status_code == 200
        assert httpx.get(f"{console.url}/admin/models").status_code == 404
    with live_server(tmp_path / "b", command="ui",
                     args=["--api-url", "http://127.0.0.1:9"]) as console:
        gone = httpx.get(f"{console.url}/admin/models", headers=AUTH)
        assert gone.status_code == 502
        assert gone.json()["error"]["code"] == "upstream_unreachable"
    refused = subprocess.run([sys.executable, "-m", "api.cli", "ui"], capture_output=True,
                             text=True, timeout=60)
    assert refused.returncode != 0 and "--api-url" in refused.stderr

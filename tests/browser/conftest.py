"""JupyterLab + Chromium, driven by Playwright, as a user would drive them.

One JupyterLab server and one Chromium per session (starting them is the slow part). Kernels talk
to the fake OpenAI-compatible server (tests/fakeserver.py) running in this process on 127.0.0.1,
through ``LLMLAB_BASE_URL`` in the server's environment; its models stream slowly enough for the
streaming to be seen. Chromium is Debian's (``apt-get install chromium``, done by ``./dev``), never
a downloaded build. A failing test leaves a screenshot under ``browser-artifacts/`` (or
``$LLMLAB_BROWSER_ARTIFACTS``); the path is printed in the failure report.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from fakeserver import FakeServer, ModelSpec
from notebook_ui import EVIL_NAME, LONG_NAME, ROOT, STORY, XSS_IMG, XSS_SCRIPT, XSS_SVG

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(os.environ.get("LLMLAB_BROWSER_ARTIFACTS", ROOT / "browser-artifacts"))
def _models() -> dict[str, ModelSpec]:
    words = dict(token_delay_s=0.06, delay_s=0.2)
    return {
        "alpha": ModelSpec(text=STORY, reported_cost=0.0012, **words),
        "beta": ModelSpec(text=STORY.upper(), cost_header=0.0007, **words),
        "gamma": ModelSpec(text=STORY[::-1], **words),                    # unpriced: PriceWarning
        "quick": ModelSpec(text="A short answer.", delay_s=0.05),
        "slow": ModelSpec(text=" ".join([STORY] * 8), token_delay_s=0.12, delay_s=0.1),
        "xss-img": ModelSpec(text=XSS_IMG, chunk_words=2, token_delay_s=0.05),
        "xss-svg": ModelSpec(text=XSS_SVG, chunk_words=2, token_delay_s=0.05),
        "xss-script": ModelSpec(text=XSS_SCRIPT, chunk_words=2, token_delay_s=0.05),
        EVIL_NAME: ModelSpec(text="my name is markup", token_delay_s=0.05),
        LONG_NAME: ModelSpec(text="Long names wrap inside their column.", token_delay_s=0.05),
    }


@pytest.fixture(scope="session")
def fake():
    with FakeServer(_models()) as srv:
        yield srv


@pytest.fixture
def hold(fake):
    """``hold(model, at=k)``: the model's streams stop after k chunks until ``fake.release(model)``
    (``fake.wait_held(model, 1)`` says one is there), so "mid-stream" is a state the test is in,
    not a moment it hopes to catch. The session's specs come back at teardown."""
    held: list[str] = []

    def _hold(name: str, at: int) -> None:
        fake.set_model(name, dataclasses.replace(_models()[name], hold_after=0, hold_at=at))
        held.append(name)

    yield _hold
    for name in held:
        fake.set_model(name, _models()[name])  # also lets go of any request still held


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class JupyterLab:
    """A JupyterLab server in its own directories (settings, runtime, data, home)."""

    def __init__(self, base: Path, endpoint: str):
        self.dirs = {k: base / k for k in ("work", "home", "config", "data", "runtime", "settings", "ws")}
        for path in self.dirs.values():
            path.mkdir(parents=True, exist_ok=True)
        self.work = self.dirs["work"]
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = base / "jupyterlab.log"
        notification = self.dirs["settings"] / "@jupyterlab" / "apputils-extension"
        notification.mkdir(parents=True)
        (notification / "notification.jupyterlab-settings").write_text(
            json.dumps({"fetchNews": "false", "checkForUpdates": False}))
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("LLMLAB_", "OPENAI_", "JUPYTER"))},
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
            "LLMLAB_BASE_URL": endpoint, "LLMLAB_HOME": str(self.dirs["home"] / ".llmlab"),
            "HOME": str(self.dirs["home"]), "IPYTHONDIR": str(self.dirs["home"] / ".ipython"),
            "JUPYTER_CONFIG_DIR": str(self.dirs["config"]), "JUPYTER_DATA_DIR": str(self.dirs["data"]),
            "JUPYTER_RUNTIME_DIR": str(self.dirs["runtime"]),
            "JUPYTERLAB_SETTINGS_DIR": str(self.dirs["settings"]),
            "JUPYTERLAB_WORKSPACES_DIR": str(self.dirs["ws"]),
        }
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 90) -> JupyterLab:
        cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={self.port}", "--ip=127.0.0.1",
               "--ServerApp.token=", "--ServerApp.password=", "--ServerApp.allow_root=True",
               "--ServerApp.disable_check_xsrf=True", f"--ServerApp.root_dir={self.work}",
               "--LabApp.news_url=None", "--ServerApp.open_browser=False"]
        self.proc = subprocess.Popen(cmd, env=self.env, cwd=self.work, stdout=self.log.open("wb"),
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/status", timeout=2) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"JupyterLab did not start in {timeout} s: {self.log.read_text()[-2000:]}")

    def api(self, method: str, path: str):
        req = urllib.request.Request(f"{self.url}{path}", method=method)
        with urllib.request.urlopen(req, timeout=10) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> None:
        for session in self.api("GET", "/api/sessions") or []:
            self.api("DELETE", f"/api/sessions/{session['id']}")

    def trust(self, path: Path) -> None:
        subprocess.run([sys.executable, "-m", "jupyter", "trust", str(path)], env=self.env, check=True,
                       capture_output=True)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="session")
def jupyter(fake, tmp_path_factory):
    lab = JupyterLab(tmp_path_factory.mktemp("jupyterlab"), fake.base_url).start()
    yield lab
    lab.stop()


# Module scope, not session: Playwright's sync API keeps an event loop running in the main thread
# while it is open, and every later test that calls asyncio.run() (the engine's async twins) would
# fail with "cannot be called from a running event loop".
@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run ./dev setup (it runs apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        yield chromium
        chromium.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def page(browser, jupyter, request):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    pg.dialogs = []  # every alert()/confirm() the page tried: an XSS that ran
    pg.on("dialog", lambda d: d.accept() if d.type == "beforeunload"  # a reload with unsaved changes
          else (pg.dialogs.append(d.message), d.dismiss()))
    yield pg
    failed = any(getattr(request.node, f"rep_{w}", None) is not None and getattr(request.node, f"rep_{w}").failed
                 for w in ("setup", "call"))
    if failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / (re.sub(r"[^\w.-]+", "_", request.node.name) + ".png")
        try:
            pg.screenshot(path=str(shot), full_page=True)
            shutil.copy(jupyter.log, ARTIFACTS / "jupyterlab.log")
            print(f"\nbrowser artifacts: screenshot {shot}, server log {ARTIFACTS / 'jupyterlab.log'}")
        except Exception as exc:  # the screenshot must not hide the real failure
            print(f"\nbrowser artifacts: screenshot failed ({exc})")
    context.close()
    jupyter.shutdown_kernels()

"""Driving a JupyterLab notebook the way a user does: open it, click a cell's prompt, Shift+Enter."""
from __future__ import annotations

import re
import time
from pathlib import Path

import nbformat
from playwright.sync_api import Locator, Page, expect

IDLE = '.jp-Notebook-ExecutionIndicator[data-status="idle"]'
ROOT = Path(__file__).resolve().parents[2]
# What the fake models say, and names a model list must survive.
STORY = ("Once upon a time a small robot learned to count the stars over the quiet harbour, "
         "one by one, until the morning fog rolled in and the gulls began to sing again.")
LONG_NAME = "vendor-research-lab/an-extremely-long-model-name-without-spaces-2026-11-30-instruct-preview"
EVIL_NAME = "<img/src=x/onerror=alert('name')>"
XSS_IMG = "<img src=x onerror=\"window.__pwned='img';document.title='pwned'\">"
XSS_SVG = "<svg onload=\"window.__pwned='svg';document.title='pwned'\"><circle r=9></circle></svg>"
XSS_SCRIPT = "<script>window.__pwned='script';document.title='pwned'</script>"


def write_notebook(path: Path, cells: list[str]) -> Path:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


class Notebook:
    def __init__(self, page: Page, jupyter, name: str):
        self.page, self.jupyter, self.name = page, jupyter, name
        self.url = f"{jupyter.url}/lab/tree/{name}"

    def open(self, timeout: float = 90_000) -> Notebook:
        self.page.goto(f"{self.url}?reset")
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 90_000) -> None:
        """The notebook is shown and its kernel is connected and idle (keys sent before are lost)."""
        self.page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=timeout)
        deadline = time.monotonic() + timeout / 1000
        while time.monotonic() < deadline:
            kernels = [s["kernel"] for s in self.jupyter.api("GET", "/api/sessions") or []
                       if s.get("path", "").endswith(self.name)]
            if kernels and kernels[0].get("connections", 0) >= 1 and kernels[0]["execution_state"] == "idle":
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"no idle kernel connected to {self.name} after {timeout / 1000:.0f} s")
        self.page.wait_for_selector(IDLE, timeout=timeout)

    def cell(self, index: int) -> Locator:
        return self.page.locator(".jp-NotebookPanel .jp-Cell").nth(index)

    def output(self, index: int) -> Locator:
        return self.cell(index).locator(".jp-Cell-outputArea")

    def run(self, index: int, wait: bool = True, timeout: float = 60_000) -> float:
        """Run one cell; with ``wait``, until its prompt shows an execution count. Returns seconds."""
        began = time.monotonic()
        prompt = self.cell(index).locator(".jp-InputPrompt")
        self.cell(index).locator(".jp-InputPrompt").click()
        self.page.keyboard.press("Shift+Enter")
        expect(prompt).not_to_have_text("[ ]:", timeout=15_000)  # queued or running
        if wait:
            self.wait_done(index, timeout)
        return time.monotonic() - began

    def wait_done(self, index: int, timeout: float = 60_000) -> None:
        expect(self.cell(index).locator(".jp-InputPrompt")).to_have_text(re.compile(r"\[\d+\]"), timeout=timeout)
        self.page.wait_for_selector(IDLE, timeout=timeout)

    def text(self) -> str:
        return self.page.locator(".jp-NotebookPanel .jp-Notebook").inner_text()

"""Re-execute notebooks and store outputs that display well in any front end.

    .venv/bin/python notebooks/refresh.py                 # every notebook here
    .venv/bin/python notebooks/refresh.py 02_compare_widget.ipynb

Each notebook runs in a fresh kernel in this folder (as nbval runs it), with a throwaway
``LLMLAB_HOME``: the embedded endpoint is its own, never one another process owns and may stop
mid-run. Then:

* the saved widget state keeps exactly the widgets an output displays, and the widgets they
  reference, so JupyterLab restores them in a trusted notebook (closed, replaced or never shown
  widgets are dropped: they would only bloat the file);
* an output whose widget has no saved state keeps only its static fallbacks (``text/html``,
  ``text/plain``) instead of a reference that would render as "Error displaying widget".
"""
from __future__ import annotations

import os
import re
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
_REF = re.compile(r"IPY_MODEL_([0-9a-f]+)")


def _refs(value) -> set[str]:
    """Model ids a widget's state points at (children, layout, style, outputs…)."""
    if isinstance(value, str):
        return set(_REF.findall(value))
    if isinstance(value, dict):
        return set().union(*(_refs(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_refs(v) for v in value)) if value else set()
    return set()


def _displayed(nb) -> set[str]:
    return {out["data"][WIDGET_VIEW]["model_id"]
            for cell in nb.cells if cell.cell_type == "code"
            for out in cell.get("outputs", []) if WIDGET_VIEW in out.get("data", {})}


def prune_widgets(nb) -> tuple[int, int]:
    """Keep the state of displayed widgets (transitively); strip views that cannot be restored."""
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    keep, todo = set(), [m for m in _displayed(nb) if m in state]
    while todo:
        model = todo.pop()
        if model not in keep and model in state:
            keep.add(model)
            todo.extend(_refs(state[model]["state"]))
    stripped = 0
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            view = out.get("data", {}).get(WIDGET_VIEW)
            if view is not None and view["model_id"] not in keep:
                del out["data"][WIDGET_VIEW]
                stripped += 1
    if keep:
        nb.metadata["widgets"][WIDGET_STATE]["state"] = {m: state[m] for m in sorted(keep)}
    else:
        nb.metadata.pop("widgets", None)
    return len(keep), stripped


def refresh(path: Path) -> None:
    began = time.monotonic()
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=900, kernel_name="python3", store_widget_state=True,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    kept, stripped = prune_widgets(nb)
    nbformat.write(nb, path)
    print(f"{path.name}: {time.monotonic() - began:.0f} s, {kept} widget models kept, "
          f"{stripped} unrestorable widget views replaced by their static view")


def main(argv: list[str]) -> int:
    paths = [HERE / a for a in argv] if argv else sorted(HERE.glob("*.ipynb"))
    with tempfile.TemporaryDirectory(prefix="llmlab-refresh-") as home:
        os.environ["LLMLAB_HOME"] = home  # inherited by the kernels
        for path in paths:
            refresh(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Import-time benchmark: ``import llmlab`` and ``%load_ext llmlab`` in fresh interpreters.

Each measurement runs in a new subprocess (nothing cached in sys.modules), timed inside the
child with perf_counter around just the import / load_ext; the median of ``--runs`` is compared
with the target. It also checks that loading the extension does not import matplotlib or
ipywidgets (they load only when a chart or the widget is used).

    .venv/bin/python bench/bench_import.py [--runs 7] [--target 0.5]

Exit status 1 if a median is over the target or a heavy module was imported.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("matplotlib", "ipywidgets", "openai", "tqdm")

IMPORT_CHILD = """
import json, sys, time
t0 = time.perf_counter()
import llmlab
dt = time.perf_counter() - t0
print(json.dumps({"seconds": dt, "loaded": [m for m in %(heavy)r if m in sys.modules]}))
"""

LOAD_EXT_CHILD = """
import json, sys, time
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
t0 = time.perf_counter()
shell.run_line_magic("load_ext", "llmlab")
dt = time.perf_counter() - t0
assert "llm" in shell.magics_manager.magics["cell"], "the %%%%llm magic was not registered"
print(json.dumps({"seconds": dt, "loaded": [m for m in %(heavy)r if m in sys.modules]}))
"""

# The front end's own cost: %load_ext once the engine is already imported.
EXT_ONLY_CHILD = """
import json, sys, time
import llmlab
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
t0 = time.perf_counter()
shell.run_line_magic("load_ext", "llmlab")
dt = time.perf_counter() - t0
print(json.dumps({"seconds": dt, "loaded": [m for m in %(heavy)r if m in sys.modules]}))
"""

# What the engine's eager imports cost on this machine, for context.
MODULE_CHILD = """
import json, sys, time
t0 = time.perf_counter()
import %(module)s
print(json.dumps({"seconds": time.perf_counter() - t0, "loaded": []}))
"""


def measure(child: str, runs: int, module: str = "") -> tuple[list[float], set[str]]:
    times, loaded = [], set()
    code = child % {"heavy": HEAVY, "module": module}
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                             check=False)
        if out.returncode != 0:
            raise SystemExit(f"child failed:\n{out.stderr}")
        data = json.loads(out.stdout.strip().splitlines()[-1])
        times.append(data["seconds"])
        loaded.update(data["loaded"])
    return times, loaded


def report(name: str, times: list[float], loaded: set[str], target: float, forbidden: tuple) -> bool:
    median = statistics.median(times)
    bad = sorted(m for m in loaded if m in forbidden)
    ok = median <= target and not bad
    spread = f"min {min(times):.3f} s, max {max(times):.3f} s"
    print(f"{name:<22} median {median:.3f} s ({spread}, n={len(times)})  target ≤ {target:.2f} s  "
          f"{'PASS' if median <= target else 'FAIL'}")
    print(f"{'':<22} heavy modules loaded: {', '.join(sorted(loaded)) or 'none'}"
          f"{'  FAIL: ' + ', '.join(bad) + ' must load lazily' if bad else '  OK'}")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--target", type=float, default=0.5, help="seconds (median)")
    args = parser.parse_args(argv)
    print(f"python {sys.version.split()[0]} · {sys.executable}")
    ok = report("import llmlab", *measure(IMPORT_CHILD, args.runs), args.target,
                forbidden=("matplotlib", "ipywidgets"))
    ok &= report("%load_ext llmlab", *measure(LOAD_EXT_CHILD, args.runs), args.target,
                 forbidden=("matplotlib", "ipywidgets"))
    # Context only (not pass/fail): where the time goes.
    report("  of which: ext only", *measure(EXT_ONLY_CHILD, args.runs), args.target, forbidden=())
    for module in ("pandas", "openai"):
        times, _ = measure(MODULE_CHILD, args.runs, module)
        print(f"{'  import ' + module:<22} median {statistics.median(times):.3f} s  (engine dependency)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

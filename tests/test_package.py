"""The package as a whole: style and types checked, typed for users' checkers, one exception
tree, one validation module, the README's quick command as documented."""
from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

import llmlab

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "llmlab"
BUILTIN_ERRORS = {"ValueError", "TypeError", "KeyError", "RuntimeError", "IndexError", "Exception", "LookupError"}


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_ruff_is_clean():
    out = _run("ruff", "check", "llmlab", "tests", "bench")
    assert out.returncode == 0, out.stdout + out.stderr


def _mypy_cache() -> Path:
    """mypy's incremental cache in the account's real ~/.cache/llmlab (as the model files): the
    clone's own .mypy_cache is empty in every fresh clone (CI), and $HOME is a per-test scratch
    folder. Warm, the check takes seconds instead of 15 s idle (70 s loaded); mypy re-checks every
    module whose source, dependencies or options changed, so the verdict is a cold run's."""
    import pwd

    return Path(pwd.getpwuid(os.getuid()).pw_dir) / ".cache" / "llmlab" / "mypy"


def test_mypy_is_clean():
    out = _run("mypy", "--cache-dir", str(_mypy_cache()))  # packages and settings from [tool.mypy]
    assert out.returncode == 0, out.stdout + out.stderr


def test_import_contracts_hold():
    """The layers of docs/architecture.md, the independence of the two front ends and no import
    cycles at any depth: the contracts in [tool.importlinter] (pyproject.toml)."""
    out = subprocess.run([str(Path(sys.executable).with_name("lint-imports")), "--no-cache"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout


def test_the_architecture_map_names_real_modules():
    """Every path docs/architecture.md names exists, and every module of the package is on its map."""
    import re

    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    named = set(re.findall(r"llmlab/[\w/]+(?:\.py|\.json)|llmlab/\w+/", doc))
    assert named, "the map names no modules"
    missing = sorted(p for p in named if not (ROOT / p).exists())
    assert missing == []
    modules = {p.relative_to(ROOT).as_posix() for p in PACKAGE.rglob("*.py")
               if p.name != "__init__.py" and "local" not in p.parts and "datasets" not in p.parts}
    unmapped = sorted(m for m in modules if m not in named)
    assert unmapped == []
    layers = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert {f"llmlab/{layer}/" for layer in layers} <= named


def test_ruff_and_mypy_are_declared_test_dependencies():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    test_extra = " ".join(project["project"]["optional-dependencies"]["test"])
    assert "ruff" in test_extra and "mypy" in test_extra and "import-linter" in test_extra
    assert "py.typed" in project["tool"]["setuptools"]["package-data"]["llmlab"]
    assert (PACKAGE / "py.typed").is_file()


def _raises(path: Path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and isinstance(node.exc.func, ast.Name):
            yield node.exc.func.id, node.lineno


def test_every_deliberate_error_is_an_llmlab_error():
    offenders = [f"{path.relative_to(ROOT)}:{line} raises {name}"
                 for path in PACKAGE.rglob("*.py")
                 for name, line in _raises(path) if name in BUILTIN_ERRORS]
    assert offenders == []


def test_scoring_charts_and_datasets_raise_input_errors():
    import pandas as pd

    from llmlab import charts, datasets, scoring

    for call in (lambda: datasets.load("nope"), lambda: scoring.choice([]), lambda: scoring.from_spec(42),
                 lambda: charts.latency(pd.DataFrame({"requested_model": ["a"]}))):
        with pytest.raises(llmlab.InputError):
            call()


def test_public_names_are_visible_to_static_checkers():
    """``llmlab.Lab`` is imported under TYPE_CHECKING for every lazily loaded public name, so
    mypy/pyright see the real class instead of Any."""
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    guarded = set()
    for node in ast.walk(tree):
        test = node.test if isinstance(node, ast.If) else None
        if test is not None and "TYPE_CHECKING" in (getattr(test, "id", None), getattr(test, "attr", None)):
            guarded |= {alias.name for sub in node.body if isinstance(sub, ast.ImportFrom) for alias in sub.names}
    assert set(llmlab._LAZY) <= guarded


def test_public_classes_report_the_public_module():
    for name in ("Lab", "Result", "Event", "Timeouts", "RetryPolicy", "Price", "PriceTable", "PriceWarning",
                 "LLMLabError", "ConfigError", "InputError", "StoreError", "EndpointError", "LocalServerError"):
        assert getattr(llmlab, name).__module__ == "llmlab", name
    assert repr(llmlab.InputError("x")) == "InputError('x')"


def test_one_validation_module():
    """Key-variable names, URLs and one-line messages have one home (llmlab.base._validate)."""
    duplicates = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "_validate.py":
            continue
        text = path.read_text(encoding="utf-8")
        for marker in ("def _one_line(exc", "_ENV_NAME", "_KEY_PREFIXES", "https?://", "_CANCEL_GRACE_S",
                       "def _looks_like_env_name", "def check_env_name", "_RESERVED"):
            if marker in text:
                duplicates.append(f"{path.name}: {marker}")
    assert duplicates == []


def _dev_function(name: str) -> str:
    """One shell function of ./dev, as text bash can run."""
    dev = (ROOT / "dev").read_text()
    function = dev[dev.index(f"{name}() {{"):]
    return function[:function.index("\n}\n") + 3]


def _dev_would_collect(*args: str) -> list[str]:
    """The pytest arguments ``./dev test ARGS`` ends with (its argument logic, run by bash)."""
    script = _dev_function("has_paths") + 'has_paths "$@" || set -- "$@" tests notebooks\nprintf "%s\\n" "$@"\n'
    out = subprocess.run(["bash", "-c", script, "dev", *args], cwd=ROOT, capture_output=True, text=True, check=True)
    return out.stdout.splitlines()


def test_the_readme_quick_command_skips_notebooks_and_local_models():
    """``./dev test -m "not slow" tests``: explicit paths replace the default ``tests notebooks``."""
    assert _dev_would_collect("-m", "not slow", "tests") == ["-m", "not slow", "tests"]
    assert _dev_would_collect("tests/test_api.py::test_mypy") == ["tests/test_api.py::test_mypy"]
    assert _dev_would_collect("-m", "not slow") == ["-m", "not slow", "tests", "notebooks"]
    assert _dev_would_collect() == ["tests", "notebooks"]
    dev = (ROOT / "dev").read_text()
    assert 'has_paths "$@" || set -- "$@" tests notebooks' in dev  # the line the helper above mirrors
    readme = (ROOT / "README.md").read_text()
    assert './dev test -m "not slow" tests' in readme
    assert 'pip install "llmlab[local]"' not in readme  # llmlab is not on the package index


def test_dev_says_the_set_up_is_still_running_while_pip_compiles():
    """./dev's heartbeat (the pip step is minutes without a word): a line per interval while the
    set-up runs, and it stops by itself once the process it watches is gone."""
    script = _dev_function("heartbeat") + 'heartbeat 0.2 $$ & beat=$!; sleep 1.5; kill $beat\n'
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30, check=True)
    lines = out.stderr.splitlines()
    # at most one line per 0.2 s in 1.5 s; at least one however loaded the machine (how many
    # 0.2 s sleeps fit in 1.5 s is the load's business)
    assert 1 <= len(lines) <= 8 and all(line.startswith("llmlab: still setting up (0 min ") for line in lines)
    gone = subprocess.run(["bash", "-c", _dev_function("heartbeat") + "heartbeat 0.1 2147483646\n"],
                          capture_output=True, text=True, timeout=30, check=True)
    assert gone.stderr == ""


def test_dev_stress_runs_the_suite_n_times_beside_two_busy_loops_and_stops_them(tmp_path):
    """./dev stress: the test command N times in a clean clone of HEAD while two CPU loops run,
    each run's time and result said, non-zero if any run failed, the loops and the clone gone
    afterwards."""
    log, busy, where = tmp_path / "runs.log", tmp_path / "busy.log", tmp_path / "where.log"
    fake_python = tmp_path / "python"  # a busy loop that only sleeps; a pytest whose 2nd run fails
    fake_python.write_text(f'#!/bin/bash\nif [ "$1" = -c ]; then echo $$ >> {busy}; exec sleep 300; fi\n'
                           f'echo "$PWD $PYTHONPATH" >> {where}\n'
                           f'echo "$*" >> {log}\n[ "$(wc -l < {log})" != 2 ]\n')
    fake_python.chmod(0o755)
    script = f"PY={fake_python}\nBUSY=() CLONE=\n" + _dev_function("has_paths") + _dev_function("stress") + \
        'stress 3 -m "not slow" tests\n'
    out = subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "TMPDIR": str(tmp_path)})
    assert out.returncode == 1, out.stderr
    assert log.read_text().splitlines() == ["-m pytest --nbval -p no:cacheprovider -m not slow tests"] * 3
    (clone,) = {line.split()[0] for line in where.read_text().splitlines()}
    assert where.read_text().splitlines() == [f"{clone} {clone}"] * 3  # the clone's llmlab is imported
    assert clone.startswith(str(tmp_path / "llmlab-stress.")) and not Path(clone).exists()  # removed after
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    assert f"a clean clone of {head.stdout.strip()} in" in out.stderr
    said = [line for line in out.stderr.splitlines() if line.startswith("llmlab stress: run ")]
    assert [re.sub(r"\d+ s", "N s", line) for line in said[:3]] == [
        "llmlab stress: run 1/3: N s, passed", "llmlab stress: run 2/3: N s, FAILED (exit 1)",
        "llmlab stress: run 3/3: N s, passed"]
    assert said[3:] == said[:3]  # the summary at the end
    pids = [int(p) for p in busy.read_text().split()]
    assert len(pids) == 2

    def sleeping(pid: int) -> bool:
        try:
            return "sleep" in Path(f"/proc/{pid}/cmdline").read_text()
        except OSError:
            return False

    deadline = time.monotonic() + 30
    while any(sleeping(p) for p in pids):
        assert time.monotonic() < deadline, "the busy loops outlived ./dev stress"
        time.sleep(0.05)
    assert 'BUSY=() CLONE=' in (ROOT / "dev").read_text()  # the globals the function above relies on


def test_every_third_party_import_is_declared():
    """What llmlab imports itself is declared in pyproject (not only pulled in by another package)."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = " ".join([*project["dependencies"], *sum(project["optional-dependencies"].values(), [])]).lower()
    # import name -> distribution name where they differ
    dist = {"IPython": "ipython", "sklearn": "scikit-learn", "llama_cpp": "llama-cpp-python"}
    stdlib = set(sys.stdlib_module_names)
    imported = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = {name for name in imported if name not in stdlib and name != "llmlab"}
    missing = sorted(n for n in third_party if dist.get(n, n).lower().replace("_", "-") not in declared)
    assert missing == []

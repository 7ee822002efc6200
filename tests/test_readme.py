"""The README tells the truth a newcomer can check, and cannot drift from the code unnoticed.

Every fenced block of README.md is handled here, by its first line (``HANDLING``; a Python block
not listed there is run): Python blocks run in one session, in README order, against the fake
server standing in for the endpoints they name; the notebook cells run in IPython; the ``Lab``
signature blocks (README and docs/architecture.md) are compared with ``inspect.signature``; the
development tree with the folders; the commands are parsed by the real CLI parser or found in
./dev; the demo's file list is compared with what the demo writes. Blocks that need what a test
machine lacks (a PostgreSQL server at a named host, root) are listed in ``ONLINE`` with the reason
and reported as skipped (pytest -ra prints the reasons), never left out silently. Stated facts are
checked too: the quick subset's test count (rounded, within 50), what ./dev installs, the notebook
list, every path, every `--option` against the parser of the program it is written with, every
`.[extra]` against pyproject.toml, every `LLMLAB_*` variable against the code, the migration list
against MIGRATIONS, and the numbers stated next to a named default or size against the code.
"""
from __future__ import annotations

import ast
import inspect
import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from fakeserver import FakeServer, ModelSpec
from standins import EmbeddedStandIn

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
ARCHITECTURE = ROOT / "docs" / "architecture.md"

# How a block is handled, by the start of its first line. Python blocks not listed are run.
HANDLING = {
    "./dev demo": "dev",                                    # ./dev builds a venv: checked, not run
    "lab = Lab(base_url=None,": "signature",
    "from llmlab import Lab, Result": "signature",          # docs/architecture.md's engine API
    "sudo -u postgres createuser": "online",
    'lab = Lab(db="postgresql://alice@': "online",
    'CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install': "commands",
    "llmlab batch submit": "commands",
    "from llmlab import Lab, local": "local",               # real local models: the slow tier
    "llmlab/      the package": "tree",
    "%": "ipython",
}
ONLINE = {
    "sudo -u postgres createuser": "needs root and a PostgreSQL server to create a role on",
    'lab = Lab(db="postgresql://alice@': "needs the PostgreSQL server db.example.internal",
}


@dataclass(frozen=True)
class Block:
    path: Path
    line: int          # of the opening fence
    lang: str
    text: str

    @property
    def first(self) -> str:
        return next((line for line in self.text.splitlines() if line.strip()), "")

    @property
    def handling(self) -> str | None:
        for start, how in HANDLING.items():
            if self.first.startswith(start):
                return how
        return "run" if self.lang == "python" else None

    def __str__(self) -> str:
        return f"{self.path.name}:{self.line} ({self.lang or 'plain'}: {self.first[:50]!r})"


def fenced_blocks(path: Path) -> list[Block]:
    blocks, lines = [], path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        if lines[i].startswith("```"):
            start, lang = i, lines[i][3:].strip()
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            blocks.append(Block(path, start + 1, lang, "\n".join(lines[start + 1:end]) + "\n"))
            i = end
        i += 1
    return blocks


def readme_blocks(only: str = "") -> list[Block]:
    """README's blocks, or only those handled as ``only``."""
    return [b for b in fenced_blocks(README) if not only or b.handling == only]


def readme_text() -> str:
    return README.read_text(encoding="utf-8")


# --------------------------------------------------------------------------- every block is handled

def test_every_block_is_handled_and_the_online_ones_are_named():
    blocks = readme_blocks() + [b for b in fenced_blocks(ARCHITECTURE) if b.handling == "signature"]
    unhandled = [str(b) for b in blocks if b.handling is None]
    assert unhandled == [], ("a README block nobody checks; add its first line to HANDLING in "
                             f"tests/test_readme.py: {unhandled}")
    online = {b.first for b in blocks if b.handling == "online"}
    assert {o for o in online for start in ONLINE if o.startswith(start)} == online
    assert len(online) == len(ONLINE), "an ONLINE entry matches no README block any more"
    counts = {how: sum(b.handling == how for b in blocks) for how in dict.fromkeys(HANDLING.values())}
    counts["run"] = sum(b.handling == "run" for b in blocks)
    assert counts["run"] >= 3 and counts["ipython"] >= 4 and counts["signature"] == 2, counts


@pytest.mark.parametrize("start", sorted(ONLINE))
def test_blocks_that_need_a_network_endpoint_are_reported_not_run(start):
    [block] = [b for b in readme_blocks("online") if b.first.startswith(start)]
    pytest.skip(f"{block}: not run here — {ONLINE[start]}")


# --------------------------------------------------------------------------- the Python blocks run

def _fake_models() -> dict[str, ModelSpec]:
    """Every model the README's Python blocks ask for, answering like their real counterparts
    would: the strong local model knows the labelled answers, the weak ones some or none."""
    from llmlab import datasets

    prompts = datasets.generate(n=96, seed=0)
    right = dict(zip(prompts["prompt"], prompts["expected"], strict=True))
    some = {p: e for (p, e), task in zip(right.items(), prompts["task"], strict=True)
            if task in ("arithmetic", "yes_no")}
    hosted = {m: ModelSpec(text="SYN, SYN-ACK, ACK: the client and the server agree on sequence numbers.")
              for m in ("claude-sonnet-4-6", "gpt-5", "claude-haiku-4-5")}
    # as the pairwise judge, gpt-5 reads the two (identical) answers it is shown and calls a tie
    hosted["gpt-5"].replies = [[r"\[The Start of Assistant B's Answer\]", "The two answers are the same. [[C]]"]]
    return {**hosted, "qwen2.5-coder-0.5b": ModelSpec(text="42", answers_by_prompt=right),
            "smollm2-135m": ModelSpec(text="I do not know.", answers_by_prompt=some),
            "gemma-3-270m": ModelSpec(text="The answer is")}


def test_the_python_blocks_run_in_order_against_the_fake_server(monkeypatch, isolated_env):
    """One session, as a reader pasting the blocks in turn: the quick start's gateway URL is the
    fake server's, and ``Lab()`` finds it through LLMLAB_BASE_URL (as it would the user's)."""
    namespace: dict = {}
    labs = []   # every Lab the blocks made, closed at the end
    results = []  # the `res` each block left (the quick start's is checked after later blocks rebind it)
    with FakeServer(_fake_models()) as srv:
        monkeypatch.setenv("LLMLAB_BASE_URL", srv.base_url)
        monkeypatch.setenv("LITELLM_KEY", "sk-readme-test-key-0123456789")
        try:
            for block in readme_blocks("run"):
                code = block.text.replace("http://localhost:4000/v1", srv.base_url)
                try:
                    exec(compile(code, str(block), "exec"), namespace)
                except Exception as exc:
                    pytest.fail(f"{block} raised {type(exc).__name__}: {exc}")
                labs.append(namespace.get("lab"))
                results.append(namespace.get("res"))
            _check_what_the_quick_start_says(namespace, results[0], isolated_env)
            _check_what_routing_says(namespace)
        finally:
            for lab in {id(lab): lab for lab in labs if lab is not None}.values():
                lab.close()


def _check_what_the_quick_start_says(ns: dict, res, home: Path) -> None:
    models = ["claude-sonnet-4-6", "gpt-5", "claude-haiku-4-5"]
    # A Result's rows are in job order (the models as asked); the log's are in the order the calls
    # finished, which concurrency leaves open — so the log is compared as a multiset.
    assert list(res.df["requested_model"]) == models
    runs = ns["lab"].runs()
    first = runs[runs["run_id"] == res.run_id]
    assert sorted(first["requested_model"]) == sorted(models)
    assert set(first["status"]) == {"ok"} and set(first["api_key_env"]) == {"LITELLM_KEY"}
    # "res.df: one row per attempt: ttft_s, latency_s, tokens, cost_usd, response_text"
    assert {"ttft_s", "latency_s", "prompt_tokens", "completion_tokens", "cost_usd", "response_text"} <= set(runs)
    assert (first["cost_usd"] > 0).all()   # priced from the bundled sheet
    # "the whole persistent log (SQLite ~/.llmlab/runs.sqlite …)": here $LLMLAB_HOME
    assert Path(ns["lab"].store.path) == home / "runs.sqlite"


def _check_what_routing_says(ns: dict) -> None:
    assert len(ns["prompts"]) == 96 and set(ns["prompts"]["task"]) == {"arithmetic", "extract", "classify", "yes_no"}
    assert len(ns["policies"]) == 6 and len(ns["report"].table) >= 6
    routed, length = ns["res"].df, ns["length"]
    assert set(routed["policy"]) == {length.name}
    # The README's example reason has the form of a real one and names a model the policy can pick.
    example = re.search(r'# e\.g\. "(length \d+ [<≥] [\d.]+ → (\S+))"', readme_text())
    assert example is not None and example.group(2) in (length.weak, length.strong)
    assert re.fullmatch(r"length \d+ [<≥] [\d.]+ → \S+", routed["route_reason"].iloc[0])
    assert "def pick_model(prompt, task=None)" in ns["length"].to_code()
    assert ns["same"].name == ns["length"].name


@pytest.mark.slow
def test_the_local_endpoint_block_runs_on_the_bundled_models():
    """``local.start()`` on the real models (the slow tier): the block as written."""
    [block] = readme_blocks("local")
    namespace: dict = {}
    exec(compile(block.text, str(block), "exec"), namespace)
    lab = namespace["lab"]
    try:
        assert lab.base_url.startswith("http://127.0.0.1:") and not namespace["server"].running  # stopped by with
    finally:
        lab.close()


# --------------------------------------------------------------------------- the notebook cells run

def _fresh_shell():
    from IPython.core.interactiveshell import InteractiveShell

    from llmlab.magics import unload_ipython_extension

    shell = InteractiveShell.instance()
    unload_ipython_extension(shell)
    shell.extension_manager.loaded.discard("llmlab")
    shell.config.pop("LLMLab", None)
    return shell


def test_the_notebook_cells_run_in_ipython(monkeypatch, capsys):
    """The ``%load_ext`` / ``%%llm`` cells, in README order, in a real IPython shell whose
    endpoint (LLMLAB_BASE_URL) is the fake server serving the models they name."""
    blocks = readme_blocks("ipython")
    with FakeServer({"smollm2-135m": ModelSpec(text="A three-way handshake."),
                     "gemma-3-270m": ModelSpec(text="SYN, SYN-ACK, ACK.")}) as srv:
        monkeypatch.setenv("LLMLAB_BASE_URL", srv.base_url)
        shell = _fresh_shell()
        try:
            for block in blocks:
                shell.user_ns.pop("res", None)
                result = shell.run_cell(block.text)
                assert result.success, f"{block}: {result.error_before_exec or result.error_in_exec}"
                if block.first.startswith("%%llm"):
                    df = shell.user_ns["res"].df
                    assert list(df["status"]) == ["ok", "ok"] and list(df["requested_model"]) == \
                        ["smollm2-135m", "gemma-3-270m"], block
            asked = [r.body["messages"][-1]["content"] for r in srv.requests if r.path.endswith("/completions")]
            assert "Explain the TCP handshake in one paragraph." in asked            # {{topic}}
            assert "Summarise RFC 793 (Transmission Control Protocol) for students." in asked
        finally:
            _fresh_shell()
    capsys.readouterr()


# --------------------------------------------------------------------------- signatures

_CALL = re.compile(r"\b(Lab|lab\.(?:compare|sweep|complete|runs|export))\(")


def _calls(text: str) -> list[tuple[str, str]]:
    """(callee, the text between its parentheses) for each documented signature."""
    found = []
    for match in _CALL.finditer(text):
        depth, i = 1, match.end()
        while depth:
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            i += 1
        found.append((match.group(1), text[match.end():i - 1]))
    return found


def _documented_defaults(args: str) -> dict[str, str]:
    return dict(re.findall(r"(?<![\w.])(\w+)=([^,()\[\]{}]+|\[[^\]]*\])", args))


@pytest.mark.parametrize("path", [README, ARCHITECTURE], ids=lambda p: p.name)
def test_the_signature_blocks_match_the_code(path):
    """Each ``name=default`` shown for Lab and its entry points is the real default; the Lab line
    (shown without "…") lists every parameter."""
    from llmlab import Lab

    [block] = [b for b in fenced_blocks(path) if b.handling == "signature"]
    calls = _calls(block.text)
    assert {c for c, _ in calls} >= {"Lab", "lab.compare", "lab.sweep", "lab.complete", "lab.runs", "lab.export"}
    for callee, args in calls:
        target = Lab.__init__ if callee == "Lab" else getattr(Lab, callee.split(".")[1])
        real = {n: p for n, p in inspect.signature(target).parameters.items() if n != "self"}
        shown = _documented_defaults(args)
        wrong = {n: v for n, v in shown.items() if n not in real or not _same_default(v, real[n])}
        assert wrong == {}, f"{block}: {callee} shows {wrong}; the code has " + \
            ", ".join(f"{n}={real[n].default!r}" for n in wrong if n in real)
        if callee == "Lab":
            assert set(shown) == set(real), f"{block}: Lab() lists {sorted(set(shown) ^ set(real))} wrongly"


def _same_default(shown: str, param: inspect.Parameter) -> bool:
    shown = shown.strip()
    if shown.startswith("[") or "…" in shown or shown.startswith("<"):
        return True            # a placeholder ("models=[...]"), not a default
    if param.default is inspect.Parameter.empty:
        return False
    try:
        return ast.literal_eval(shown) == param.default
    except (ValueError, SyntaxError):
        return False


# --------------------------------------------------------------------------- stated facts

def test_the_development_tree_lists_every_folder_and_face():
    """Each folder and file the tree names exists (top-level lines: the repository; indented ones:
    inside llmlab/), and every layer and face of llmlab/ is in it."""
    [block] = readme_blocks("tree")
    named: set[str] = set()
    for line in block.text.splitlines():
        top = not line.startswith(" ")
        folder = ROOT / line.split()[0] if top else ROOT / "llmlab"
        names = re.findall(r"(?<![\w./])(\w+/)(?=\s|$)", line) + re.findall(r"(?<![\w./])(\w+\.(?:py|md))\b", line)
        for name in names:
            where = ROOT / name if top and name == line.split()[0] else folder / name
            assert where.exists(), f"{block}: {line.strip()[:40]!r} names {where.relative_to(ROOT)}, which is not there"
            named |= set() if top else {name}
    layers = {p.name + "/" for p in (ROOT / "llmlab").iterdir() if (p / "__init__.py").is_file()}
    faces = {p.name for p in (ROOT / "llmlab").glob("*.py") if p.name != "__init__.py"}
    assert (layers | faces) - named == set(), "missing from the README's development tree"


_PATH = re.compile(r"(?:`|\]\()((?:llmlab|tests|notebooks|bench|docs)/[\w./-]*\w)")


@pytest.mark.parametrize("path", [README, ARCHITECTURE], ids=lambda p: p.name)
def test_every_path_and_module_named_exists(path):
    """After the reorganisation into layers: each repository path and ``llmlab.x.y`` name is real."""
    import importlib

    text = path.read_text(encoding="utf-8")
    missing = sorted({p for p in _PATH.findall(text) if not (ROOT / p).exists()
                      and not (ROOT / "llmlab" / p).exists()})
    assert missing == [], f"{path.name} names paths that do not exist: {missing}"
    for dotted in sorted(set(re.findall(r"`(llmlab(?:\.\w+)+)`", text))):
        parts = dotted.split(".")
        for cut in range(len(parts), 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:cut]))
            except ImportError:
                continue
            for attr in parts[cut:]:
                obj = getattr(obj, attr, None)
            assert obj is not None, f"{path.name} names {dotted}, which does not exist"
            break


def test_the_notebook_list_is_every_notebook():
    listed = re.findall(r"\[(\d\d_\w+)\]\(notebooks/\1\.ipynb\)", readme_text())
    assert sorted(set(listed)) == sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))


def test_what_dev_sets_up_is_what_the_readme_says():
    """Every extra (./dev's EXTRAS is all of pyproject's), the apt packages, and the message when
    apt cannot run — quoted in the README as ./dev prints it."""
    dev = (ROOT / "dev").read_text()
    extras = re.search(r"^EXTRAS=([\w,]+)", dev, re.M).group(1)
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert sorted(extras.split(",")) == sorted(declared)
    readme = " ".join(readme_text().split())
    assert f"`.[{extras}]`" in readme
    apt = set(re.findall(r"apt-get install -y -q (\w+)", dev))
    assert apt == {"postgresql", "chromium"} and all(f"`{pkg}`" in readme for pkg in apt)
    template = re.search(r'not_installed\(\) \{.*?\n\s*echo "llmlab: (.*?)" >&2', dev, re.S).group(1)
    needs = re.search(r'not_installed postgresql "(.*?)"', dev).group(1)
    quoted = template.replace("$1", "postgresql").replace("$2", needs)
    assert f"`llmlab: {quoted}`" in readme and "needs root" in readme


def test_the_dev_commands_named_exist():
    dev = (ROOT / "dev").read_text()
    cases = set(re.findall(r"^\s*(\w+)\)\s", dev, re.M))
    named = set(re.findall(r"(?:^|`)\./dev (\w+)", readme_text(), re.M))
    assert {"demo", "test"} <= named <= cases, named - cases
    top = readme_text().split("\n## ")[0]
    assert "./dev demo" in top and "./dev test" in top    # the two set-up commands stay at the top


def _cli_options(command: str) -> set[str]:
    """The options of ``command`` ('' for llmlab itself, 'demo', 'batch submit')."""
    from llmlab.cli._main import _parser, _subparsers

    chosen = _parser()
    for word in command.split():
        chosen = _subparsers(chosen)[word]
    return {o for action in chosen._actions for o in action.option_strings}


def _command_path(words: list[str]) -> str:
    """The (sub)command ``llmlab <words>`` runs: 'demo', 'batch submit', or '' for llmlab itself."""
    from llmlab.cli._main import _parser, _subparsers

    path, parser = [], _parser()
    for word in words:
        commands = _subparsers(parser)
        if word in commands:
            path.append(word)
            parser = commands[word]
    return " ".join(path)


def test_every_llmlab_command_named_parses():
    """``llmlab …`` commands in the README: concrete ones parse with the real parser; a usage line
    (``[--port N]``) names only options the command has."""
    from llmlab.cli._main import _parse

    commands = re.findall(r"`(llmlab (?:serve|demo|export|batch|--\w+)[^`]*)`", readme_text())
    for block in readme_blocks("commands"):
        commands += [line.split("#")[0].strip() for line in block.text.splitlines() if line.startswith("llmlab ")]
    assert len(commands) >= 4, commands
    for command in commands:
        words = command.split()[1:]
        if "[" in command or words == ["--version"]:
            options = set(re.findall(r"--[\w-]+", command))
            known = _cli_options(_command_path(words))
            assert options <= known, f"{command!r}: {options - known}"
        else:
            _parse(words)


def test_the_demo_writes_the_files_the_readme_lists(tmp_path, monkeypatch, capsys):
    """``llmlab demo`` (the test server standing in for the embedded endpoint) writes exactly the
    files of the README's list into the default folder, and says how many it wrote."""
    import fnmatch

    import llmlab.local
    from llmlab.cli import main
    from llmlab.cli._main import _parser, _subparsers

    line = next(line for b in readme_blocks("commands") for line in b.text.splitlines()
                if line.startswith("llmlab demo"))
    folder, listed = re.search(r"\./([\w-]+)/\{([^}]*)\}", line).groups()
    assert _subparsers(_parser())["demo"].get_default("out") == folder

    with FakeServer({m: ModelSpec(text="42") for m in ("smollm2-135m", "gemma-3-270m", "qwen2.5-coder-0.5b")}) as srv:
        monkeypatch.setattr(llmlab.local, "start", lambda **kw: EmbeddedStandIn(srv))
        monkeypatch.chdir(tmp_path)
        assert main(["demo", "--n-prompts", "2", "--decision-prompts", "40"]) == 0
    written = sorted(p.name for p in (tmp_path / folder).iterdir())
    patterns = listed.split(",")
    assert all(any(fnmatch.fnmatch(name, pat) for pat in patterns) for name in written), (written, patterns)
    assert all(any(fnmatch.fnmatch(name, pat) for name in written) for pat in patterns), (written, patterns)
    printed = re.search(r"wrote \d+ files to .*?\)", capsys.readouterr().out).group(0)
    quoted = re.search(r"`(wrote \d+ files to [^`]*\))`", " ".join(readme_text().split())).group(1)
    assert printed == quoted, (printed, quoted)
    assert printed.startswith(f"wrote {len(written)} files to {folder}/ (")


def test_the_demo_size_stated_in_its_help_and_the_readme_is_the_real_one():
    from llmlab.cli._demo import DECISION_PROMPTS, DEMO_PROMPTS
    from llmlab.cli._main import _DEMO_DESCRIPTION, _parser, _subparsers
    from llmlab.local import bundled_models

    n, models = len(DEMO_PROMPTS), len(bundled_models())
    limit = _subparsers(_parser())["demo"].get_default("max_tokens")
    assert f"the {n} demo prompts on each bundled model ({n * models} calls)" in _DEMO_DESCRIPTION
    assert f"default {DECISION_PROMPTS}: {DECISION_PROMPTS * models} calls" in _DEMO_DESCRIPTION
    assert "dozen" not in _DEMO_DESCRIPTION
    readme = " ".join(readme_text().split())
    assert f"runs the {n} demo prompts on each bundled model ({n * models} calls, `max_tokens={limit}`)" in readme
    assert f"then {DECISION_PROMPTS} generated labelled prompts on each ({DECISION_PROMPTS * models} calls" in readme


def test_the_quick_subset_count_is_what_pytest_collects_rounded(quick_subset_count):
    """The Development section states the quick subset's size as the count rounded to the nearest
    hundred, says so, and names the command that gives today's exact count: a figure that stays
    true while tests are added (until the count crosses into another hundred) and is never more
    than 50 off — an exact count would be wrong after the next landing."""
    text = " ".join(readme_text().split())
    found = re.search(r"about ([\d,]+) tests \(the count rounded to the nearest hundred; `([^`]+)` gives today's", text)
    assert found is not None, "the Development section no longer states the quick subset's size as a rounded count"
    stated, command = int(found.group(1).replace(",", "")), found.group(2)
    assert command == 'pytest --collect-only -q -m "not slow" tests'
    collected = quick_subset_count if quick_subset_count is not None else _collect_the_quick_subset()
    assert abs(collected - stated) <= 50, (f"README says about {stated} (nearest hundred), pytest collects "
                                           f"{collected}: say about {round(collected, -2):,}")


def _collect_the_quick_subset() -> int:
    """The count the README's command prints, for a session that did not collect all of tests/."""
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", "not slow", "tests",
                          "-p", "no:cacheprovider"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    return int(re.search(r"(\d+)(?:/\d+)? tests? collected", out.stdout).group(1))


# --------------------------------------------------------------------------- options, extras, variables

_OPTION_RE = re.compile(r"(?<![\w-])--[A-Za-z][\w-]*")


def _spans() -> list[tuple[int, str]]:
    """(offset in the README, text) of every backtick span in the prose and every line of every
    fenced block: the places a command (and its options) is written."""
    text, spans = readme_text(), []
    for block in readme_blocks():
        start = text.index(block.text)
        spans += [(start + m.start(), m.group(0)) for m in re.finditer(r"[^\n]+", block.text)]
    fenced = re.compile(r"^```.*?^```", re.S | re.M)
    prose = fenced.sub(lambda m: " " * len(m.group(0)), text)
    spans += [(m.start(1), m.group(1)) for m in re.finditer(r"`([^`\n]+)`", prose)]
    return sorted(spans)


def _llmlab_command_before(offset: int) -> str:
    """The llmlab subcommand the README last named before ``offset`` (a bare `--option` in prose
    belongs to it)."""
    named = re.findall(r"`llmlab ((?:serve|demo|export|batch)[\w ]*)", readme_text()[:offset])
    assert named, f"an option at README offset {offset} names no llmlab command before it"
    return _command_path(named[-1].split())


# Programs other than llmlab whose options the README quotes, checked with their own --help.
_OTHER_PROGRAMS = {"createuser": ["createuser"], "createdb": ["createdb"],
                   "pytest": [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"]}


def _owner(span: str, offset: int) -> tuple[str, str]:
    """Which program an option in ``span`` belongs to: ("llmlab", subcommand), ("script", path)
    for a bench script, or (program, "") for one of _OTHER_PROGRAMS."""
    words = span.replace("sudo -u postgres ", "").split()
    if words[0] == "llmlab":
        return "llmlab", _command_path(words[1:])
    script = next((w for w in words if re.fullmatch(r"(?:bench/)?bench_\w+\.py", w)), None)
    if script is not None:
        return "script", script if script.startswith("bench/") else f"bench/{script}"
    program = next((p for p in _OTHER_PROGRAMS if p in words), None)
    if program is not None:
        return program, ""
    assert words[0].startswith("--"), f"README: {span!r}: an option of a program this test does not know"
    return "llmlab", _llmlab_command_before(offset)


def test_every_option_the_readme_names_is_an_option_of_its_program():
    """Every `--option` in the README — in a command, a usage line or prose — is an option of the
    program it is written with (a bare one in prose: of the llmlab command named before it), and
    one the README calls an error is refused by that parser."""
    from llmlab.cli._main import _parse

    text, checked, helps = readme_text(), 0, {}
    for offset, span in _spans():
        for option in _OPTION_RE.findall(span):
            program, detail = _owner(span, offset)
            checked += 1
            if program == "script":
                assert re.search(rf"[\"']{option}[\"']", (ROOT / detail).read_text()), f"{detail} has no {option}"
            elif program == "llmlab":
                after = " ".join(text[offset + len(span):offset + len(span) + 40].split())
                if after.startswith("` is an error"):
                    with pytest.raises(SystemExit):
                        _parse([detail, option, "1"])
                    continue
                assert option in _cli_options(detail), f"README: `{span}`: llmlab {detail} has no {option}"
            else:
                if shutil.which(_OTHER_PROGRAMS[program][0]) is None:
                    pytest.skip(f"{program} is not installed here, so {option} cannot be checked")
                helps.setdefault(program, subprocess.run(_OTHER_PROGRAMS[program] + ["--help"], capture_output=True,
                                                         text=True, timeout=120).stdout)
                assert re.search(rf"{option}\b", helps[program]), f"README: `{span}`: {program} has no {option}"
    assert checked >= 10, checked


def test_every_extra_the_readme_names_is_declared():
    """`.[a,b]` and `llmlab[a]` in install lines name only extras pyproject.toml declares."""
    declared = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    named = re.findall(r"(?:\.|llmlab)\[([\w,\s-]+)\]", readme_text())
    assert len(named) >= 4, named
    unknown = {e.strip() for group in named for e in group.split(",")} - declared
    assert unknown == set(), f"README names extras pyproject.toml does not declare: {sorted(unknown)}"


def test_the_install_line_names_the_extras_the_examples_need():
    """The README's "to use it" install covers what its Python examples use: the routing block's
    learned router and verifier need scikit-learn (the `learn` extra), and say so when it is
    missing."""
    install = re.search(r'pip install -e "\.\[([\w,]+)\]"` to use it', readme_text())
    assert install is not None
    extras = set(install.group(1).split(","))
    code = "\n".join(b.text for b in readme_blocks("run"))
    needs = {"learn": ("routing.Learned(", "routing.Verifier(", "routing.recommend("), "local": ("local.start(",),
             "notebook": ("%%llm", "CompareWidget")}
    used = {extra for extra, names in needs.items() if any(n in code or n in readme_text() for n in names)}
    assert used <= extras, f"the README's examples need {sorted(used - extras)} too"
    from llmlab.routing._learned import _INSTALL_SKLEARN

    assert "learn" in _INSTALL_SKLEARN   # what a missing scikit-learn says names the same extra


def test_every_llmlab_variable_named_exists():
    """Each `LLMLAB_*` variable the README names is read somewhere (the package, ./dev, the tests)."""
    named = set(re.findall(r"\bLLMLAB_[A-Z_]+[A-Z]\b", readme_text()))
    sources = [p for d in ("llmlab", "tests") for p in (ROOT / d).rglob("*.py")] + [ROOT / "dev"]
    code = "\n".join(p.read_text(encoding="utf-8") for p in sources if p.name != "test_readme.py")
    missing = {v for v in named if not re.search(rf"[\"']{v}[\"']", code)}
    assert len(named) >= 8 and missing == set(), f"README names variables no code reads: {sorted(missing)}"


def test_the_migration_list_is_migrations():
    """The README's list of the log's migrations is MIGRATIONS, in order."""
    from llmlab.store._schema import MIGRATIONS

    listed = re.search(r"made by ordered named migrations \(([^)]*)\)", " ".join(readme_text().split()))
    assert listed is not None
    assert re.findall(r"`(m\d{3}_\w+)`", listed.group(1)) == [m.__name__ for m in MIGRATIONS]


# --------------------------------------------------------------------------- numbers stated next to a name

_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
          "ten": 10, "a quarter": 0.25, "half": 0.5}


def _number(text: str) -> float:
    text = text.strip()
    return _WORDS[text] if text in _WORDS else float(text.replace(",", ""))


def _env_default(monkeypatch, name: str, read):
    monkeypatch.delenv(name, raising=False)
    return read()


def _backoff_range():
    """(smallest, largest) first backoff over many seeds: base·(1 ± jitter)."""
    from llmlab.engine._resilience import RetryPolicy

    waits = [RetryPolicy(seed=seed).backoff(0) for seed in range(400)]
    return min(waits), max(waits)


def _defaults(monkeypatch, tmp_path) -> dict[str, list]:
    """What the code's defaults are, by the README phrase that states them (its numbers in order)."""
    import pwd

    from llmlab.base._config import default_db, llmlab_home
    from llmlab.engine._resilience import RetryPolicy, _Adaptive
    from llmlab.local._models import model_cache_dir
    from llmlab.local._server import HEARTBEAT_S, n_threads
    from llmlab.store._base import BUSY_TIMEOUT_S
    from llmlab.store._postgres import _POOL_SIZE

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)   # no project ./.env choosing the log
    monkeypatch.delenv("LLMLAB_DB", raising=False)
    home = _env_default(monkeypatch, "LLMLAB_HOME", llmlab_home)
    real_home = Path(pwd.getpwuid(os.getuid()).pw_dir)
    lo, hi = _backoff_range()
    policy = RetryPolicy()
    return {
        r"`LLMLAB_LOCAL_THREADS` \(default (\d+)": [_env_default(monkeypatch, "LLMLAB_LOCAL_THREADS", n_threads)],
        r"`\$LLMLAB_HOME/runs\.sqlite` \(default `~/([^`]+)`\)":
            [str(home.relative_to(tmp_path))] if default_db()[0] == home / "runs.sqlite" else ["not the default"],
        r"`LLMLAB_MODEL_CACHE` \(where [^;]*; default `([^`]+)` in the account's home directory":
            [str(_env_default(monkeypatch, "LLMLAB_MODEL_CACHE", model_cache_dir).relative_to(real_home))],
        r"backoff \(([\d.]+)·2ⁿ s ±(\d+) %, capped at ([\d.]+) s\)":
            [policy.base_s, round((hi - lo) / (hi + lo) * 100), policy.cap_s],
        r"retries=None: RetryPolicy\(\)'s (\d+) extra attempts": [policy.retries],
        r"A hint is honoured up to (\d+) s": [policy.retry_after_cap_s],
        r"A 429 shrinks that budget to (\d+) % \(once per burst\) and it grows back by (a quarter) of the limit per "
        r"minute": [_Adaptive._CUT * 100, _Adaptive._RECOVERY],
        r"a (\d+) s busy timeout": [BUSY_TIMEOUT_S],
        r"from a pool of (\d+) connections": [_POOL_SIZE],
        r"with a line every (\d+) s while the models load": [HEARTBEAT_S],
    }


def _sizes() -> dict[str, list]:
    """Limits and the data sets' sizes, by the README phrase that states them."""
    from llmlab import datasets
    from llmlab.base._redact import MIN_RUN
    from llmlab.datasets._graded import MAX_PER_CELL
    from llmlab.engine._options import MAX_TOKENS_LIMIT
    from llmlab.engine._results import EAGER_ROWS, SUMMARY_INPUTS
    from llmlab.local import bundled_models
    from llmlab.routing._stats import EXACT_BOOTSTRAP_MAX_PROMPTS

    tasks, graded, gsm8k = datasets.load("tasks"), datasets.load("graded"), datasets.load("routellm-gsm8k")
    accuracy = gsm8k.groupby("requested_model")["score"].mean().round(3)
    return {
        r"`max_tokens` 1–([\d,]+)": [MAX_TOKENS_LIMIT],
        r"a run of up to ([\d,]+) rows is loaded at once": [EAGER_ROWS],
        r"read only the (\d+) columns a summary needs": [len(SUMMARY_INPUTS)],
        r"any run of (\d+) of its characters in any case": [MIN_RUN],
        r"Above ([\d,]+) prompts the resampled sums": [EXACT_BOOTSTRAP_MAX_PROMPTS],
        r'`datasets\.load\("tasks"\)` \((\d+) hand-written prompts, (\w+) tasks\)':
            [len(tasks), tasks["task"].nunique()],
        r'`datasets\.load\("graded"\)` = `datasets\.generate\(n=(\d+), seed=0\)`':
            [len(graded)] if graded.equals(datasets.generate(n=len(graded), seed=0)) else ["not generate()"],
        r"up to (\d+) prompts per \(task, level\)": [MAX_PER_CELL],
        r"RouteLLM's GSM8K matrix — ([\d,]+) prompts answered by Mixtral-8x7B-Instruct \(accuracy ([\d.]+)\) and "
        r"GPT-4-1106 \(([\d.]+)\)": [gsm8k["prompt_id"].nunique(), accuracy["mistralai/Mixtral-8x7B-Instruct-v0.1"],
                                      accuracy["gpt-4-1106-preview"]],
        r"llama\.cpp serving (\w+) real small models": [len(bundled_models())],
        r"llama-cpp-python's server in a subprocess — with (\w+) small models": [len(bundled_models())],
    }


def test_the_numbers_stated_next_to_a_name_are_the_codes(monkeypatch, tmp_path):
    """Defaults and sizes the README states in prose (an environment variable's default, the
    backoff, the retry count, limits, the data sets' sizes) are read from the code: each phrase
    must be in the README, with the code's numbers."""
    text = " ".join(readme_text().split())
    wrong = {}
    for phrase, truth in {**_defaults(monkeypatch, tmp_path), **_sizes()}.items():
        found = re.search(phrase, text)
        assert found is not None, f"the README no longer says {phrase!r} (update the phrase here with the text)"
        stated = [g for g in found.groups() if g is not None]
        as_numbers = [_number(g) if not isinstance(t, str) else g for g, t in zip(stated, truth, strict=True)]
        if as_numbers != [float(t) if not isinstance(t, str) else t for t in truth]:
            wrong[found.group(0)] = truth
    assert wrong == {}, f"the README states numbers the code does not have (the code's values): {wrong}"

"""``llmlab demo``: a small sweep on the embedded endpoint, end to end through the engine.

Starts its own local endpoint (stopped at the end), runs the 12 demo prompts of different task
types on every bundled model, then (``decision_prompts``, default 64) that many generated labelled
prompts on each for "who should answer what", and writes ``summary.csv``, ``runs.csv``, the log
``runs.sqlite``, chart PNGs and a self-contained ``report.html`` into the output folder.
"""
from __future__ import annotations

import io
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..base._display import esc
from ..base._errors import InputError
from ..base._files import private_dir, write_private
from ..base._validate import check_int, did_you_mean

__all__ = ["DEMO_CHECKERS", "DEMO_PROMPTS", "DemoOutput", "demo_prompts", "demo_sections", "run_demo", "score_answers"]

# (prompt_id, task, prompt, expected) — expected is a reference answer where one exists.
DEMO_PROMPTS = (
    ("classify-sentiment", "classify",
     "Is this review positive or negative? Answer with one word.\nReview: The battery died after two days.",
     "negative"),
    ("classify-topic", "classify",
     "Which topic fits this headline best: sports, politics or technology? Answer with one word.\n"
     "Headline: New chip doubles phone battery life.", "technology"),
    ("extract-city", "extract",
     "Extract the city name from this sentence. Answer with the city only.\n"
     "Sentence: Our office moved to Lyon in 2021.", "Lyon"),
    ("extract-date", "extract",
     "What date is mentioned in this text? Answer with the date only.\n"
     "Text: The invoice is due on 12 March 2025.", "12 March 2025"),
    ("arith-add", "arithmetic", "What is 17 + 25? Answer with the number only.", "42"),
    ("arith-mul", "arithmetic", "What is 12 * 7? Answer with the number only.", "84"),
    ("summarise-meeting", "summarise",
     "Summarise in one sentence: The weekly meeting moved from Monday to Wednesday because the "
     "client is travelling, and the agenda now includes the budget review.", None),
    ("summarise-email", "summarise",
     "Summarise in one short sentence: Hi team, the server upgrade finished overnight. Everything "
     "is running, but please report slow pages to IT by Friday.", None),
    ("code-square", "code", "Write a Python function that returns the square of a number.", None),
    ("code-reverse", "code", "Write a Python one-liner that reverses a string s.", None),
    ("creative-haiku", "creative", "Write a haiku about rain.", None),
    ("creative-name", "creative", "Suggest a name for a friendly robot.", None),
)
# How each answer with an expected value is checked (llmlab.scoring specs, by prompt_id).
DEMO_CHECKERS = {
    "classify-sentiment": {"kind": "choice", "labels": ["positive", "negative"]},
    "classify-topic": {"kind": "choice", "labels": ["sports", "politics", "technology"]},
    "extract-city": {"kind": "contains"},
    "extract-date": {"kind": "contains"},
    "arith-add": {"kind": "numeric"},
    "arith-mul": {"kind": "numeric"},
}
# Charts that say nothing when every call cost $0 (the report prices the tokens what-if instead).
_COST_CHARTS = ("cost", "cost_vs_latency")


@dataclass
class DemoOutput:
    out_dir: Path
    summary: Any  # pandas DataFrame
    runs: Any     # pandas DataFrame
    files: list[Path] = field(default_factory=list)
    skipped_charts: list[str] = field(default_factory=list)
    recommendation: Any = None   # routing.Recommendation of the "who should answer what" section
    covers: str = ""             # what each file holds (the CSVs: the demo run; runs.sqlite: every call)


@dataclass
class _Plan:
    """The demo's arguments, every one checked before the endpoint starts."""
    out: Path
    models: list[str]
    prompts: Any                 # the demo prompts (DataFrame)
    max_tokens: int
    decision: Any = None         # the labelled prompts for "who should answer what", or None
    skipped: str = ""            # why there is no decision section


@dataclass
class _Sweep:
    run_id: str
    calls: int
    seconds: float


def demo_prompts(n_prompts: int | None = None):
    """The demo prompts as a DataFrame (``prompt_id, task, prompt, expected``)."""
    import pandas as pd

    rows: tuple[tuple[str, str, str, str | None], ...] = DEMO_PROMPTS
    if n_prompts is not None:
        rows = rows[:check_int("--n-prompts", n_prompts, 1, len(DEMO_PROMPTS))]
    return pd.DataFrame(rows, columns=["prompt_id", "task", "prompt", "expected"])


def _check_models(models, bundled: list[str]) -> list[str]:
    if models is not None and not list(models):
        raise InputError(f"--models names no model; give some of {', '.join(bundled)} (comma-separated), or leave "
                         "it out for all")
    chosen = list(models) if models else bundled
    unknown = [m for m in chosen if m not in bundled]
    if unknown:
        raise InputError(f"unknown demo model(s) {', '.join(unknown)}.{did_you_mean(unknown[0], bundled)} "
                         f"Bundled models: {', '.join(bundled)}")
    return chosen


def _out_folder(out_dir: str | os.PathLike) -> Path:
    """The output folder, made (owner-only) and writable — or an InputError naming --out."""
    path = Path(out_dir).expanduser()
    if path.exists() and not path.is_dir():
        raise InputError(f"--out {path} is a file, not a folder; give a folder (made if missing)")
    try:
        out = private_dir(path)  # prompts, answers and the log: owner-only
    except OSError as exc:
        raise InputError(f"--out {path}: cannot make that folder ({exc.strerror or exc}); give another") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise InputError(f"--out {path}: that folder is not writable; give another")
    return out


DECISION_PROMPTS = 64   # labelled prompts for "who should answer what" (half of them judge the policies)


def _plan(out_dir, models, n_prompts, max_tokens, decision_prompts) -> _Plan:
    from .. import datasets
    from ..datasets._graded import LEVELS, MAX_PER_CELL, TASKS
    from ..engine._options import check_max_tokens
    from ..local import bundled_models

    chosen = _check_models(models, [m.alias for m in bundled_models()])
    prompts = demo_prompts(n_prompts)
    limit = check_max_tokens("--max-tokens", max_tokens)
    n = check_int("--decision-prompts", decision_prompts, 0, MAX_PER_CELL * len(TASKS) * len(LEVELS))
    plan = _Plan(_out_folder(out_dir), chosen, prompts, limit)
    if n == 0:
        plan.skipped = "not run (--decision-prompts 0)"
    elif len(chosen) < 2:
        plan.skipped = f"not run: it compares two or more models, and --models gave one ({chosen[0]})"
    else:
        plan.decision = datasets.generate(n=n, seed=0)
    return plan


def plural(n: int, word: str) -> str:
    """``1 prompt``, ``12 prompts``."""
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def run_demo(out_dir: str | os.PathLike = "llmlab-demo", models=None, n_prompts: int | None = None,
             max_tokens: int = 64, progress: bool = True, log=print,
             decision_prompts: int = DECISION_PROMPTS) -> DemoOutput:
    """Run the demo sweep on a private local endpoint and write the report files; then, with
    ``decision_prompts`` > 0 and two or more models, record that many generated labelled prompts
    and end the report with "who should answer what" (``llmlab.cli._demo_decision``). Every
    argument is checked before the endpoint starts."""
    from ..engine._lab import Lab
    from ..local import start

    plan = _plan(out_dir, models, n_prompts, max_tokens, decision_prompts)
    # Not quiet: the first start joins 741 MB of model files and every start loads the models; each
    # step says so (with a line every 15 s while loading) instead of one line for the whole wait.
    with start(models=plan.models, quiet=not progress) as server:
        log(f"llmlab demo: {server.base_url} — {plural(len(plan.prompts), 'prompt')} × "
            f"{plural(len(plan.models), 'model')}, max_tokens={plan.max_tokens}")
        # api_key_env="": the embedded endpoint needs no key, so none of the user's is sent.
        with Lab(base_url=server.base_url, api_key_env="", db=plan.out / "runs.sqlite", quiet=True) as lab:
            began = time.monotonic()
            # One call at a time: the server serialises anyway, and queueing would inflate latency.
            res = lab.sweep(plan.prompts, models=plan.models, max_tokens=plan.max_tokens, temperature=0,
                            progress=progress, concurrency=1, cache=False)
            sweeps = [_Sweep(res.run_id, len(res), time.monotonic() - began)]
            decision = _decision(lab, plan, log, progress, sweeps)
            logged = lab.store.count()
    return _write_outputs(plan.out, res, plan.models, server.base_url, sweeps, logged, decision)


def _decision(lab, plan: _Plan, log, progress: bool, sweeps: list[_Sweep]) -> tuple:
    """The "who should answer what" section: (title, body, Recommendation or None)."""
    if plan.decision is None:
        log(f"llmlab demo: who should answer what — {plan.skipped}")
        return "Who should answer what", f"<p>{esc(plan.skipped)}.</p>", None
    from ._demo_decision import decision_runs, decision_section

    calls = len(plan.decision) * len(plan.models)
    log(f"llmlab demo: who should answer what — {plural(len(plan.decision), 'labelled prompt')} × "
        f"{plural(len(plan.models), 'model')} = {plural(calls, 'call')}, max_tokens=16…")
    began = time.monotonic()
    runs = decision_runs(lab, plan.models, plan.decision, progress=progress)
    sweeps.append(_Sweep(str(runs["run_id"].iloc[0]), len(runs), time.monotonic() - began))
    return decision_section(runs, plan.models)


def score_answers(runs, checkers=DEMO_CHECKERS):
    """``runs`` with ``score``/``score_reason`` (llmlab.scoring) where a checker and an expected
    answer exist; NaN elsewhere (summaries, haiku: nothing to check)."""
    from ..analysis import _scoring as scoring

    out = runs.copy()
    out["score"], out["score_reason"] = float("nan"), None
    mask = runs["prompt_id"].isin(list(checkers)) & runs["expected"].notna()
    if mask.any():
        scored = scoring.auto(runs[mask], checkers=dict(checkers))
        out.loc[mask, "score"] = scored["score"]
        out.loc[mask, "score_reason"] = scored["score_reason"]
    return out


def demo_sections(summary, runs, charts: dict[str, bytes]) -> list:
    """The report's sections, in order; more (e.g. routing) are appended to this list."""
    from ..analysis._report import standard_sections

    return standard_sections(summary, runs, charts)


def _write_outputs(out: Path, res, models: list[str], base_url: str, sweeps: list[_Sweep], logged: int,
                   decision: tuple) -> DemoOutput:
    summary, runs = res.summary(), score_answers(res.df)
    result = DemoOutput(out, summary, runs, covers=covers(sweeps, logged))
    for name, frame in (("summary.csv", summary), ("runs.csv", runs)):
        result.files.append(write_private(out / name, frame.to_csv(index=False)))
    charts = _render_charts(runs, result)
    for name, png in charts.items():
        result.files.append(write_private(out / f"{name}.png", png))
    from ..analysis._report import Section, write_report

    sections = demo_sections(summary, runs, charts)
    title, body, result.recommendation = decision
    sections.append(Section(title, body, anchor="decision"))
    result.files.append(write_report(out / "report.html", sections, _meta(base_url, models, sweeps, result.covers)))
    result.files.insert(2, out / "runs.sqlite")  # the Lab's own log of every call, written as they finished
    return result


def covers(sweeps: list[_Sweep], logged: int) -> str:
    """What each file holds: the CSVs, charts and summary only the demo sweep; the log every call."""
    demo, *decision = sweeps
    runs = f"{plural(demo.calls, 'demo call')} (run {demo.run_id})"
    if decision:
        runs += f" and the {plural(decision[0].calls, 'decision call')} (run {decision[0].run_id})"
    earlier = logged - sum(s.calls for s in sweeps)
    before = f", and {plural(earlier, 'row')} of earlier runs in this folder" if earlier > 0 else ""
    return (f"summary.csv, runs.csv, the charts and the summary cover the {plural(demo.calls, 'demo call')} "
            f"(run {demo.run_id}); runs.sqlite holds every call: {plural(logged, 'row')} — the {runs}{before}")


def _render_charts(runs, result: DemoOutput) -> dict[str, bytes]:
    try:
        from ..analysis import _charts as charts
    except ImportError as exc:  # matplotlib is an optional extra
        result.skipped_charts = [f"all ({exc})"]
        return {}
    from ..analysis._report import all_free

    free = all_free(runs)  # all $0: the report shows what-if prices instead of empty cost charts
    images = {}
    for name, draw in charts.CHARTS.items():
        if free and name in _COST_CHARTS:
            continue
        try:
            fig = draw(runs)
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
            images[name] = buf.getvalue()
        except Exception as exc:  # one broken chart must not lose the measured data
            result.skipped_charts.append(f"{name} ({type(exc).__name__}: {exc})")
    return images


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _meta(base_url: str, models: list[str], sweeps: list[_Sweep], files: str) -> dict:
    from ..base._version import __version__
    from ..local import bundled_models

    notes = {m.alias: m.description for m in bundled_models()}
    times = {"demo sweep": sweeps[0]} | ({"decision sweep": sweeps[1]} if len(sweeps) > 1 else {})
    return {
        "generated": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "llmlab": __version__,
        "endpoint": f"{base_url} (embedded llama-cpp-python server, stopped after the run)",
        "machine": f"{_cpu_model()}, {os.cpu_count()} logical CPUs, Python {sys.version.split()[0]}",
        **{f"{name} wall time": f"{s.seconds:.1f} s for {plural(s.calls, 'call')}, sent one at a time (run {s.run_id})"
           for name, s in times.items()},
        "files": files,
        "models": "; ".join(f"{m}: {notes.get(m, '')}" for m in models),
    }

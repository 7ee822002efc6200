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

from ..base._errors import InputError
from ..base._files import private_dir, write_private
from ..base._validate import did_you_mean

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


def demo_prompts(n_prompts: int | None = None):
    """The demo prompts as a DataFrame (``prompt_id, task, prompt, expected``)."""
    import pandas as pd

    rows: tuple[tuple[str, str, str, str | None], ...] = DEMO_PROMPTS
    if n_prompts is not None:
        if n_prompts < 1:
            raise InputError(f"--n-prompts must be at least 1, got {n_prompts}")
        rows = rows[:n_prompts]
    return pd.DataFrame(rows, columns=["prompt_id", "task", "prompt", "expected"])


def _check_models(models, bundled: list[str]) -> list[str]:
    chosen = list(models) if models else bundled
    unknown = [m for m in chosen if m not in bundled]
    if unknown:
        raise InputError(f"unknown demo model(s) {', '.join(unknown)}.{did_you_mean(unknown[0], bundled)} "
                         f"Bundled models: {', '.join(bundled)}")
    return chosen


DECISION_PROMPTS = 64   # labelled prompts for "who should answer what" (half of them judge the policies)


def run_demo(out_dir: str | os.PathLike = "llmlab-demo", models=None, n_prompts: int | None = None,
             max_tokens: int = 64, progress: bool = True, log=print,
             decision_prompts: int = DECISION_PROMPTS) -> DemoOutput:
    """Run the demo sweep on a private local endpoint and write the report files; then, with
    ``decision_prompts`` > 0, record that many generated labelled prompts and end the report with
    "who should answer what" (``llmlab.cli._demo_decision``)."""
    from ..engine._lab import Lab
    from ..local import bundled_models, start

    chosen = _check_models(models, [m.alias for m in bundled_models()])
    prompts = demo_prompts(n_prompts)
    out = private_dir(out_dir)  # prompts, answers and the log: owner-only
    # Not quiet: the first start joins 741 MB of model files and every start loads the models; each
    # step says so (with a line every 15 s while loading) instead of one line for the whole wait.
    with start(models=chosen, quiet=not progress) as server:
        log(f"llmlab demo: {server.base_url} — {len(prompts)} prompts × {len(chosen)} models, "
            f"max_tokens={max_tokens}")
        began = time.monotonic()
        # api_key_env="": the embedded endpoint needs no key, so none of the user's is sent.
        with Lab(base_url=server.base_url, api_key_env="", db=out / "runs.sqlite", quiet=True) as lab:
            # One call at a time: the server serialises anyway, and queueing would inflate latency.
            res = lab.sweep(prompts, models=chosen, max_tokens=max_tokens, temperature=0,
                            progress=progress, concurrency=1, cache=False)
            elapsed = time.monotonic() - began
            decision = _decision(lab, chosen, decision_prompts, log, progress)
    return _write_outputs(out, res, chosen, server.base_url, elapsed, decision)


def _decision(lab, models: list[str], n: int, log, progress: bool) -> tuple | None:
    """The "who should answer what" section (None when skipped or impossible)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise InputError(f"--decision-prompts must be a whole number ≥ 0, got {n!r}")
    if n == 0 or len(models) < 2:
        return None
    from ._demo_decision import decision_runs, decision_section

    log(f"llmlab demo: who should answer what — {n} labelled prompts × {len(models)} models = "
        f"{n * len(models)} calls, max_tokens=16…")
    return decision_section(decision_runs(lab, models, n, progress=progress), models)


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


def _write_outputs(out: Path, res, models: list[str], base_url: str, elapsed: float,
                   decision: tuple | None = None) -> DemoOutput:
    summary, runs = res.summary(), score_answers(res.df)
    result = DemoOutput(out, summary, runs)
    for name, frame in (("summary.csv", summary), ("runs.csv", runs)):
        result.files.append(write_private(out / name, frame.to_csv(index=False)))
    charts = _render_charts(runs, result)
    for name, png in charts.items():
        result.files.append(write_private(out / f"{name}.png", png))
    from ..analysis._report import write_report

    meta = _meta(base_url, models, elapsed)
    sections = demo_sections(summary, runs, charts)
    if decision is not None:
        from ..analysis._report import Section

        title, body, rec = decision
        sections.append(Section(title, body, anchor="decision"))
        result.recommendation = rec
    result.files.append(write_report(out / "report.html", sections, meta))
    result.files.insert(2, out / "runs.sqlite")  # the Lab's own log of every call, written as they finished
    return result


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


def _meta(base_url: str, models: list[str], elapsed: float) -> dict:
    from ..base._version import __version__
    from ..local import bundled_models

    notes = {m.alias: m.description for m in bundled_models()}
    return {
        "generated": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "llmlab": __version__,
        "endpoint": f"{base_url} (embedded llama-cpp-python server, stopped after the run)",
        "machine": f"{_cpu_model()}, {os.cpu_count()} logical CPUs, Python {sys.version.split()[0]}",
        "sweep wall time": f"{elapsed:.1f} s (calls sent one at a time)",
        "models": "; ".join(f"{m}: {notes.get(m, '')}" for m in models),
    }

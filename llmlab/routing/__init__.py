"""Routing-policy analysis: which model should answer which prompt — decided with evidence.

Record a prompt × model matrix once (``lab.sweep(prompts, models=[...])``), score it
(:mod:`llmlab.scoring`), then simulate policies on the recorded rows, tune their knobs on one half
of the prompts and test the claim on the other::

    from llmlab import routing, scoring
    runs = scoring.auto(lab.runs(run_id=res.run_id), checkers=tasks)
    tune_runs, test_runs = routing.split(runs, test_size=0.5, seed=0, by="task")   # or groups="task"
    length = routing.tune(routing.Threshold("prompt_chars", 0, weak="haiku", strong="opus"), tune_runs)
    report = routing.evaluate(test_runs, [
        routing.TaskMap({"classify": "haiku", "code": "sonnet"}, default="opus"),
        routing.Cascade(["haiku", "opus"], accept=scoring.json_valid()),
        length, routing.Random(0.5, weak="haiku", strong="opus"), routing.Oracle(),
    ])
    report.table; report.routellm; report.plot()
    report.claim(min_savings_pct=40, max_quality_loss=0.02)

Definitions (see :mod:`llmlab.routing._matrix` for the details):

* **Sample** — the prompts answered by every model in the runs (or ``models=``), whatever the
  policies; ``report.dropped_by_model`` counts what each model lacked.
* **Reference** — what savings and quality differences compare with: by default the model with
  the best mean quality (ties: the cheaper one).
* **Billed** — each cell is the final attempt of the latest request; by default earlier failed
  attempts of that request add their known cost and their wait and duration (``count_retries``).
* **Split** — ``split`` draws prompts at random (numbers hold for new prompts of the recorded
  tasks) or, with ``groups=``, holds whole groups out (numbers hold for unseen tasks); every
  caption says which. ``tune(..., confidence=0.95)`` keeps the upper bound of the tune half's
  loss within the limit, so the promise survives new prompts more often.
* **Savings** — on cost; when some cost is unknown (no answers or token counts, no price), on
  the share of strong-model calls avoided, labelled and warned about.
* **Under the averages** — ``report.by_task()``, ``report.auc``, ``report.calibration(policy)``
  and ``check_data(runs, chance=...)`` (tasks below a declared chance rate or scored all 0 / 1).
* **Uncertainty** — 95% paired percentile-bootstrap intervals over prompts (every policy and the
  reference see the same resample): how much the numbers would move on another prompt set like
  yours, not the models' run-to-run noise (record ``n`` repeats for that).

Layer: routing is pure analysis of recorded runs plus each policy's live decision (``decide``),
which :meth:`llmlab.Lab.route` calls. It may import ``analysis`` (scorers as accept checks,
charts) and ``base``; never the engine, the store or a front end.
"""
from __future__ import annotations

from ._diagnostics import check_data
from ._evaluate import evaluate
from ._learned import Learned
from ._matrix import Matrix
from ._policies import Always, Cascade, Decision, Fallback, Oracle, Policy, Random, TaskMap, Threshold, on_row
from ._preferences import preference_quality
from ._recommend import Recommendation, recommend
from ._report import PolicyReport
from ._saved import load_policy
from ._split import Split, fit_task_map, split, tune
from ._verifier import SelfConsistency, Verifier

__all__ = ["Policy", "Always", "TaskMap", "Fallback", "Cascade", "Threshold", "Random", "Oracle", "Learned",
           "Verifier", "SelfConsistency", "on_row", "evaluate", "PolicyReport", "Matrix", "split", "Split", "tune",
           "fit_task_map", "recommend", "Recommendation", "load_policy", "Decision", "preference_quality",
           "check_data"]

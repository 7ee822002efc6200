"""Review r22 B2, B5, B6: routing on preferences reads the evidence of the pairs it uses.

Every screen (an uninformative judge, the lazy-tie guard) is computed on the reference's pairs only,
per source and compared model — never pooled with pairs the quality is not read from (B2) or with
another source's verdicts (B6); a frame that records no reference (lab.labels(), also after a CSV
round-trip) needs reference= (B5). An honest judge still certifies."""
from __future__ import annotations

import io
import warnings

import numpy as np
import pandas as pd
import pytest

from llmlab import InputError, routing
from llmlab.analysis._pairwise import combine_games
from llmlab.engine._lab import _labels_frame

N = 200
COSTS = {"weak": 1e-5, "mid": 1e-4, "strong": 1e-3}


def _runs(models=("weak", "mid", "strong"), n=N):
    return pd.DataFrame([{"id": len(models) * k + j + 1, "prompt_id": f"q{k:03d}", "prompt": f"topic {k}",
                          "task": "chat", "requested_model": m, "status": "ok", "response_text": f"{m} says {k}",
                          "repeat": 0, "attempt": 1, "request_id": f"r{k}{m}", "cost_usd": COSTS[m], "latency_s": 0.5}
                         for k in range(n) for j, m in enumerate(models)])


def _judged(pairs, n=N, source="judge:j"):
    """A judge frame: {(model_a, model_b): games(k) -> (game 1, game 2) verdict letters}."""
    rows = [{"prompt_id": f"q{k:03d}", "model_a": a, "model_b": b, **combine_games(*(f"[[{v}]]" for v in games(k)))}
            for (a, b), games in pairs.items() for k in range(n)]
    return pd.DataFrame(rows).assign(source=source)


def _claim(runs, prefs, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        report = routing.evaluate(runs, [routing.Always("weak")], preferences=prefs, n_boot=500, **kw)
        return report, report.claim(min_savings_pct=40, max_quality_loss=0.1).loc["always(weak)"]


def _blind(k):
    return ("C", "C")


def _strong_wins(k):          # strong is model_a: strong wins in both orders
    return ("A", "B")


def _honest_mid_weak(k):      # mid (model_a) better on 2 of 3 prompts, a tie on the rest
    return ("A", "B") if k % 3 else ("C", "C")


def test_a_judge_blind_on_the_reference_pairs_is_not_vouched_for_by_the_other_pairs():
    # B2: [[C]] on every pair with strong, honest on mid vs weak: the claim reads only strong's pairs
    prefs = _judged({("strong", "weak"): _blind, ("strong", "mid"): _blind, ("mid", "weak"): _honest_mid_weak})
    report, row = _claim(_runs(), prefs, reference="strong")
    assert not report.evidence["informative"] and "all 200 known verdicts are ties" in report.evidence["why"]
    assert row["verdict"] == "not enough data"


def test_a_judge_blind_on_one_compared_model_is_not_vouched_for_by_another():
    # honest (strong wins) against mid, blind against weak: weak is read from its own pairs only
    prefs = _judged({("strong", "weak"): _blind, ("strong", "mid"): _strong_wins})
    report, row = _claim(_runs(), prefs, reference="strong")
    assert not report.evidence["informative"] and "judge:j on the pairs with weak" in report.evidence["why"]
    assert row["verdict"] == "not enough data"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        rec = routing.recommend(_runs(), preferences=prefs, reference="strong", max_quality_loss=0.05, learned=False)
    assert not rec.claim_holds and rec.policy.needs() == ["strong"]


def _labels(rows):
    """Stored label rows as the log gives them, through lab.labels()' own frame builder."""
    return _labels_frame(pd.DataFrame([{"id": k + 1, "who": "me", "grading": "g", "prompt_id": pid, "model_a": a,
                                        "model_b": b, "vote": vote, "winner": winner, "shown_first": a,
                                        "created_at": "2026-01-01", "answer_a_hash": None, "answer_b_hash": None}
                                       for k, (pid, a, b, vote, winner) in enumerate(rows)]))


def _haiku_opus_labels(n=120):
    # a grading without against=: model_a is the name that sorts first; opus better on 60 %
    u = np.random.default_rng(0).random(n)
    winner = np.where(u < 0.6, "b", np.where(u < 0.9, "tie", "a"))
    return _labels([(f"q{k:03d}", "claude-haiku", "claude-opus", "tie" if w == "tie" else "A", w)
                    for k, w in enumerate(winner)])


def _haiku_opus_runs(n=120):
    runs = _runs(("weak", "strong"), n)
    return runs.assign(requested_model=runs["requested_model"].map({"weak": "claude-haiku", "strong": "claude-opus"}))


@pytest.mark.parametrize("saved", [False, True], ids=["in memory", "csv"])
def test_labels_record_no_reference_and_need_one(saved):
    labels = _haiku_opus_labels()
    if saved:
        labels = pd.read_csv(io.StringIO(labels.to_csv(index=False)), dtype={"prompt_id": str})
    with pytest.raises(InputError, match="without against=.*pass reference='<model>'"):
        routing.evaluate(_haiku_opus_runs(), [routing.Always("claude-haiku")], preferences=labels, n_boot=0)
    with pytest.raises(InputError, match="pass reference='<model>'"):
        routing.recommend(_haiku_opus_runs(), preferences=labels, learned=False)
    report, _ = _claim(_haiku_opus_runs().replace({"claude-haiku": "weak"}), labels.replace({"claude-haiku": "weak"}),
                       reference="claude-opus")
    assert report.reference == "always(claude-opus)"
    assert report.models.loc["always(weak)", "quality"] == pytest.approx(0.4, abs=0.1)


def _lazy(n=600):
    """A judge reading 20 % of the strong/weak pairs, tying the rest; weak truly worse on ~10 %, better on ~9 %."""
    rng = np.random.default_rng(0)
    worse = rng.random(n) < 0.10
    better = ~worse & (rng.random(n) < 0.10)
    read = rng.random(n) < 0.20
    games = {k: ("A", "B") if (r and w) else ("B", "A") if (r and b) else ("C", "C")
             for k, (r, w, b) in enumerate(zip(read, worse, better, strict=True))}
    return _judged({("strong", "weak"): games.__getitem__}, n=n), worse, better


def test_honest_labels_do_not_dilute_a_lazy_judges_ties():
    # B6: 100 honest labels settle 100 of the lazy judge's pairs; the judge's own 500 still tie ~98 %
    prefs, worse, better = _lazy()
    labels = prefs.iloc[:100][["prompt_id", "model_a", "model_b"]].assign(
        winner=np.where(worse[:100], "a", np.where(better[:100], "b", "tie")), source="human:h")
    runs = _runs(("weak", "strong"), 600)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        scored = routing.preference_quality(runs, pd.concat([prefs, labels], ignore_index=True),
                                            reference="strong", duplicates="last")
    assert scored.attrs["preference_ties_as_losses"] and scored.attrs["preference_tie_pct"] > 95
    # the labels' honest ties stay "as good" in the worst reading; the judge's ties are losses there
    by = scored[scored["requested_model"] == "weak"].set_index("prompt_id")["preference_worst_order"]
    assert by.iloc[:100].mean() == pytest.approx(1 - worse[:100].mean())
    assert by.iloc[100:].mean() < 0.2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        report = routing.evaluate(scored, [routing.Always("weak")], score="preference", reference="strong",
                                  n_boot=500)
        row = report.claim(min_savings_pct=40, max_quality_loss=0.05).loc["always(weak)"]
    assert row["verdict"] == "not enough data"


def test_an_honest_judge_and_honest_labels_still_certify():
    # weak as good as strong: better on half the prompts, an honest tie on the rest, in both orders
    def honest(k):
        return ("B", "A") if k % 2 else ("C", "C")
    prefs = pd.concat([_judged({("strong", "weak"): honest}),
                       _judged({("strong", "mid"): honest, ("mid", "weak"): _honest_mid_weak}, n=N + 40)])
    labels = _labels([(f"q{k:03d}", "strong", "weak", "B", "b") for k in range(N, N + 40)])
    report, row = _claim(_runs(n=N + 40), pd.concat([prefs, labels], ignore_index=True), reference="strong")
    assert report.evidence["informative"] and {s["source"] for s in report.evidence["sources"]} == {"judge:j",
                                                                                                   "human:me"}
    assert row["verdict"] == "holds"

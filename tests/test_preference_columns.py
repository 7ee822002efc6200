"""Review 22c G0b': the optional position-swap columns of a preference frame (verdict_1,
verdict_2, consistent) are validated in one place (check_preferences): verdicts normalised,
``consistent`` derived from them, text booleans refused — so no trimmed or re-spelled frame can
drop the worst-order reading of an order-dependent pair."""
from __future__ import annotations

import io
import warnings

import numpy as np
import pandas as pd
import pytest
from test_judge_informative import _frame, _runs

from llmlab import routing
from llmlab.analysis._pairwise import check_preferences
from llmlab.base._errors import InputError

N = 600


def _biased():
    """p_attenuate: the judge reads 30 % of pairs, says [[A]] otherwise; weak truly worse on ~9 %."""
    rng = np.random.default_rng(0)
    worse, reads = rng.random(N) < 0.10, rng.random(N) < 0.30
    games = [("A", "B") if (r and w) else ("C", "C") if r else ("A", "A") for r, w in zip(reads, worse, strict=True)]
    return _frame(lambda n: games, n=N).assign(source="judge:j")


def _claim(prefs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        rep = routing.evaluate(_runs(N), [routing.Always("weak")], preferences=prefs, reference="strong",
                               n_boot=200)
        return rep.claim(min_savings_pct=40, max_quality_loss=0.05).loc["always(weak)"]


def _csv(frame):
    buf = io.StringIO()
    frame.to_csv(buf, index=False)
    buf.seek(0)
    return pd.read_csv(buf)


@pytest.mark.parametrize("variant", ["full", "no consistent", "core + verdicts", "lower case", "padded Tie", "csv"])
def test_the_position_biased_judge_never_certifies_whatever_optional_columns_it_keeps(variant):
    prefs = _biased()
    frame = {"full": prefs,
             "no consistent": prefs.drop(columns="consistent"),
             "core + verdicts": prefs[["prompt_id", "model_a", "model_b", "winner", "verdict_1", "verdict_2",
                                       "source"]],
             "lower case": prefs.assign(verdict_1=prefs.verdict_1.str.lower(), verdict_2=prefs.verdict_2.str.lower()),
             "padded Tie": prefs.assign(verdict_1=prefs.verdict_1.str.replace("tie", " Tie ")),
             "csv": _csv(prefs)}[variant]
    row = _claim(frame)
    assert row["verdict"] != "holds"
    assert row["quality_diff_worst_order"] < -0.5


def test_consistent_is_derived_from_the_two_verdicts():
    prefs = _biased()
    out = check_preferences(prefs.drop(columns="consistent").assign(verdict_1=prefs.verdict_1.str.lower()))
    assert list(out["consistent"]) == list(prefs["consistent"])
    assert set(out["verdict_1"].dropna()) <= {"A", "B", "tie"}
    with pytest.warns(RuntimeWarning, match="consistent contradicts verdict_1/verdict_2 on 600 row"):
        out = check_preferences(prefs.assign(consistent=~prefs["consistent"].astype(bool)))
    assert list(out["consistent"]) == list(prefs["consistent"])


def test_booleans_as_text_and_unknown_verdicts_are_refused_in_one_line():
    prefs = _biased()
    with pytest.raises(InputError, match=r"consistent 'True' is not True, False or unknown") as err:
        check_preferences(prefs.assign(consistent=prefs.consistent.astype(str)))
    assert "\n" not in str(err.value)
    with pytest.raises(InputError, match="consistent 'False'"):
        check_preferences(prefs.drop(columns=["verdict_1", "verdict_2"]).assign(consistent="False"))
    with pytest.raises(InputError, match=r"verdict_2 'C' is not one of 'A', 'B', 'tie'") as err:
        check_preferences(prefs.assign(verdict_2="C"))
    assert "\n" not in str(err.value)
    with pytest.raises(InputError, match="verdict_1 1"):
        routing.evaluate(_runs(N), [routing.Always("weak")], preferences=prefs.assign(verdict_1=1))

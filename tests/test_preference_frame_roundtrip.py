"""r23 W-e and nits: a preference frame llmlab wrote reads back the same from every form it is saved
in, and bad values of its optional columns are one-line InputErrors naming column and value.

``to_json`` (its default orient, records, lines, index, split) writes ``consistent`` — a boolean
column holding NA for unknown verdicts — as 1.0/0.0/NaN; the one frame reader (check_preferences)
reads those as True/False/unknown. Through a real Lab, the SDK and the fake HTTP judge: a judge
that is decisive on some prompts, ties some, is order-dependent ([[A]] in both orders, consistent
False) on some and unreadable (unknown, consistent NA) on the rest."""
from __future__ import annotations

import io
import warnings

import numpy as np
import pandas as pd
import pytest
from fakeserver import FakeServer, ModelSpec

from llmlab import InputError, Lab, routing, scoring
from llmlab.analysis._pairwise import PREFERENCE_COLUMNS

SHOWN = (r"Assistant A's Answer\]\n{}[^\[]*\[The End of Assistant A's Answer\]\s*\[The Start of Assistant B's "
         r"Answer\]\n{}")
N = 24
WEAK_SAYS = {f"Q{k}?": ("bad", "GOOD", "MEH", "OK")[k % 4] + " answer" for k in range(N)}
JUDGE = ModelSpec(replies=[["MEH answer", "I cannot tell which is better."],
                           ["OK answer", "The first one. [[A]]"],
                           [SHOWN.format("GOOD", "bad"), "A is right. [[A]]"],
                           [SHOWN.format("bad", "GOOD"), "B is right. [[B]]"]], text="Equal. [[C]]")


@pytest.fixture(scope="module")
def judged(tmp_path_factory):
    models = {"strong": ModelSpec(text="GOOD answer"), "weak": ModelSpec(answers_by_prompt=WEAK_SAYS), "judge": JUDGE}
    with FakeServer(models) as srv, Lab(base_url=srv.base_url, db=tmp_path_factory.mktemp("rt") / "r.sqlite",
                                        retries=0) as lab, warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        prompts = pd.DataFrame({"prompt_id": [f"q{k:02d}" for k in range(N)], "prompt": list(WEAK_SAYS)})
        runs = lab.sweep(prompts, models=["weak", "strong"], progress=False).df
        prefs = scoring.pairwise(runs, judge="judge", lab=lab, against="strong", progress=False)
        plain = scoring.pairwise(runs, judge="judge", lab=lab, progress=False)     # no against=
        ids = runs.set_index(["prompt_id", "requested_model"])["id"]
        for pid in prompts["prompt_id"]:         # the human: strong better everywhere, shown in either order
            first = "weak" if int(pid[1:]) % 2 else "strong"
            lab.add_label(grading="g", who="me", prompt_id=pid, model_a="strong", model_b="weak", shown_first=first,
                          vote="A" if first == "strong" else "B", row_a=int(ids[(pid, "strong")]),
                          row_b=int(ids[(pid, "weak")]))
        labels = lab.labels()
    return runs, prefs, plain, labels


def _forms(frame: pd.DataFrame, tmp: str) -> dict[str, pd.DataFrame]:
    ids = {"dtype": {"prompt_id": str}}
    out = {f"json {orient}": pd.read_json(io.StringIO(frame.to_json(orient=orient)), orient=orient, **ids)
           for orient in ("columns", "records", "index", "split")}
    out["json default"] = pd.read_json(io.StringIO(frame.to_json()), **ids)
    out["json lines"] = pd.read_json(io.StringIO(frame.to_json(orient="records", lines=True)), lines=True, **ids)
    out["json table"] = pd.read_json(io.StringIO(frame.to_json(orient="table")), orient="table")
    out["csv"] = pd.read_csv(io.StringIO(frame.to_csv(index=False)), dtype={"prompt_id": str})
    try:
        frame.to_parquet(f"{tmp}/f.parquet")
        out["parquet"] = pd.read_parquet(f"{tmp}/f.parquet")
    except ImportError:                    # no parquet engine installed: that form is not there to check
        pass
    return out


def _read(runs: pd.DataFrame, frame: pd.DataFrame) -> tuple:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        report = routing.evaluate(runs, [routing.Always("weak")], preferences=frame, n_boot=100)
        quality = routing.preference_quality(runs, frame)
        return (scoring.ratings(frame, n_boot=100).table, scoring.agreement(frame, n_boot=100), report.table,
                quality[["preference", "preference_worst_order"]], quality.attrs["preference_evidence"])


def test_the_judge_frame_has_every_kind_of_consistent(judged):
    _, prefs, *_ = judged
    assert prefs["consistent"].isna().sum() == N // 4                       # MEH: unknown
    assert (prefs["consistent"] == False).sum() == N // 4                   # noqa: E712  OK: [[A]] in both orders
    assert pd.read_json(io.StringIO(prefs.to_json(orient="records")))["consistent"].dtype == float


@pytest.mark.parametrize("form", ["json columns", "json records", "json index", "json split", "json default",
                                  "json lines", "json table", "csv", "parquet"])
def test_every_saved_form_reads_back_to_the_same_figures(judged, tmp_path, form):
    runs, prefs, *_ = judged
    forms = _forms(prefs, str(tmp_path))
    if form not in forms:
        pytest.skip("no parquet engine")
    expected, got = _read(runs, prefs), _read(runs, forms[form])
    for want, have in zip(expected[:4], got[:4], strict=True):
        pd.testing.assert_frame_equal(have, want, check_dtype=False)
    assert got[4] == expected[4]
    assert got[3]["preference_worst_order"].lt(got[3]["preference"]).sum() == N // 4   # the order-dependent pairs


def _labels() -> pd.DataFrame:
    return pd.DataFrame({"prompt_id": ["q1", "q2", "q3"], "model_a": "strong", "model_b": "weak",
                         "winner": ["a", "tie", "b"], "verdict_1": ["A", "tie", "B"], "source": "human:ann",
                         "both_bad": [False, True, False], "against": "strong"})


@pytest.mark.parametrize(("change", "message"), [
    ({"consistent": [1.0, 2.0, 0.0]}, r"consistent 2\.0 is not True, False or unknown \(NA\)"),
    ({"consistent": [0.5, 1.0, 0.0]}, r"consistent 0\.5 is not"),
    ({"consistent": ["yes", "no", "yes"]}, r"consistent 'yes' is not"),
    ({"both_bad": ["maybe", False, True]}, r"both_bad 'maybe' is not True, False or unknown"),
    ({"both_bad": [3, 0, 1]}, r"both_bad 3 is not"),
    ({"verdict_1": ["Z", "A", "B"]}, r"verdict_1 'Z' is not one of 'A', 'B', 'tie'"),
    ({"verdict_2": ["A", "Q", "B"]}, r"verdict_2 'Q' is not one of"),
])
def test_bad_optional_values_on_a_labels_frame_are_one_line_errors_naming_column_and_value(judged, change, message):
    runs, *_ = judged
    frame = _labels().assign(**change)
    for read in (lambda: scoring.ratings(frame, n_boot=0), lambda: scoring.agreement(frame, n_boot=0),
                 lambda: routing.evaluate(runs, [routing.Always("weak")], preferences=frame, n_boot=0)):
        with pytest.raises(InputError, match=message) as caught:
            read()
        assert "\n" not in str(caught.value)


def test_json_flags_read_as_booleans_and_both_bad_as_written():
    frame = _labels().assign(consistent=[np.nan, 1.0, 0.0], both_bad=[0.0, 1.0, np.nan])
    out = scoring.check_preferences(frame.drop(columns="verdict_1"))
    assert out["consistent"].tolist()[1:] == [True, False] and out["consistent"].isna().iloc[0]
    assert out["both_bad"].tolist()[:2] == [False, True] and out["both_bad"].isna().iloc[2]


def test_a_duplicated_column_is_named_not_read_as_a_value(judged):
    runs, prefs, *_ = judged
    for column in ("winner", "consistent", "model_a"):
        twice = pd.concat([prefs, prefs[[column]]], axis=1)
        for read in (lambda twice=twice: scoring.ratings(twice, n_boot=0),
                     lambda twice=twice: routing.evaluate(runs, [routing.Always("weak")], preferences=twice,
                                                          n_boot=0)):
            with pytest.raises(InputError, match=f"column '{column}' appears more than once") as caught:
                read()
            assert "\n" not in str(caught.value) and f"{column} '{column}'" not in str(caught.value)


def test_a_frame_cut_to_the_documented_columns_keeps_its_reference_or_asks_for_one(judged):
    """r23 N3: ``against`` is one of PREFERENCE_COLUMNS; a one-pair frame that records no reference
    (none chosen, or the column cut away) is an InputError naming both models, never model_a."""
    runs, prefs, plain, labels = judged

    def csv(frame):
        return pd.read_csv(io.StringIO(frame.to_csv(index=False)), dtype={"prompt_id": str})
    kept = csv(prefs[PREFERENCE_COLUMNS])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert routing.evaluate(runs, [routing.Always("weak")], preferences=kept, n_boot=0).reference == \
            "always(strong)"
        frames = {"pairwise without against=": csv(plain[PREFERENCE_COLUMNS]),
                  "labels": csv(labels[PREFERENCE_COLUMNS]),
                  "labels, minimal": csv(labels[["prompt_id", "model_a", "model_b", "winner", "source"]]),
                  "judge, against cut away": csv(prefs.drop(columns="against"))}
        for name, frame in frames.items():
            for call in (lambda f=frame: routing.evaluate(runs, [routing.Always("weak")], preferences=f, n_boot=0),
                         lambda f=frame: routing.recommend(runs, preferences=f, n_boot=0, learned=False)):
                with pytest.raises(InputError, match=r"needs a reference model: .* pass reference='<model>' "
                                                     r"\('strong' or 'weak'") as caught:
                    call()
                assert "\n" not in str(caught.value), name
        assert routing.evaluate(runs, [routing.Always("weak")], preferences=frames["labels, minimal"],
                                reference="strong", n_boot=0).table.loc["always(weak)", "quality"] == 0.0

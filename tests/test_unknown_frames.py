"""r25 B2, B3 and nits: what a preference frame does not know stays unknown, whatever form it comes in.

B2: a judge's frame cut to its core columns and given the verdict columns back *empty*
(``reindex(columns=PREFERENCE_COLUMNS)``, a concat with an empty template, verdict_2 set to NaN,
half full and half cut) is as unscreened as one without those columns: not informative, ratings
without intervals, routing certifies nothing. lab.labels()-style rows (human:…, one vote) stay labels.

B3: pd.NA / pyarrow nulls (``dtype_backend=``, ``convert_dtypes()``) in any column the frame reader
reads are unknown, exactly as NaN is: evaluate, recommend, Learned.fit, ratings and agreement give
the numbers of the plain CSV reading. Runs come from a real Lab, the SDK and the fake HTTP server."""
from __future__ import annotations

import io
import warnings

import numpy as np
import pandas as pd
import pytest
from fakeserver import FakeServer, ModelSpec

from llmlab import InputError, Lab, routing, scoring
from llmlab.analysis._evidence import judge_evidence
from llmlab.analysis._pairwise import PREFERENCE_COLUMNS, check_preferences

N = 60
CORE = ["prompt_id", "model_a", "model_b", "winner"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    models = {"strong": ModelSpec(text="GOOD answer"), "weak": ModelSpec(text="ok answer")}
    with FakeServer(models) as srv, Lab(base_url=srv.base_url, db=tmp_path_factory.mktemp("u") / "r.sqlite",
                                        retries=0) as lab:
        prompts = pd.DataFrame({"prompt_id": [f"q{k:02d}" for k in range(N)],
                                "prompt": [f"Explain topic {k}." for k in range(N)]})
        return lab.sweep(prompts, models=["weak", "strong"], progress=False).df


def _judge(kind: str) -> pd.DataFrame:
    """A judge's full frame: "honest" (consistent decisive verdicts, strong wins 2 in 3) or
    "biased" (first position wins half the pairs: order-dependent ties)."""
    rows = []
    for k in range(N):
        if kind == "biased" and k % 2:
            v1, v2, winner = "A", "A", "tie"
        else:
            v1, v2, winner = ("A", "B", "a") if k % 3 else ("B", "A", "b")
        rows.append({"prompt_id": f"q{k:02d}", "model_a": "strong", "model_b": "weak", "winner": winner,
                     "consistent": v1 != v2, "verdict_1": v1, "verdict_2": v2, "reason": "judge", "source": "judge:j",
                     "both_bad": False, "against": "strong"})
    return pd.DataFrame(rows).reindex(columns=PREFERENCE_COLUMNS)


def _csv(frame: pd.DataFrame, **read) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(frame.to_csv(index=False)), **read)


def _cut_ops(full: pd.DataFrame) -> dict[str, pd.DataFrame]:
    core = _csv(full[CORE + ["source", "against"]])
    half = N // 2
    v2_nan, v2_half = full.copy(), full.copy()
    v2_nan["verdict_2"] = np.nan
    v2_half.loc[half:, "verdict_2"] = None
    return {"reindex": core.reindex(columns=PREFERENCE_COLUMNS),
            "empty template": pd.concat([full.iloc[:0], core]),
            "verdict_2 NaN": v2_nan,
            "verdicts None": full.assign(verdict_1=None, verdict_2=None),
            "half full, half core": pd.concat([full.iloc[:half], core.iloc[half:]], ignore_index=True),
            "verdict_2 NaN on half": v2_half}


OPS = list(_cut_ops(_judge("honest")))


@pytest.mark.parametrize("kind", ["honest", "biased"])
def test_full_judge_frame_is_screened(kind):
    assert judge_evidence(check_preferences(_judge(kind)))["unscreened"] is False


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("kind", ["honest", "biased"])
def test_emptied_orders_are_unscreened(kind, op):
    frame = check_preferences(_cut_ops(_judge(kind))[op])
    evidence = judge_evidence(frame, require_source=True)
    assert evidence["unscreened"] and not evidence["informative"], evidence
    assert "two orders" in evidence["why"]


@pytest.mark.parametrize("op", OPS)
def test_emptied_orders_give_ratings_no_interval(op):
    with pytest.warns(RuntimeWarning, match="cannot be screened"):
        table = scoring.ratings(_cut_ops(_judge("biased"))[op], n_boot=50).table
    assert table["ci_lo"].isna().all() and table["ci_hi"].isna().all()


@pytest.mark.parametrize("op", OPS)
def test_emptied_orders_certify_no_claim(runs, op):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        report = routing.evaluate(runs, [routing.Always("weak")], preferences=_cut_ops(_judge("biased"))[op],
                                  reference="strong", n_boot=0)
    assert report.evidence["unscreened"] and not report.evidence["informative"]


def test_labels_and_error_rows_stay_screenable():
    """lab.labels() rows (human:…, verdict_2 None) are labels; pairwise's rows decided by a model's
    failed call (errors='loss') carry no verdict of the judge to screen."""
    labels = _judge("honest").assign(source="human:me", verdict_2=None, consistent=pd.NA)
    assert judge_evidence(check_preferences(labels))["unscreened"] is False
    errored = _judge("honest")
    errored.loc[0, ["verdict_1", "verdict_2", "reason"]] = [None, None, "weak's call failed (an error row)"]
    assert judge_evidence(check_preferences(errored))["unscreened"] is False


# --- B3: every read column x both nullable backends x convert_dtypes --------------------------------

def _labels() -> pd.DataFrame:
    """Human labels, strong better on 2 in 3, a tie on some; winner unknown on every 4th prompt,
    where each optional column is unknown too."""
    frame = _judge("honest").assign(source="human:me", verdict_2=None, consistent=None)
    frame.loc[frame.index % 5 == 0, "winner"] = "tie"
    frame["verdict_1"] = frame["winner"].map({"a": "A", "b": "B", "tie": "tie"})
    frame.loc[frame.index % 4 == 0, ["winner", "verdict_1"]] = None
    return frame


UNKNOWN_COLUMNS = ["winner", "verdict_1", "consistent", "both_bad", "against", "source"]
READERS = {"numpy_nullable": lambda f: _csv(f, dtype_backend="numpy_nullable"),
           "pyarrow": lambda f: _csv(f, dtype_backend="pyarrow"),
           "convert_dtypes": lambda f: _csv(f).convert_dtypes()}
OPERATIONS = {
    "evaluate": lambda runs, g: routing.evaluate(runs, [routing.Always("weak")], preferences=g, reference="strong",
                                                 n_boot=0).models.loc["always(weak)", "quality"],
    "recommend": lambda runs, g: repr(routing.recommend(runs, preferences=g, reference="strong")),
    "Learned.fit": lambda runs, g: routing.Learned("weak", "strong").fit(runs, preferences=g).training[
        "unknown_labels"],
    "ratings": lambda runs, g: scoring.ratings(g, n_boot=20).table["unknown"].to_dict(),
    "agreement": lambda runs, g: int(scoring.agreement(g, _csv(_labels()), n_boot=20)["unknown"].iloc[0])}


def _with_unknown(column: str) -> pd.DataFrame:
    frame = _labels()
    if column != "winner":                    # unknown exactly on the unknown winners' rows
        frame[column] = frame[column].astype(object)
        frame.loc[frame["winner"].isna(), column] = None
    return frame


def _quiet(op, runs, frame):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return OPERATIONS[op](runs, frame)


@pytest.mark.parametrize("op", list(OPERATIONS))
@pytest.mark.parametrize("reader", list(READERS))
@pytest.mark.parametrize("column", UNKNOWN_COLUMNS)
def test_nullable_unknowns_read_as_plain_ones(runs, column, reader, op):
    frame = _with_unknown(column)
    assert _quiet(op, runs, READERS[reader](frame)) == _quiet(op, runs, _csv(frame))


def test_unknowns_are_counted(runs):
    assert _quiet("Learned.fit", runs, READERS["pyarrow"](_labels())) == 15
    assert _quiet("ratings", runs, READERS["pyarrow"](_labels())) == {"strong": 15, "weak": 15}


@pytest.mark.parametrize("reader", list(READERS))
@pytest.mark.parametrize("column", ["model_a", "model_b", "prompt_id"])
def test_nullable_missing_names_are_one_line_errors(column, reader):
    frame = _labels().astype({column: object})
    frame.loc[3, column] = None
    with pytest.raises(InputError, match=f"no {column}") as err:
        check_preferences(READERS[reader](frame))
    assert "\n" not in str(err.value)


# --- nits: text spellings of unknown, a reference named on every known row -------------------------

def test_blank_text_is_unknown_other_words_are_refused():
    """The rule: unknown is a missing value or blank text (what to_csv writes for None, read back with
    keep_default_na=False); any other word, 'unknown', 'nan' and 'None' included, is refused."""
    frame = _csv(_labels(), keep_default_na=False)
    assert (frame["winner"] == "").sum() == 15
    assert int(check_preferences(frame)["winner"].isna().sum()) == 15
    for word in ("unknown", "nan", "None"):
        with pytest.raises(InputError, match="not one of 'a', 'b', 'tie' or unknown"):
            check_preferences(_labels().fillna({"winner": word}))


def test_reference_missing_only_on_unknown_rows_is_recorded(runs):
    frame = _labels()
    frame.loc[frame["winner"].isna(), "against"] = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        told = routing.evaluate(runs, [routing.Always("weak")], preferences=frame, n_boot=0)
        named = routing.evaluate(runs, [routing.Always("weak")], preferences=frame, reference="strong", n_boot=0)
    assert told.models.loc["always(weak)", "quality"] == named.models.loc["always(weak)", "quality"]
    frame.loc[1, "against"] = None                 # a known verdict without a reference: yours to say
    with pytest.raises(InputError, match="needs a reference"):
        routing.evaluate(runs, [routing.Always("weak")], preferences=frame, n_boot=0)

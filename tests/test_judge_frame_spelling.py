"""Review r24 B2 and W1. B2: the lazy-tie guard and the cut-frame screen read a frame as a judge's
by how its source was spelt (``startswith("judge:")``): renamed to "gpt-4o", recased "Judge:j" or
padded " judge:j", r23's lazy judge (98 % ties, true loss 0.09) certified margin 0.05. A judge's
frame is one whose rows carry a second order, or whose source says judge in any spelling; a frame
of unknown kind (neither judge nor human:) is not read as labels. W1: an all-pairs frame judged
without ``against=`` and cut to one model's pairs made that model the default reference."""
from __future__ import annotations

import io
import warnings

import pandas as pd
import pytest
from test_judge_informative import _frame, _runs
from test_lazy_tie_judge import N, _lazy

from llmlab import InputError, routing
from llmlab.analysis._pairwise import verdict_kinds

SPELLINGS = ["judge:j", "gpt-4o", "Judge:j", " judge:j", "JUDGE : j", "j2", ""]
# what is left of the frame: all columns, no verdicts, no verdicts nor consistent, core only
COLUMNS = {"all": [], "no verdicts": ["verdict_1", "verdict_2"],
           "no verdicts, no consistent": ["verdict_1", "verdict_2", "consistent"],
           "core": ["verdict_1", "verdict_2", "consistent", "reason", "reply_1", "reply_2"]}


def _csv(frame: pd.DataFrame) -> pd.DataFrame:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    buffer.seek(0)
    return pd.read_csv(buffer)


OPERATIONS = {"as is": lambda f: f, "csv": _csv, "shuffled": lambda f: f.sample(frac=1, random_state=1),
              "attrs cleared": lambda f: f.copy().pipe(lambda g: (g.attrs.clear(), g)[1])}


def _claim(prefs: pd.DataFrame) -> pd.Series:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = routing.evaluate(_runs(N), [routing.Always("weak")], preferences=prefs, reference="strong", n_boot=0)
        return report.claim(min_savings_pct=40, max_quality_loss=0.05).loc["always(weak)"]


LAZY, TRUE_LOSS = _lazy()


@pytest.mark.parametrize("operation", list(OPERATIONS))
@pytest.mark.parametrize("columns", list(COLUMNS))
@pytest.mark.parametrize("source", SPELLINGS)
def test_a_lazy_judge_certifies_nothing_however_its_source_is_spelt(source, columns, operation):
    assert TRUE_LOSS > 0.05
    prefs = OPERATIONS[operation](LAZY.assign(source=source, against="strong").drop(columns=COLUMNS[columns]))
    row = _claim(prefs)
    assert row["quality_diff"] > -0.05                # read as "as good", the ties would hold the claim
    assert row["verdict"] == "not enough data"


def test_labels_as_lab_labels_writes_them_still_certify_and_csv_keeps_them_labels():
    # single votes of a grader who read every pair: human:<who>, verdict_2 None, consistent NA
    labels = _frame(lambda n: [("A", "B")] * 6 + [("C", "C")] * (n - 6), n=N)
    labels = labels.assign(source="human:ann", verdict_2=None, consistent=pd.array([pd.NA] * N, dtype="boolean"),
                           against=None)
    for frame in (labels, _csv(labels), labels.assign(source=" Human:ann")):
        assert set(verdict_kinds(frame)) == {"labels"}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            q = routing.preference_quality(_runs(N), frame, reference="strong")
        evidence = q.attrs["preference_evidence"]
        assert evidence["kind"] == "labels" and evidence["informative"]


def test_a_source_of_unknown_kind_is_told_how_to_mark_labels():
    labels = _frame(lambda n: [("A", "B")] * 6 + [("C", "C")] * (n - 6), n=N)
    cut = labels[["prompt_id", "model_a", "model_b", "winner"]].assign(source="ann")
    with pytest.warns(RuntimeWarning, match=r"source 'ann', neither 'judge:<model>' nor 'human:<who>'.*"
                                            r"source='human:<who>'"):
        q = routing.preference_quality(_runs(N), cut, reference="strong")
    assert q.attrs["preference_evidence"]["kind"] == "unknown"
    assert not q.attrs["preference_evidence"]["informative"]


def test_verdict_kinds_read_the_second_order_before_the_name():
    frame = pd.DataFrame({"source": ["gpt-4o", "human:a", "human:a", "x", None, "Judge:j"],
                          "verdict_2": ["A", None, None, None, None, None],
                          "consistent": pd.array([pd.NA, pd.NA, True, pd.NA, pd.NA, pd.NA], dtype="boolean")})
    assert list(verdict_kinds(frame)) == ["judge", "labels", "judge", "unknown", "unknown", "judge"]


def _all_pairs() -> tuple[pd.DataFrame, pd.DataFrame]:
    runs = _runs(60)
    mid = runs[runs.requested_model == "weak"].assign(requested_model="mid", id=lambda d: d.id + 10000,
                                                       request_id=lambda d: d.request_id + "m")
    sw = _frame(lambda n: [("A", "B")] * 12 + [("C", "C")] * (n - 12), n=60)
    sm = _frame(lambda n: [("A", "B")] * 6 + [("C", "C")] * (n - 6), n=60).assign(model_b="mid")
    mw = _frame(lambda n: [("A", "B")] * 6 + [("C", "C")] * (n - 6), n=60).assign(model_a="mid")
    return pd.concat([runs, mid]), pd.concat([sw, sm, mw], ignore_index=True).assign(source="judge:j")


@pytest.mark.parametrize("against", [None, "", float("nan")])
@pytest.mark.parametrize("hub", ["weak", "mid"])
def test_a_frame_recording_no_reference_needs_one_when_cut_to_one_models_pairs(hub, against):
    runs, prefs = _all_pairs()
    prefs = prefs.assign(against=against)
    cut = prefs[(prefs.model_a == hub) | (prefs.model_b == hub)]
    for frame in (cut, _csv(cut)):
        with pytest.raises(InputError, match=rf"{hub} is in every pair, but .* no reference was chosen"):
            routing.preference_quality(runs, frame)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            q = routing.preference_quality(runs, frame, reference=hub)       # said: honoured
        assert q.attrs["preference_reference"] == hub


def test_the_hub_stays_the_default_when_recorded_or_not_recorded_at_all():
    runs, prefs = _all_pairs()
    strong = prefs[(prefs.model_a == "strong") | (prefs.model_b == "strong")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for frame in (strong, strong.assign(against="strong"),
                      pd.concat([strong.assign(against="strong"), strong.iloc[:3].assign(against=None,
                                                                                          source="human:a")])):
            q = routing.preference_quality(runs, frame, duplicates="last")
            assert q.attrs["preference_reference"] == "strong"
    with pytest.raises(InputError, match=r"record against='mid'"):
        routing.preference_quality(runs, strong.assign(against="mid"))

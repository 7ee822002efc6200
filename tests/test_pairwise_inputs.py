"""pairwise refuses bad parameters in one line before any judge call; reference mappings match the
runs' prompt ids as text (review 22, F5 and F12)."""
from __future__ import annotations

import warnings

import pandas as pd
import pytest
from fakeserver import FakeServer, ModelSpec

from llmlab import InputError, Lab, routing, scoring


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    models = {"alpha": ModelSpec(text="a1"), "beta": ModelSpec(text="b1"), "judge": ModelSpec(text="[[A]]")}
    with FakeServer(models) as srv, Lab(base_url=srv.base_url, db=tmp_path_factory.mktemp("p") / "r.sqlite",
                                        retries=0) as lab:
        runs = lab.sweep(pd.DataFrame({"prompt_id": [1, 2], "prompt": ["x", "y"]}), models=["alpha", "beta"],
                         progress=False).df
        yield srv, lab, runs


@pytest.mark.parametrize(("option", "value", "message"), [
    ("max_tokens", "x", "max_tokens must be a whole number"), ("max_tokens", None, "max_tokens must be"),
    ("max_tokens", 0, "max_tokens must be"), ("max_tokens", 1.5, "max_tokens must be"),
    ("max_tokens", True, "max_tokens must be"), ("max_calls", "x", "max_calls must be a whole number"),
    ("max_calls", -1, "max_calls must be"), ("max_calls", 2.5, "max_calls must be"),
    ("max_calls", False, "max_calls must be"), ("lab", None, "lab must be the Lab"),
    ("lab", "x", "lab must be the Lab"),
    ("rubric", 5, "rubric must be the judging criteria"), ("rubric", "", "rubric must be"),
    ("rubric", "  ", "rubric must be"), ("models", "alpha", "models must be a list of model names"),
    ("models", [1, 2], "models must be a list"), ("models", 3, "models must be a list"),
    ("judge", None, "judge must be a model name"), ("judge", "", "judge must be"), ("judge", 7, "judge must be"),
    ("against", 3, "against must be a model name"), ("judge_rows", "yes", "judge_rows must be True or False"),
    ("progress", 1, "progress must be True or False"),
    ("reference", {"nope": "X"}, "none of its 1 key"), ("reference", {3: "X", 4: "Y"}, "none of its 2 key"),
    ("reference", 5, "reference must be a column name"),
])
def test_bad_parameters_are_one_line_input_errors_before_any_call(setup, option, value, message):
    srv, lab, runs = setup
    options = {"judge": "judge", "lab": lab, "progress": False, option: value}
    before = len(srv.requests_for("judge"))
    with pytest.raises(InputError, match=message) as err:
        scoring.pairwise(runs, **options)
    assert "\n" not in str(err.value)
    assert len(srv.requests_for("judge")) == before


def test_max_calls_none_means_no_limit(setup):
    _, lab, runs = setup
    prefs = scoring.pairwise(runs, judge="judge", lab=lab, max_calls=None, progress=False)
    assert len(prefs) == 2


@pytest.mark.parametrize("keys", [(1, 2), ("1", "2")])
def test_reference_keys_match_the_runs_ids_as_text(setup, keys):
    srv, lab, runs = setup
    assert list(runs["prompt_id"].unique()) == ["1", "2"]
    before = len(srv.requests_for("judge"))
    scoring.pairwise(runs, judge="judge", lab=lab, reference=dict(zip(keys, [f"REF-{k}" for k in keys], strict=True)),
                     rubric=f"criteria {keys[0]!r}", progress=False)          # a new rubric: not from the cache
    bodies = [r.body["messages"][1]["content"] for r in srv.requests_for("judge")[before:]]
    assert len(bodies) == 4 and all("[The Start of Reference Answer]\nREF-" in b for b in bodies)


def test_a_reference_mapping_missing_some_prompts_is_said(setup):
    _, lab, runs = setup
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scoring.pairwise(runs, judge="judge", lab=lab, reference={1: "REF"}, progress=False)
    assert any("1 of 2 prompts have no reference answer" in str(w.message) for w in caught)


def test_without_against_the_reference_is_asked_for_not_taken_from_name_order(setup):
    """F11: of one pair judged without against=, model_a is the name that sorts first — often the
    cheap model, which would then be the reference every other is measured against."""
    _, lab, runs = setup
    plain = scoring.pairwise(runs, judge="judge", lab=lab, progress=False)
    assert plain.attrs["against"] is None and set(plain["model_a"]) == {"alpha"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(InputError, match="without against=, so which one .* pass reference='<model>'"):
            routing.evaluate(runs, [routing.Always("alpha")], preferences=plain, n_boot=0)
        assert routing.evaluate(runs, [routing.Always("alpha")], preferences=plain, reference="beta",
                                n_boot=0).reference == "always(beta)"
        chosen = scoring.pairwise(runs, judge="judge", lab=lab, against="beta", progress=False)
        assert routing.evaluate(runs, [routing.Always("alpha")], preferences=chosen, n_boot=0).reference == \
            "always(beta)"
        # a frame built by hand (or cut to fewer columns) records no reference: asked for, never guessed
        hand_made = pd.DataFrame({"prompt_id": ["1", "2"], "model_a": "beta", "model_b": "alpha", "winner": "a"})
        with pytest.raises(InputError, match="record no reference .* pass reference='<model>' \\('alpha' or 'beta'"):
            routing.evaluate(runs, [routing.Always("alpha")], preferences=hand_made, n_boot=0)
        assert routing.evaluate(runs, [routing.Always("alpha")], preferences=hand_made.assign(against="beta"),
                                n_boot=0).reference == "always(beta)"


def test_the_several_sources_error_names_arguments_that_exist_and_following_it_works(setup):
    """F8: the refusal named duplicates=, which evaluate/recommend/Learned.fit do not take."""
    _, lab, runs = setup
    judge = scoring.pairwise(runs, judge="judge", lab=lab, against="beta", progress=False)
    labels = judge.assign(winner="b", source="human:ann")
    both = pd.concat([judge, labels], ignore_index=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(InputError, match="an argument of scoring.agreement and routing.preference_quality") as err:
            routing.evaluate(runs, [routing.Always("alpha")], preferences=both, reference="beta", n_boot=0)
        assert "\n" not in str(err.value)
        settled = routing.preference_quality(runs, both, reference="beta", duplicates="last")
        report = routing.evaluate(settled, [routing.Always("alpha")], score="preference", reference="beta", n_boot=0)
    assert report.table.loc["always(alpha)", "quality"] == 1.0          # the last source (the labels: alpha wins)


def test_judge_verdicts_name_the_answers_they_judged_so_a_re_sweep_does_not_inherit_them(tmp_path):
    """F13: judge frames carry answer hashes as labels do; verdicts on answers that changed are set
    aside by routing and refused by check_preferences(runs=)."""
    models = {"shifty": ModelSpec(answers=["one", "two", "three"]), "beta": ModelSpec(text="b1"),
              "judge": ModelSpec(text="B is better. [[B]]")}
    prompts = pd.DataFrame({"prompt_id": ["p1", "p2"], "prompt": ["x", "y"]})
    with FakeServer(models) as srv, Lab(base_url=srv.base_url, db=tmp_path / "r.sqlite", retries=0) as lab:
        old = lab.sweep(prompts, models=["shifty", "beta"], concurrency=1, progress=False).df
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            prefs = scoring.pairwise(old, judge="judge", lab=lab, against="beta", progress=False)
        answers = old.set_index(["prompt_id", "requested_model"])["response_text"]
        for row in prefs.itertuples():
            assert row.answer_a_hash == scoring.answer_hash(answers[(row.prompt_id, row.model_a)])
            assert row.answer_b_hash == scoring.answer_hash(answers[(row.prompt_id, row.model_b)])
        scoring.check_preferences(prefs, runs=old)                     # the answers judged: fine
        new = lab.sweep(prompts, models=["shifty", "beta"], concurrency=1, cache=False, progress=False).df
        assert set(new.loc[new["requested_model"] == "shifty", "response_text"]) != \
            set(old.loc[old["requested_model"] == "shifty", "response_text"])
        with pytest.raises(InputError, match="made on other answers"):
            scoring.check_preferences(prefs, runs=new)
        with pytest.raises(InputError, match="all 2 labels were made on other answers"):
            routing.evaluate(new, [routing.Always("shifty")], preferences=prefs, n_boot=0)

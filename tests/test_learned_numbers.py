"""A saved Learned router's numbers are read by the project's one finite-number rule (F15).

``Learned.from_dict`` reads ``coef``, ``intercept``, ``idf``, ``scaler_mean`` and ``scaler_scale``
item by item through ``base/_validate.read_finite``: a 400-digit integer (which JSON carries and
numpy cannot hold), NaN, a string or a boolean is a one-line InputError naming the field and
never the whole number — not an OverflowError out of ``load_policy``."""
from __future__ import annotations

import json

import pytest
from test_routing_learned import planted_runs

from llmlab import InputError, routing


@pytest.fixture(scope="module")
def saved():
    router = routing.Learned("cheap", "big").fit(planted_runs(90, seed=3))
    many = routing.Learned("cheap", "mid", "big").fit(
        planted_runs(90, seed=4).pipe(lambda df: __import__("pandas").concat(
            [df, df[df.requested_model == "big"].assign(requested_model="mid")])))
    return router.to_dict(), many.to_dict()


HUGE = 10**400


def _edits(data):
    two = data["version"] == 1
    coef = data["coef"]
    yield "coef", {**data, "coef": [HUGE, *coef[1:]] if two else [[HUGE, *coef[0][1:]], *coef[1:]]}
    yield "coef", {**data, "coef": [-HUGE, *coef[1:]] if two else [[True, *coef[0][1:]], *coef[1:]]}
    yield "intercept", {**data, "intercept": HUGE if two else [HUGE, *data["intercept"][1:]]}
    yield "intercept", {**data, "intercept": "1.0" if two else ["nan", *data["intercept"][1:]]}
    yield "idf", {**data, "idf": [HUGE, *data["idf"][1:]]}
    yield "idf", {**data, "idf": [*data["idf"][:-1], -HUGE]}
    yield "scaler_mean", {**data, "scaler_mean": [HUGE, *data["scaler_mean"][1:]]}
    yield "scaler_scale", {**data, "scaler_scale": [*data["scaler_scale"][:-1], HUGE]}


@pytest.mark.parametrize("which", [0, 1], ids=["two models", "three models"])
def test_a_huge_number_is_one_line_naming_the_field(saved, which, tmp_path):
    for field, data in _edits(saved[which]):
        with pytest.raises(InputError, match=f"learned router: {field} must") as info:
            routing.Learned.from_dict(data)
        message = str(info.value)
        assert "\n" not in message and len(message) < 300 and "0" * 100 not in message, message
        path = tmp_path / "router.json"
        path.write_text(json.dumps(data))
        path.chmod(0o600)
        with pytest.raises(InputError, match=field):
            routing.load_policy(path)


def test_the_saved_router_still_loads_and_decides_alike(saved, tmp_path):
    for data in saved:
        router = routing.Learned.from_dict(json.loads(json.dumps(data)))
        assert router.to_dict()["coef"] == data["coef"]
        assert router.decide("Please answer: zebra?").models


def test_a_huge_threshold_is_not_echoed_whole(saved):
    with pytest.raises(InputError, match="401-digit integer"):
        routing.Learned.from_dict({**saved[0], "threshold": HUGE})

"""A cascade's knob above 1 means "never escalate" (what routing.tune picks when the cheap model
alone is good enough): its name says so, not "≥ 1" — which would escalate a disagreement of 1
(every sample different). A loaded run of the live cascade test met it: tuned threshold
1.0000000000000002, named "disagreement ≥ 1"."""
from __future__ import annotations

import math

import numpy as np
import pytest

from llmlab import routing


@pytest.mark.parametrize("make", [lambda t: routing.SelfConsistency("small", "big", samples=3, threshold=t),
                                  lambda t: routing.Verifier("small", "big", threshold=t)])
def test_a_threshold_above_1_is_named_never_and_1_is_named_at_least_1(make):
    for above in (1.5, math.inf, float(np.nextafter(1.0, 2.0))):
        policy = make(above)
        assert policy.threshold == np.nextafter(1.0, 2.0) and "> 1: never" in policy.name and "≥" not in policy.name
        assert "> 1: never" in make(0.5).with_threshold(above).name
    assert "≥ 1)" in make(1.0).name and "never" not in make(1.0).name
    assert "≥ 0.5)" in make(0.5).name

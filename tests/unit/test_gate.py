"""The champion/challenger gate rules on hand-made losses (no model, no database)."""

import math

import numpy as np

from ecgmon.models.registry.gate import GatePolicy, decide, model_figures

NORMAL = np.array([0.10, 0.11, 0.12, 0.13, 0.14, 0.15, 0.16, 0.17, 0.18, 0.30])
ABNORMAL = np.array([0.40, 0.50, 0.60, 0.12])


def test_figures_count_false_alarms_at_the_models_own_threshold():
    fig = model_figures(NORMAL, ABNORMAL, threshold=0.175)
    assert fig.false_alarm_rate == 0.2  # 0.18 and 0.30 of ten normals
    # 0.4, 0.5, 0.6 outrank all ten normals; 0.12 outranks two and ties one (half a pair)
    assert math.isclose(fig.auroc, (30 + 2 + 0.5) / 40)
    assert fig.finite


def test_no_champion_promotes_a_sound_candidate():
    decision = decide(model_figures(NORMAL, None, 0.2), None, 10, 0)
    assert decision.promote and decision.reasons == ["no champion yet"]


def test_candidate_with_more_false_alarms_than_the_tolerance_is_rejected():
    champion = model_figures(NORMAL, ABNORMAL, threshold=0.25)  # far 0.1
    candidate = model_figures(NORMAL, ABNORMAL, threshold=0.135)  # far 0.6
    decision = decide(candidate, champion, 10, 4)
    assert not decision.promote
    assert "false-alarm rate" in decision.reasons[0]
    lax = decide(candidate, champion, 10, 4, GatePolicy(far_tolerance=0.5))
    assert lax.promote


def test_worse_auroc_rejects_and_equal_passes():
    champion = model_figures(NORMAL, ABNORMAL, threshold=0.2)
    worse = model_figures(NORMAL, np.array([0.05, 0.06, 0.07, 0.08]), threshold=0.2)
    assert not decide(worse, champion, 10, 4).promote
    assert decide(champion, champion, 10, 4).promote


def test_degenerate_losses_are_rejected_and_json_has_no_nan():
    flat = model_figures(np.full(10, 0.2), None, 0.2)
    decision = decide(flat, None, 10, 0)
    assert not decision.promote and "no spread" in decision.reasons[0]
    broken = model_figures(np.array([0.1, np.nan, 0.2]), None, 0.15)
    record = decide(broken, None, 3, 0).to_json()
    assert not record["promote"] and "finite" in record["reasons"][0]
    assert record["candidate"]["loss_mean"] is not None
    assert record["candidate"]["auroc"] is None

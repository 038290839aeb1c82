"""The quality bar that decides whether a bundled edit is offered by default."""

from __future__ import annotations

from trainer.quality import GRID_ARTEFACTS, QUALITY_BAR, missed_targets

PASSING = {
    "attribute_success_rate": 0.85,
    "success_over_blur_points": 50.0,
    "identity_kept_rate": 0.97,
    "identity_mean_distance": 0.35,
    "two_sample_accuracy": 0.7,
    "grey_stays_grey": 1.0,
    "already_target_delta_e": 2.0,
    "already_target_identity_distance": 0.2,
}


def test_a_model_meeting_every_target_passes() -> None:
    assert missed_targets(PASSING) == []
    assert {t.key for t in QUALITY_BAR} == set(PASSING)


def test_each_target_can_be_missed_on_its_own_side() -> None:
    for target in QUALITY_BAR:
        worse = target.threshold - 0.01 if target.at_least else target.threshold + 0.01
        assert missed_targets({**PASSING, target.key: worse}) == [target.key]
        assert missed_targets({**PASSING, target.key: target.threshold}) == []  # the bar itself passes


def test_a_missing_measure_is_a_miss() -> None:
    metrics = dict(PASSING)
    del metrics["two_sample_accuracy"]
    assert missed_targets(metrics) == ["two_sample_accuracy"]


def test_targets_read_like_the_issue() -> None:
    texts = {t.key: t.text for t in QUALITY_BAR}
    assert texts["attribute_success_rate"] == "≥ 80%" and texts["identity_mean_distance"] == "≤ 0.4"
    assert texts["two_sample_accuracy"] == "≤ 80%" and texts["already_target_delta_e"] == "≤ 3"


def test_the_looked_at_grid_misses_only_when_artefacts_were_counted() -> None:
    assert missed_targets(PASSING) == []  # nobody looked yet: not a miss (the card says so)
    assert missed_targets({**PASSING, GRID_ARTEFACTS: 0}) == []
    assert missed_targets({**PASSING, GRID_ARTEFACTS: 3}) == [GRID_ARTEFACTS]

"""The classifiers the repository carries (trainer.classifier_store): found after the runs trained here,
installed from a fleet's slim runs only when they are what they claim to be."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.trainer.conftest import classifier_run
from trainer.classifier_store import (
    CLASSIFIERS_DIR,
    ClassifierError,
    carried,
    find_classifier,
    heldout_accuracy,
    install,
)
from trainer.pack import slim_run
from trainer.runs import CHECKPOINT, CONFIG_FILE, STATUS_FILE
from trainer.stage_base import load_trained


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, dataset_dir: Path) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("store")
    return {
        "guide": classifier_run(dataset_dir, root / "runs", "classify", "Eyeglasses", "guide-Eyeglasses"),
        "evaluator": classifier_run(
            dataset_dir, root / "runs", "evaluator", "Eyeglasses", "Eyeglasses-classifier"
        ),
    }


def test_a_run_trained_here_comes_first_then_the_carried_one(runs, tmp_path: Path) -> None:
    runs_dir = runs["guide"].parent
    root = tmp_path / "carried"
    assert find_classifier(tmp_path / "none", "guide", "Eyeglasses", root) is None
    slim = tmp_path / "slim"
    slim_run(runs["evaluator"], slim, "classifier")
    installed = install(slim, "evaluator", "Eyeglasses", root)
    assert installed == root / "evaluator-Eyeglasses" == carried("evaluator", "Eyeglasses", root)
    assert find_classifier(tmp_path / "none", "evaluator", "Eyeglasses", root) == installed
    assert find_classifier(runs_dir, "evaluator", "Eyeglasses", root) == runs["evaluator"]
    assert find_classifier(runs_dir, "guide", "Eyeglasses", root) == runs["guide"]
    assert find_classifier(tmp_path / "none", "guide", "Eyeglasses", root) is None  # no carried guide
    # an unfinished run of the kind does not count
    status = json.loads((runs["guide"] / STATUS_FILE).read_text())
    (runs["guide"] / STATUS_FILE).write_text(json.dumps({**status, "status": "aborted"}))
    try:
        assert find_classifier(runs_dir, "guide", "Eyeglasses", root) is None
    finally:
        (runs["guide"] / STATUS_FILE).write_text(json.dumps(status))


def test_install_carries_a_slim_run_that_loads_and_refuses_the_wrong_one(runs, tmp_path: Path) -> None:
    root = tmp_path / "carried"
    slim = tmp_path / "slim-guide"
    slim_run(runs["guide"], slim, "discriminator")
    target = install(slim, "guide", "Eyeglasses", root)
    assert sorted(p.name for p in root.iterdir()) == ["guide-Eyeglasses"]  # no temporary folder left
    assert heldout_accuracy(target) == heldout_accuracy(runs["guide"]) is not None
    network = load_trained(target, "discriminator", "discriminator_width").eval()
    original = load_trained(runs["guide"], "discriminator", "discriminator_width").eval()
    x = torch.zeros(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(network(x)[0], original(x)[0], atol=2e-2)  # float16 weights
    # a second install replaces the first
    before = (target / CHECKPOINT).stat().st_mtime_ns
    install(slim, "guide", "Eyeglasses", root)
    assert (target / CHECKPOINT).stat().st_mtime_ns >= before
    assert sorted(p.name for p in root.iterdir()) == ["guide-Eyeglasses"]

    with pytest.raises(ClassifierError, match="a 'classify' run for 'Eyeglasses', not a 'evaluator' run"):
        install(slim, "evaluator", "Eyeglasses", root)
    with pytest.raises(ClassifierError, match="not a 'classify' run for 'Male'"):
        install(slim, "guide", "Male", root)
    (slim / STATUS_FILE).write_text(json.dumps({"status": "aborted"}))
    with pytest.raises(ClassifierError, match="did not finish"):
        install(slim, "guide", "Eyeglasses", root)


def test_the_carried_classifiers_are_finished_runs_of_what_they_are_named() -> None:
    """What trainer/classifiers holds (the judges of the cards' numbers) is what its folders say."""
    folders = sorted(CLASSIFIERS_DIR.iterdir()) if CLASSIFIERS_DIR.is_dir() else []
    if not folders:
        pytest.skip("the repository carries no classifiers")
    for folder in folders:
        kind, _, attribute = folder.name.partition("-")
        config = json.loads((folder / CONFIG_FILE).read_text())
        assert config["stage"] == {"guide": "classify", "evaluator": "evaluator"}[kind]
        assert config["attribute"] == attribute
        assert json.loads((folder / STATUS_FILE).read_text())["status"] == "done"
        assert (heldout_accuracy(folder) or 0) > 0.7


def test_evaluate_finds_its_judge_when_none_is_named(runs, tmp_path: Path) -> None:
    """`evaluate MODEL` without --classifier: the model's attribute's evaluator trained here, else the
    carried one; a clear error where there is neither."""
    from trainer.cli import _default_evaluator

    model = tmp_path / "model"
    model.mkdir()
    (model / "manifest.json").write_text(json.dumps({"attribute": "Eyeglasses"}))
    assert _default_evaluator(model, runs["evaluator"].parent) == runs["evaluator"]
    if carried("evaluator", "Eyeglasses") is not None:
        assert _default_evaluator(model, tmp_path / "none") == carried("evaluator", "Eyeglasses")
    (model / "manifest.json").write_text(json.dumps({"attribute": "Bald"}))
    with pytest.raises(ValueError, match=r"no evaluator for Bald in .* nor carried"):
        _default_evaluator(model, tmp_path / "none")
    with pytest.raises(ValueError, match="is not an exported model"):
        _default_evaluator(tmp_path / "nothing", tmp_path / "none")

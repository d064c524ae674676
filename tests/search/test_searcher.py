"""The searcher tells Optuna the right values, and runs the recipes first (real Optuna)."""

from __future__ import annotations

import optuna
import pytest

from qamodels.spaces import RECIPE_VARIANTS, RECIPES, recipes
from search.config import SearchConfig
from search.searcher import FINISHED, make_searcher, startup_trials

METRIC = "valid_accuracy"


@pytest.fixture
def searcher():
    return make_searcher(SearchConfig(arch="dan,cnn_parallel", embeddings=("random",)))


def report(searcher, trial_id: str, values: list[float], finished: bool) -> None:
    """As Ray does: every result but the last to on_trial_result, the last (the one after
    which the trial ended) to on_trial_complete only."""
    results = [{METRIC: v, "training_iteration": epoch} for epoch, v in enumerate(values, 1)]
    for result in results[:-1]:
        searcher.on_trial_result(trial_id, result)
    searcher.on_trial_complete(trial_id, {**results[-1], FINISHED: finished})


def test_recipes_are_the_first_trials(searcher):
    first, wide, second, fourth = (searcher.suggest(f"t{i}") for i in range(4))
    assert [c["arch"] for c in (first, wide, second)] == ["dan", "dan", "cnn_parallel"]
    for config, arch in ((first, "dan"), (second, "cnn_parallel")):
        for key, value in RECIPES[arch].items():
            group, name = key.split("/")
            assert config[group][name] == value
    variant = {key.split("/")[1]: value for key, value in RECIPE_VARIANTS["dan"][0].items()}
    assert {**first["dan"], **variant} == wide["dan"]  # the recipe's variant
    assert fourth["arch"] in ("dan", "cnn_parallel")  # then the sampler takes over


def test_stopped_trial_is_pruned_and_finished_one_complete_with_its_best(searcher):
    for i in range(3):
        searcher.suggest(f"t{i}")
    report(searcher, "t0", [0.5], finished=False)  # the scheduler stopped it after epoch 1
    report(searcher, "t1", [0.6, 0.8, 0.7], finished=True)  # early stopping kept epoch 2
    report(searcher, "t2", [0.4, 0.5], finished=True)  # its best is its last epoch
    trials = searcher.study.get_trials()
    assert [t.state for t in trials] == [
        optuna.trial.TrialState.PRUNED,
        optuna.trial.TrialState.COMPLETE,
        optuna.trial.TrialState.COMPLETE,
    ]
    assert trials[0].intermediate_values == {1: 0.5}  # its value: the last intermediate one
    assert trials[1].value == 0.8 and trials[2].value == 0.5
    assert trials[1].intermediate_values == {1: 0.6, 2: 0.8, 3: 0.7}


def test_a_result_ray_hands_twice_is_reported_once_without_a_warning(searcher, recwarn):
    """Ray may pass the result that ended a trial to on_trial_result and again to
    on_trial_complete: Optuna is told each epoch once (no "already reported" warning)."""
    searcher.suggest("t0")
    first, last = ({METRIC: v, "training_iteration": e} for e, v in ((1, 0.6), (2, 0.7)))
    searcher.on_trial_result("t0", first)
    searcher.on_trial_result("t0", last)
    searcher.on_trial_complete("t0", {**last, FINISHED: True})
    (trial,) = searcher.study.get_trials(states=[optuna.trial.TrialState.COMPLETE])
    assert trial.intermediate_values == {1: 0.6, 2: 0.7} and trial.value == 0.7
    assert not [w for w in recwarn if "already reported" in str(w.message)]


def test_errored_trial_is_failed(searcher):
    searcher.suggest("t0")
    searcher.on_trial_complete("t0", None, error=True)
    assert searcher.study.get_trials()[0].state == optuna.trial.TrialState.FAIL


def test_sampler_settings_scale_with_the_budget():
    sampler = make_searcher(SearchConfig(num_samples=60)).study.sampler
    assert isinstance(sampler, optuna.samplers.TPESampler)
    assert sampler._n_startup_trials == startup_trials(60, SearchConfig().archs) == 12
    assert startup_trials(8, ["dan", "bilstm", "cnn_parallel"]) == 3
    assert [p.get("dan/wide") for p in recipes(["dan"], ["random"])] == [0, 2]  # + its variant
    assert len(recipes(["cnn_parallel"], ["random"])) == 1

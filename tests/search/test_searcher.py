"""The searcher tells Optuna the right values, and runs the recipes first (real Optuna)."""

from __future__ import annotations

from collections import Counter

import optuna
import pytest

from qamodels.spaces import RECIPE_VARIANTS, RECIPES, recipes
from search.config import SearchConfig
from search.searcher import DECLINED, FINISHED, family_cap, make_searcher, startup_trials

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


def run_search(searcher, score: dict[str, float], trials: int) -> list[str]:
    """Each trial suggested, then finished with its family's score: the archs trained."""
    archs = []
    for i in range(trials):
        config = searcher.suggest(f"t{i}")
        archs.append(config["arch"])
        report(searcher, f"t{i}", [score[config["arch"]]], finished=True)
    return archs


@pytest.mark.parametrize("share", [0.25, 1.0])
def test_no_family_takes_more_than_its_share(share):
    """TPE follows the family that leads (here the DAN, by far): with a cap, the trials it
    draws past the DAN's share go to the best family below its own cap, each trained trial
    a real one (the declined draws are never suggested); with share=1, no cap."""
    config = SearchConfig(arch="dan,cnn_parallel,cnn_stacked", embeddings=("random",),
                          num_samples=20, family_share=share)  # fmt: skip
    searcher = make_searcher(config)
    score = {"dan": 0.9, "cnn_parallel": 0.6, "cnn_stacked": 0.5}
    counts = Counter(run_search(searcher, score, config.num_samples))
    cap = family_cap(20, config.archs, share)
    if share < 1:
        assert cap == 7  # an even split of 20 over three families is above a quarter
        assert counts == {"dan": 7, "cnn_parallel": 7, "cnn_stacked": 6}
    else:
        assert cap == 0 and counts["dan"] > 7  # TPE alone: the DAN past the cap's share
    trained = [t for t in searcher.study.get_trials() if not t.user_attrs.get(DECLINED)]
    assert Counter(t.params["arch"] for t in trained) == counts


def test_the_cap_survives_a_resume(tmp_path):
    """The searcher saved and restored (as Ray does for resume) keeps its cap and counts."""
    config = SearchConfig(arch="dan,cnn_parallel", embeddings=("random",), num_samples=12,
                          family_share=0.25)  # fmt: skip
    searcher = make_searcher(config)
    score = {"dan": 0.9, "cnn_parallel": 0.5}
    first = run_search(searcher, score, 8)
    searcher.save(str(tmp_path / "searcher.pkl"))
    restored = make_searcher(config)
    restored.restore(str(tmp_path / "searcher.pkl"))
    counts = Counter(first + run_search(restored, score, 4))
    assert counts == {"dan": 6, "cnn_parallel": 6}

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


def run_search(searcher, score: dict[str, float], trials: int, seconds: dict[str, float]):
    """Each trial suggested, then finished with its family's score after its family's
    training time: the archs trained."""
    archs = []
    for i in range(trials):
        arch = searcher.suggest(f"t{i}")["arch"]
        archs.append(arch)
        result = {METRIC: score[arch], "training_iteration": 1, "time_total_s": seconds[arch]}
        searcher.on_trial_complete(f"t{i}", {**result, FINISHED: True})
    return archs


SCORE = {"dan": 0.9, "cnn_parallel": 0.6, "cnn_stacked": 0.5}


@pytest.mark.parametrize(("share", "dan_seconds"), [(0.25, 30.0), (0.25, 1.0), (1.0, 30.0)])
def test_a_costly_family_takes_no_more_than_its_share(share, dan_seconds, caplog):
    """TPE follows the family that leads (here the DAN, by far). Where its trials cost more
    than the average, the trials TPE draws for it past its share go to the best family it
    may go to (the declined draws are never suggested); where they cost less, or with
    share=1, TPE has its way."""
    config = SearchConfig(arch="dan,cnn_parallel,cnn_stacked", embeddings=("random",),
                          num_samples=20, family_share=share)  # fmt: skip
    searcher = make_searcher(config)
    seconds = {"dan": dan_seconds, "cnn_parallel": 5.0, "cnn_stacked": 5.0}
    with caplog.at_level("INFO", logger="search.searcher"):
        counts = Counter(run_search(searcher, SCORE, config.num_samples, seconds))
    said = [r.getMessage() for r in caplog.records if "has had its share" in r.getMessage()]
    cap = family_cap(20, config.archs, share)
    if share < 1 and dan_seconds > 5:
        assert cap == 7  # an even split of 20 over three families is above a quarter
        assert counts["dan"] == 7  # the rest to the best of the others, cheap past its cap
        assert counts["cnn_parallel"] == 20 - 7 - counts["cnn_stacked"] > 7
        assert len(said) == 1 and said[0].startswith("dan has had its share of the trials (7)")
    else:
        assert counts["dan"] > 7 + 3  # TPE alone: the DAN well past the cap
        assert cap == (7 if share < 1 else 0) and not said
    trained = [t for t in searcher.study.get_trials() if not t.user_attrs.get(DECLINED)]
    assert Counter(t.params["arch"] for t in trained) == counts


def test_the_cap_survives_a_resume(tmp_path):
    """The searcher saved and restored (as Ray does for resume) keeps its cap and counts."""
    config = SearchConfig(arch="dan,cnn_parallel", embeddings=("random",), num_samples=12,
                          family_share=0.25)  # fmt: skip
    searcher = make_searcher(config)
    seconds = {"dan": 30.0, "cnn_parallel": 5.0}
    first = run_search(searcher, SCORE, 8, seconds)
    searcher.save(str(tmp_path / "searcher.pkl"))
    restored = make_searcher(config)
    restored.restore(str(tmp_path / "searcher.pkl"))
    counts = Counter(first + run_search(restored, SCORE, 4, seconds))
    assert counts == {"dan": 6, "cnn_parallel": 6}

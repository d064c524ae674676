"""`arch=all` with a real local Ray, real Optuna and ASHA on a slice of the Amazon sample."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from qamodels.baseline import fit_baseline
from qamodels.config import TrainConfig
from qamodels.registry import ARCHITECTURES
from qamodels.spaces import RECIPE_VARIANTS, RECIPES
from search.config import SearchConfig
from search.ensemble import ENSEMBLE_DIR, MARGIN, read_manifest
from search.held_out import finish
from search.leaderboard import leaderboard, trial_rows
from search.predict import EnsemblePredictor, Predictor
from search.searcher import FINISHED, OptunaSearcher
from search.tensorboard import SCALARS, flatten
from tests.conftest import REPO

pytestmark = pytest.mark.e2e  # whole searches (python -m pytest -m "not e2e": the fast tier)

MAX_EPOCHS = 3


@pytest.fixture(scope="module")
def finished_search(local_ray, prepared_sample, tmp_path_factory):
    from search.run import run_search

    config = SearchConfig(
        arch="all",
        # Each architecture's first trial (its recipe) is never stopped: 12 trials leave the
        # scheduler trials to stop beside those six (8 left it none).
        num_samples=12,
        max_epochs=MAX_EPOCHS,
        grace_period=1,
        reduction_factor=2,
        max_concurrent=2,
        # Training keys fixed for the whole search (python -m search.run grad_clip=0.5 ...).
        train=TrainConfig(max_train_rows=1200, seed=3, grad_clip=0.5, bucket=False, amp=False),
        storage_path=str(tmp_path_factory.mktemp("res")),
        name="all_archs",
        embeddings=("random", "frozen"),
        pretrain="false",  # tests/search/test_pretraining.py
        gpus_per_trial="0",  # the CPU placement (tests/search/test_resources.py: the GPU share)
        refit=False,  # the trials' own models exported (tests/search/test_refit.py: refit)
    )
    results, board = run_search(config, prepared_sample)
    return config, results, board


def study_of(config: SearchConfig) -> optuna.Study:
    """The searcher's Optuna study as Ray saved it with the experiment."""
    return OptunaSearcher.from_dir(str(config.experiment_path)).study


def hparams_of(accumulator: EventAccumulator, tag: str):
    content = accumulator.SummaryMetadata(tag).plugin_data.content
    return plugin_data_pb2.HParamsPluginData.FromString(content)


def test_every_trial_ran_with_only_its_architecture_parameters(finished_search):
    config, results, _board = finished_search
    assert len(results) == config.num_samples and not results.errors
    seen = set()
    for result in results:
        arch = result.config["arch"]
        seen.add(arch)
        assert set(result.config) == {"arch", arch, "train"}
        assert set(result.config[arch]) <= set(ARCHITECTURES[arch].defaults)
    assert len(seen) >= 3  # the searcher really chose among architectures


def test_asha_stopped_some_trials_early(finished_search):
    config, _results, _board = finished_search
    trials = pd.read_csv(config.experiment_path / "trials.csv")
    assert (trials["epochs"] < MAX_EPOCHS).any()
    assert (trials["epochs"] == MAX_EPOCHS).any()


def test_a_resume_restores_the_schedulers_rungs_into_the_scheduler_it_runs(finished_search):
    """Ray Tune saves callbacks, not schedulers: search/schedulers.py SchedulerState carries
    the scheduler's state, and must restore it into the very scheduler the resumed search
    uses (both come back from one pickle, tuner.pkl)."""
    import pickle

    from search.schedulers import SchedulerState

    config, _results, _board = finished_search
    tuner_state = pickle.loads((config.experiment_path / "tuner.pkl").read_bytes())
    scheduler = tuner_state["_tune_config"].scheduler
    (holder,) = [c for c in tuner_state["_run_config"].callbacks if isinstance(c, SchedulerState)]
    assert holder._scheduler is scheduler
    (saved,) = config.experiment_path.glob("callback-states-*.pkl")
    states = pickle.loads(saved.read_bytes())
    holder.set_state(next(s for s in states.values() if s and "scheduler" in s))
    rungs = dict(scheduler._later._brackets[0]._rungs)  # milestone epoch -> trial -> score
    epochs = pd.read_csv(config.experiment_path / "trials.csv")["epochs"]
    assert len(rungs[2]) == (epochs >= 2).sum() >= 1  # every trial that reached epoch 2


def test_a_finished_search_keeps_each_model_once_and_no_resumable_state(finished_search):
    """A 40-trial search once wrote 3.0 GB: every trial's resumable state (5x its model)
    stayed after the end, and best_model/ and best_ensemble/ copied the trials' models."""
    config, _results, _board = finished_search
    experiment = config.experiment_path
    assert not list(experiment.glob("*/checkpoint_*"))
    stored = {f.stat().st_ino for f in experiment.glob("*_*/best_model/model.pt")}
    stored |= {f.stat().st_ino for f in (experiment / "baseline").iterdir()}
    exported = [experiment / "best_model" / "model.pt",
                *(experiment / ENSEMBLE_DIR).glob("*/*.*")]  # fmt: skip
    assert len(exported) >= 2 and all(f.stat().st_ino in stored for f in exported)


def test_leaderboard_and_exported_model(finished_search, prepared_sample):
    config, _results, board = finished_search
    saved = pd.read_csv(config.experiment_path / "leaderboard.csv")
    assert list(saved["arch"]) == list(board["arch"]) and saved["arch"].is_unique
    # The best single model (search/choice.py) leads, the others best on valid first; it
    # is final.csv's chosen row and best_model/ is its trial's model (refit=false here).
    assert saved["valid_accuracy"].iloc[1:].is_monotonic_decreasing
    final = pd.read_csv(config.experiment_path / "final.csv")
    chosen = final[final["best_single"].eq(True)]
    assert list(chosen["trial"]) == [saved["trial"].iloc[0]]
    assert "| arch |" in (config.experiment_path / "leaderboard.md").read_text()
    best_dir = config.experiment_path / "best_model"
    trial_model = next(config.experiment_path.glob(f"*_{saved['trial'].iloc[0]}/best_model"))
    assert (best_dir / "model.pt").stat().st_ino == (trial_model / "model.pt").stat().st_ino
    for name in ("model.pt", "metrics.json", "confusion.png", "loss_epochs.png"):
        assert (best_dir / name).is_file()
    predictor = Predictor.load(best_dir)
    probs = predictor.probabilities(prepared_sample.texts("valid")[:300])
    assert probs.sum(-1).sub(1).abs().max() < 1e-5
    accuracy = (probs.argmax(-1).numpy() == prepared_sample.valid.label[:300]).mean()
    assert accuracy == pytest.approx(saved["valid_accuracy"].iloc[0], abs=0.1)
    assert predicted_by_cli(best_dir, "will this game run on ps4?") in prepared_sample.labels


def predicted_by_cli(model_dir: Path, question: str) -> str:
    """The class `python -m search.predict` prints for one question."""
    out = subprocess.run(
        [sys.executable, "-m", "search.predict", f"model={model_dir}", question],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()[1].removeprefix("  -> ")


def hparams_dashboard(logdir: Path):
    """What TensorBoard's HParams dashboard shows for logdir: its experiment (the columns)
    and its session groups (the rows), computed by the plugin's own backend."""
    from tensorboard import context
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.hparams import api_pb2, backend_context, list_session_groups

    multiplexer = plugin_event_multiplexer.EventMultiplexer()
    multiplexer.AddRunsFromDirectory(str(logdir))
    multiplexer.Reload()
    provider = data_provider.MultiplexerDataProvider(multiplexer, str(logdir))
    backend = backend_context.Context(
        base_plugin.TBContext(logdir=str(logdir), multiplexer=multiplexer, data_provider=provider)
    )
    request = context.RequestContext()
    metadata = backend.hparams_metadata(request, "")
    experiment = backend.experiment_from_metadata(
        request, "", True, metadata, backend.hparams_from_data_provider(request, "", None)
    )
    query = api_pb2.ListSessionGroupsRequest(
        start_index=0,
        slice_size=1000,
        allowed_statuses=[api_pb2.STATUS_UNKNOWN, api_pb2.STATUS_SUCCESS, api_pb2.STATUS_RUNNING],
    )
    groups = list_session_groups.Handler(request, backend, "", query).run().session_groups
    return experiment, groups


def test_hparams_dashboard_lists_every_trial_with_all_its_parameters(finished_search):
    config, results, _board = finished_search
    experiment, groups = hparams_dashboard(config.experiment_path)
    columns = {h.name for h in experiment.hparam_infos}
    assert columns == {k for r in results for k in flatten(r.config)}  # every arch's params
    assert len(groups) == len(results)
    final = {Path(r.path).name: r.metrics_dataframe["valid_accuracy"].iloc[-1] for r in results}
    for group in groups:
        trial = group.name.split("/")[0]
        assert set(group.hparams) == set(
            flatten(next(r.config for r in results if Path(r.path).name == trial))
        )
        shown = {m.name.tag: m.value for m in group.metric_values}
        assert shown["valid_accuracy"] == pytest.approx(final[trial])


def test_tensorboard_holds_scalars_and_hparams_of_every_trial(finished_search):
    config, results, _board = finished_search
    union = set()
    for result in results:
        events = EventAccumulator(str(Path(result.path) / "tensorboard"))
        events.Reload()
        epochs = len(result.metrics_dataframe)
        for tag in SCALARS:
            assert [e.step for e in events.Scalars(tag)] == list(range(1, epochs + 1))
        start = hparams_of(events, "_hparams_/session_start_info").session_start_info
        assert set(start.hparams) == set(flatten(result.config))
        assert start.hparams["arch"].string_value == result.config["arch"]
        assert events.Tags()["images"] == ["confusion_matrix/best_epoch"]
        union |= set(start.hparams)
    root = EventAccumulator(str(config.experiment_path / "tensorboard"))
    root.Reload()
    experiment = hparams_of(root, "_hparams_/experiment").experiment
    assert {h.name for h in experiment.hparam_infos} == union
    assert {m.name.tag for m in experiment.metric_infos} >= {"valid_accuracy", "valid_macro_f1"}


def test_recipes_run_first(finished_search):
    config, results, _board = finished_search
    expected = [(a, change) for a in ARCHITECTURES for change in [{}, *RECIPE_VARIANTS.get(a, [])]]
    first = study_of(config).get_trials()[: len(expected)]
    # One recipe each, in order, each followed by its variants (the wide DAN).
    assert [t.params["arch"] for t in first] == [a for a, _ in expected]
    for trial, (arch, change) in zip(first, expected, strict=True):
        recipe = {**RECIPES[arch], **change}
        assert {k: trial.params[k] for k in recipe} == recipe
    ran = [flatten(r.config) for r in results]
    assert all(any(all(c.get(k) == v for k, v in RECIPES[a].items()) for c in ran) for a in RECIPES)


def test_trials_the_scheduler_stopped_reach_optuna_as_pruned(finished_search):
    config, results, _board = finished_search
    study = study_of(config)
    stopped = [r for r in results if not r.metrics.get(FINISHED)]
    finished = [r for r in results if r.metrics.get(FINISHED)]
    assert stopped and finished
    states = [t.state for t in study.get_trials()]
    assert states.count(optuna.trial.TrialState.PRUNED) == len(stopped)
    complete = sorted(t.value for t in study.get_trials() if t.value is not None and
                      t.state == optuna.trial.TrialState.COMPLETE)  # fmt: skip
    best = sorted(r.metrics_dataframe["valid_accuracy"].max() for r in finished)
    assert complete == pytest.approx(best)  # each with its best epoch, not its last


def test_final_table_has_baseline_arch_bests_and_ensemble_on_test(finished_search,
                                                                   prepared_sample):  # fmt: skip
    config, _results, board = finished_search
    final = pd.read_csv(config.experiment_path / "final.csv")
    baseline = final[final["model"] == "baseline"].iloc[0]
    assert baseline["valid_accuracy"] > 0.6 and baseline["test_accuracy"] > 0.6
    singles = final[final["model"] == "best of arch"]
    assert set(singles["trial"]) == set(board["trial"])
    assert singles["test_accuracy"].between(0, 1).all()
    ensemble = final[final["model"] == "ensemble"].iloc[0]
    # Never clearly below the best candidate on valid: where valid cannot tell near-equal
    # models apart, the ensemble is their average (search/ensemble.py), which may sit a few
    # rows under the best of them, within MARGIN standard deviations of the difference.
    best = max(singles["valid_accuracy"].max(), baseline["valid_accuracy"])
    assert ensemble["valid_accuracy"] >= best - MARGIN / np.sqrt(len(prepared_sample.valid))
    assert final["test_lift"].notna().all() and baseline["test_lift"] == 0
    report = (config.experiment_path / "report.md").read_text()
    assert "| baseline |" in report and "| ensemble |" in report
    assert "No model was refit" in report and "(refit=false)" in report  # the fixture's choice
    spent = report.split("## Where the budget went")[1].split("##")[0]
    trials = pd.read_csv(config.experiment_path / "trials.csv")
    for key in ("arch", "embedding"):  # each family's and mode's trials, as trials.csv has them
        for value, count in trials[key].value_counts().items():
            assert f"| {value} | {count} |" in spent, (value, count, spent)
    assert (config.experiment_path / "anytime.png").stat().st_size > 0


def test_model_choice_never_reads_the_test_labels(finished_search, prepared_sample, tmp_path):
    """Scoring again with the test labels shuffled changes test scores only: the models per
    architecture, the ensemble's members and its weights are chosen on valid alone."""
    config, results, _board = finished_search
    rows = trial_rows(results, config.metric, config.mode, config.experiment_path)
    board = leaderboard(rows, config.metric, config.mode)
    shuffled = np.random.default_rng(0).permutation(prepared_sample.test.label)
    scrambled = dataclasses.replace(
        prepared_sample, test=dataclasses.replace(prepared_sample.test, label=shuffled)
    )
    original = read_manifest(config.experiment_path / ENSEMBLE_DIR)["members"]
    baseline = fit_baseline(scrambled, config.train.max_train_rows, config.seed)
    again = finish(rows, board, scrambled, baseline, config.metric, config.mode, 8, tmp_path)
    assert read_manifest(tmp_path / ENSEMBLE_DIR)["members"] == original
    singles = again.table[again.table["model"] == "best of arch"]
    assert set(singles["trial"]) == set(board["trial"])
    assert singles["test_accuracy"].max() < 0.6  # the scores did see the shuffled labels


def test_predict_loads_the_ensemble(finished_search, prepared_sample):
    config, _results, _board = finished_search
    directory = config.experiment_path / ENSEMBLE_DIR
    predictor = EnsemblePredictor.load(directory)
    probs = predictor.probabilities(prepared_sample.texts("test"))
    assert probs.sum(-1).sub(1).abs().max() < 1e-4
    final = pd.read_csv(config.experiment_path / "final.csv").set_index("model")
    accuracy = (probs.argmax(-1).numpy() == prepared_sample.test.label).mean()
    assert accuracy == pytest.approx(final.loc["ensemble", "test_accuracy"], abs=0.002)
    assert predicted_by_cli(directory, "does it fit an iphone?") in prepared_sample.labels


def test_fixed_training_keys_reach_every_trial(finished_search):
    _config, results, _board = finished_search
    for result in results:
        saved = torch.load(Path(result.path) / "best_model" / "model.pt", weights_only=True)
        train = saved["train_config"]
        assert (train["grad_clip"], train["bucket"], train["amp"]) == (0.5, False, False)
        assert train["lr"] == result.config["train"]["lr"]  # the sampled value laid over

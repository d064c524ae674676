"""The end of a search: leaderboard, held-out test scores, ensemble, TensorBoard experiment,
report and exported models, published at once; or, for a search stopped before its trials
ended, the valid-only leaderboard marked PARTIAL and the resume command."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from data_prep import PreparedData
from data_prep.interrupt import GUARD, Interrupted
from search import budget
from search.baseline import baseline_result, cancel_baseline
from search.checkpoints import remove_resumable_states
from search.config import SearchConfig, SearchError, SearchInterrupted
from search.ensemble import ENSEMBLE_DIR
from search.experiment import mark_partial, resume_command
from search.held_out import finish, with_refit_scores
from search.interrupt import STOPPED_FOR, ended_trials
from search.leaderboard import (
    chosen_first,
    export_best,
    leaderboard,
    trial_rows,
    write_leaderboard,
)
from search.publish import staged
from search.refit import refit_best
from search.report import REPORT_FILE, write_report
from search.resources import Placement
from search.tensorboard import write_experiment
from search.trainable import BEST_MODEL_DIR, resolved_config


def trials_of(results) -> list:
    """Ray's trials behind a ResultGrid, with their status (Ray 2.60, pinned: the grid itself
    does not say which trials are still pending)."""
    return results._experiment_analysis.trials


def interrupted(results, config: SearchConfig) -> bool:
    """Stopped before every trial ended: a signal, no node for the trials, or the driver's
    Ray went away. Under a time budget that ended, the trials that never began are not due."""
    if GUARD.received is not None or STOPPED_FOR:
        return True
    expected = len(results) if budget.ended() else config.num_samples
    return ended_trials(trials_of(results)) < expected


def headline(table: pd.DataFrame) -> str:
    """The result in one line: test accuracy of the ensemble, the best single model and the
    baseline (all chosen on valid)."""
    parts = []
    for kind, name in (("ensemble", "ensemble"), ("best of arch", "best single"),
                       ("baseline", "baseline")):  # fmt: skip
        found = table[table["model"] == kind]
        if len(found):
            row = found.iloc[0]
            refit = ", refit" if row.get("refit") else ""
            label = name if kind == "ensemble" else f"{name} ({row['arch']}{refit})"
            parts.append(f"{label} {row['test_accuracy']:.4f}")
    again = table[table["model"] == "baseline refit"]
    if len(again) and parts:  # beside a refit best single: the baseline refit the same way
        parts[-1] += f" (refit on train+valid {again.iloc[0]['test_accuracy']:.4f})"
    return "test accuracy: " + ", ".join(parts)


def conclude(config: SearchConfig, data: PreparedData, results, baseline, placement: Placement):
    """Leaderboard, held-out scores, ensemble, TensorBoard, report, best model: the whole set
    when the search ended; valid-only and marked PARTIAL when it was interrupted. Written in
    the experiment directory (for a URI, its local copy, then sent there)."""
    location, experiment_dir = config.location, config.experiment_path
    location.pull_trials()  # a URI's trials: their results, events and best models
    rows = trial_rows(results, config.metric, config.mode, experiment_dir)
    board = leaderboard(rows, config.metric, config.mode)
    if results.errors:
        print(f"{len(results.errors)} of {len(results)} trials failed:", file=sys.stderr)
        for error in results.errors:
            print(f"  {str(error).strip().splitlines()[-1][:300]}", file=sys.stderr)
    mark_partial(location)  # until the final phase has published everything
    if interrupted(results, config):
        cancel_baseline(baseline)
        write_leaderboard(board, rows, pd.DataFrame(), experiment_dir, partial=True)
        location.push(["leaderboard.md", "leaderboard.csv", "trials.csv"])
        ended = f"{ended_trials(trials_of(results))} of {config.num_samples} trials had ended"
        if GUARD.received is not None:
            raise Interrupted(GUARD.received, ended)
        if STOPPED_FOR:
            raise SearchInterrupted(
                f"search stopped: {STOPPED_FOR[0]} ({ended}; leaderboard.md is marked PARTIAL)."
                f" Resume: {resume_command(location)}"
            )
        raise SearchInterrupted(
            f"search stopped before its trials ended ({ended}); nothing final was written "
            f"(leaderboard.md is marked PARTIAL). Resume: {resume_command(location)}"
        )
    if board.empty:
        rows.drop(columns=["path"]).to_csv(experiment_dir / "trials.csv", index=False)
        location.push(["trials.csv"])
        raise SearchError(f"no trial reported a result: see the errors above ({len(rows)} trials)")
    baseline = baseline_result(baseline)
    with staged(experiment_dir, location) as out:  # nothing appears until all of it is written
        held_out = finish(rows, board, data, baseline, config.metric, config.mode,
                       config.ensemble_top, out)  # fmt: skip
        choice = held_out.best_single
        if choice is not None:
            board = chosen_first(board, choice.chosen.name)
        refit = refit_best(board, rows, config, data, placement, out / BEST_MODEL_DIR)
        if refit is not None:
            held_out = with_refit_scores(held_out, refit, data, baseline,
                                         config.train.max_train_rows, config.seed)  # fmt: skip
        why = choice.describe() if choice is not None else ""
        table = write_leaderboard(board, rows, held_out.table, out, why=why)
        configs = [resolved_config(experiment_dir / Path(r.path).name, r.config)
                   for r in results if r.config]  # fmt: skip
        write_experiment(out, configs, held_out.table)
        write_report(experiment_dir, held_out.table, rows, results, config, baseline, out)
        best = export_best(board, rows, out, refitted=refit is not None)
    if not config.keep_checkpoints:
        freed = remove_resumable_states(location)
        print(f"removed the trials' resumable states ({freed / 2**20:.0f} MB; "
              "keep_checkpoints=true keeps them)")  # fmt: skip
    print(table)
    if budget.ended():
        print(f"time_budget={config.time_budget} ended the search: {len(results)} of "
              f"{config.num_samples} trials ran")  # fmt: skip
    print(f"compare trials: tensorboard --logdir {experiment_dir}")
    print(f"report: {location.uri(REPORT_FILE)}")
    ensemble = f", best ensemble: {location.uri(ENSEMBLE_DIR)}" if held_out.ensemble_dir else ""
    print(f"best model: {location.uri(best.name) if best else None}{ensemble}")
    print(f"predict: python -m search.predict model={location.uri()} (the better on valid)")
    print(headline(held_out.table))
    return results, board

"""report.md and its PNGs in the experiment directory: what the search found, and how.

- baseline / each architecture's best / best single / ensemble on valid and held-out test;
- where the budget went: per architecture and embedding mode, the trials, their share of the
  trial-seconds and the best valid score (a costly family's share of the trials is capped:
  search/searcher.py);
- anytime curves (`anytime.png`): best-so-far valid score against cumulative epochs and wall
  time, the baseline's valid score as the bar;
- hyperparameter importance (`importance.png`): Optuna's fANOVA over the trials the searcher
  saw finish (its saved state in the experiment directory), on the parameters every trial has.
"""

from __future__ import annotations

from pathlib import Path

import optuna
import pandas as pd
from ray.tune import ResultGrid

from qamodels.baseline import BaselineResult
from qamodels.plots import plt, save_figure
from search import budget
from search.config import SearchConfig
from search.leaderboard import budget_spent
from search.markdown import markdown_table
from search.searcher import OptunaSearcher

REPORT_FILE = "report.md"


def anytime(results: ResultGrid, metric: str, mode: str) -> pd.DataFrame:
    """Every epoch of every trial in the order they finished, with the best score so far."""
    frames = [r.metrics_dataframe for r in results if r.metrics_dataframe is not None]
    frames = [f[["timestamp", metric]] for f in frames if metric in f and len(f)]
    if not frames:
        return pd.DataFrame(columns=["epochs", "wall_s", metric, "best"])
    epochs = pd.concat(frames).sort_values("timestamp", kind="stable").reset_index(drop=True)
    best = epochs[metric].cummin() if mode == "min" else epochs[metric].cummax()
    return pd.DataFrame(
        {
            "epochs": range(1, len(epochs) + 1),
            "wall_s": epochs["timestamp"] - epochs["timestamp"].iloc[0],
            metric: epochs[metric],
            "best": best,
        }
    )


def plot_anytime(curve: pd.DataFrame, metric: str, bar: float | None, out: Path) -> Path:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, x, label in zip(
        axes, ("epochs", "wall_s"), ("epochs (all trials)", "wall s"), strict=True
    ):
        ax.plot(curve[x], curve[metric], ".", alpha=0.3, label="an epoch")
        ax.step(curve[x], curve["best"], where="post", label="best so far")
        if bar is not None:
            ax.axhline(bar, color="red", ls="--", label="baseline")
        ax.set(xlabel=label, ylabel=metric)
    axes[0].legend()
    axes[0].set_ylim(bottom=max(0.0, curve["best"].min() - 0.05) if len(curve) else 0)
    fig.suptitle("Anytime performance of the search (valid)")
    return save_figure(fig, out / "anytime.png")


def importances(experiment_dir: Path, seed: int) -> dict[str, float]:
    """fANOVA importances over the finished trials of the searcher's saved study; empty
    when fewer than two trials finished (pruned trials carry no final value)."""
    try:
        study = OptunaSearcher.from_dir(str(experiment_dir)).study
    except (FileNotFoundError, RuntimeError):
        return {}
    finished = study.get_trials(deepcopy=False, states=[optuna.trial.TrialState.COMPLETE])
    if len(finished) < 2:
        return {}
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=seed)
    try:
        return optuna.importance.get_param_importances(study, evaluator=evaluator)
    except (ValueError, RuntimeError):  # e.g. no parameter common to every finished trial
        return {}


def plot_importance(found: dict[str, float], out: Path) -> Path:
    names = list(found)[::-1]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(names) + 1.5))
    ax.barh(names, [found[n] for n in names])
    ax.set(xlabel="importance (fANOVA)", title="What mattered, over the finished trials")
    return save_figure(fig, out / "importance.png")


def write_report(
    experiment_dir: Path,
    final: pd.DataFrame,
    rows: pd.DataFrame,
    results: ResultGrid,
    config: SearchConfig,
    baseline: BaselineResult | None,
    out: Path | None = None,
) -> Path:
    """report.md and its PNGs into `out` (default: the experiment directory, whose saved
    searcher state gives the importances)."""
    out = out or experiment_dir
    lines = ["# Search report", ""]
    epochs = int(rows["epochs"].fillna(0).sum()) if "epochs" in rows else 0
    lines += [f"{len(rows)} trials, {epochs} epochs; metric {config.metric}.", ""]
    if budget.ended():
        lines += [f"The time budget (time_budget={config.time_budget}) ended the search: "
                  f"{len(rows)} of {config.num_samples} trials ran.", ""]  # fmt: skip
    if len(final):
        lines += ["## Baseline, best single, ensemble", "", summary(final), ""]
        lines += [refit_note(final, config.refit), ""]
        lines += ["## Every architecture's best", "", markdown_table(final), ""]
    lines += budget_section(rows, config)
    curve = anytime(results, config.metric, config.mode)
    if len(curve):
        bar = baseline.valid["accuracy"] if baseline and config.metric == "valid_accuracy" else None
        plot_anytime(curve, config.metric, bar, out)
        lines += ["## Anytime", "", "![anytime](anytime.png)", ""]
    found = importances(experiment_dir, config.seed)
    lines += ["## Hyperparameter importance", ""]
    if found:
        plot_importance(found, out)
        table = pd.DataFrame({"parameter": list(found), "importance": list(found.values())})
        lines += [markdown_table(table), "", "![importance](importance.png)", ""]
    else:
        lines += ["Fewer than two trials finished (the rest were pruned): no importances.", ""]
    path = out / REPORT_FILE
    path.write_text("\n".join(lines))
    return path


def budget_section(rows: pd.DataFrame, config: SearchConfig) -> list[str]:
    """Where the budget went, per architecture, then per embedding mode."""
    if "wall_s" not in rows or rows["wall_s"].isna().all():
        return []
    lines = ["## Where the budget went", ""]
    for keys in (["arch"], ["embedding"]):
        table = budget_spent(rows, keys, config.metric, config.mode)
        table["minutes"] = table["minutes"].map("{:.1f}".format)  # whole tenths, not 4 places
        table["time_share"] = table["time_share"].map("{:.0%}".format)
        lines += [markdown_table(table), ""]
    return lines


def summary(final: pd.DataFrame) -> str:
    """Baseline, the best single model (search/choice.py; the table ranks it first among
    the architectures' best) and the ensemble."""
    picks = []
    for kind in ("baseline", "baseline refit", "best of arch", "ensemble"):
        found = final[final["model"] == kind]
        if len(found):
            picks.append(found.head(1))
    table = pd.concat(picks).replace({"model": {"best of arch": "best single"}})
    return markdown_table(table)


def refit_note(final: pd.DataFrame, asked: bool) -> str:
    """Which model was refit on train + valid (search/refit.py), or why none was."""
    refit = final[final["refit"].astype(bool)] if "refit" in final else final.iloc[:0]
    if refit.empty:
        why = "refit pays only for the CNNs, search/refit.py" if asked else "refit=false"
        return f"No model was refit: every model is as its trial trained it on train ({why})."
    row = refit.iloc[0]
    return (f"best_model/ is the best single model ({row['arch']}, trial {row['trial']}) refit "
            f"on {row['refit']} (the epochs its trial chose on valid): its test scores are "
            "the refit's, its valid scores the trial's, and its lift is counted against the "
            "baseline refit on train + valid too (the \"baseline refit\" row). The ensemble's "
            "members are as their trials trained them.")  # fmt: skip

"""After the search: one row per trial, the leaderboard, and the exported best model."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
from ray.tune import ResultGrid

from data_prep.atomic import link_or_copy
from qamodels import plots
from search.markdown import markdown_table
from search.trainable import BEST_MODEL_DIR

COLUMNS = [
    "arch",
    "embedding",
    "trial",
    "status",
    "valid_accuracy",
    "valid_macro_f1",
    "valid_loss",
    "best_epoch",
    "epochs",
    "wall_s",
    "parameters",
]


def trial_rows(results: ResultGrid, metric: str, mode: str, experiment_dir: Path) -> pd.DataFrame:
    """The best epoch of every trial (errored trials too, with their status); `path`: its
    directory in `experiment_dir` (for a URI's experiment, the local copy)."""
    rows = []
    for result in results:
        history = result.metrics_dataframe
        config = result.config or {}
        # A trial that never reported has no metrics: its directory names it.
        trial_id = (result.metrics or {}).get("trial_id") or Path(result.path).name
        embedding = config.get("train", {}).get("embedding", "")
        row = {"arch": config.get("arch"), "embedding": embedding, "trial": trial_id,
               "path": str(experiment_dir / Path(result.path).name)}  # fmt: skip
        if history is None or history.empty or metric not in history:
            rows.append({**row, "status": "error" if result.error else "no report"})
            continue
        best = history.loc[history[metric].idxmin() if mode == "min" else history[metric].idxmax()]
        rows.append(
            {
                **row,
                "status": "error" if result.error else "ok",
                **{k: float(best[k]) for k in ("valid_accuracy", "valid_macro_f1", "valid_loss")},
                "parameters": int(best["parameters"]),
                "model": best.get("model", ""),
                "best_epoch": int(best["epoch"]),
                "epochs": int(history["epoch"].max()),
                "wall_s": float(history["time_total_s"].max()),
            }
        )
    return pd.DataFrame(rows)


def budget_spent(rows: pd.DataFrame, keys: list[str], metric: str, mode: str) -> pd.DataFrame:
    """Where the trials' time went, per `keys` (arch; arch and embedding): the trials, their
    epochs, minutes and share of the trial-seconds, and the best score; best first."""
    if "wall_s" not in rows or rows.empty:
        return pd.DataFrame(columns=[*keys, "trials", "epochs", "minutes", "time_share", metric])
    best = "min" if mode == "min" else "max"
    table = rows.groupby(keys, dropna=False).agg(
        trials=("trial", "size"), epochs=("epochs", "sum"), seconds=("wall_s", "sum"),
        best=(metric, best),
    ).reset_index()  # fmt: skip
    table["minutes"] = table["seconds"] / 60
    table["time_share"] = table["seconds"] / max(table["seconds"].sum(), 1e-9)
    table = table.rename(columns={"best": metric})
    shown = [*keys, "trials", "epochs", "minutes", "time_share", metric]
    return table.sort_values(metric, ascending=mode == "min")[shown].reset_index(drop=True)


def leaderboard(rows: pd.DataFrame, metric: str, mode: str) -> pd.DataFrame:
    """The best trial per architecture, best first (empty when no trial reported)."""
    if metric not in rows:
        return pd.DataFrame(columns=COLUMNS)
    scored = rows.dropna(subset=[metric])
    ranked = scored.sort_values(metric, ascending=mode == "min")
    board = ranked.groupby("arch", sort=False).head(1)
    return board[[c for c in COLUMNS if c in board]].reset_index(drop=True)


def chosen_first(board: pd.DataFrame, trial: str) -> pd.DataFrame:
    """The board with the best single model's row first (search/choice.py), the others best
    on valid first: what best_model/, the refit and the leaderboard's headline read."""
    first = board["trial"] == trial
    return pd.concat([board[first], board[~first]]).reset_index(drop=True)


def with_test_scores(board: pd.DataFrame, final: pd.DataFrame) -> pd.DataFrame:
    """The per-architecture board with each best trial's held-out test scores beside."""
    columns = [c for c in ("test_accuracy", "test_macro_f1", "test_lift") if c in final]
    if final.empty or not columns:
        return board
    scores = final[final["model"] == "best of arch"].set_index("trial")[columns]
    return board.join(scores, on="trial")


def write_leaderboard(
    board: pd.DataFrame,
    rows: pd.DataFrame,
    final: pd.DataFrame,
    experiment_dir: Path,
    partial: bool = False,
    why: str = "",
) -> str:
    """leaderboard.csv/.md (best trial per architecture, with test scores), final.csv
    (baseline, each architecture's best and the ensemble on valid and test), trials.csv."""
    board = with_test_scores(board, final)
    board.to_csv(experiment_dir / "leaderboard.csv", index=False)
    if not partial:  # test scores exist only for a search that ended
        final.to_csv(experiment_dir / "final.csv", index=False)
    rows.drop(columns=["path"]).to_csv(experiment_dir / "trials.csv", index=False)
    table = markdown_table(board) if len(board) else "no results"
    epochs = int(rows["epochs"].fillna(0).sum()) if "epochs" in rows else 0
    overall = ""
    if len(board):
        best = board.iloc[0]
        because = f": {why}" if why else ""
        overall = (
            f"Best single model: {best['arch']} (trial {best['trial']}), valid accuracy "
            f"{best['valid_accuracy']:.4f}, macro-F1 {best['valid_macro_f1']:.4f}{because}.\n\n"
        )
    # After a search that ended, the best single model (search/choice.py) leads the board.
    order = "; the best single model leads" if len(final) and why else ""
    held_out = ""
    if len(final):
        held_out = (
            "## Held-out test\n\nChosen on valid, scored once on the test split; lift is "
            f"accuracy minus the baseline's on the same split.\n\n{markdown_table(final)}\n\n"
        )
    banner = (
        "**PARTIAL: the search was interrupted before its trials ended; resume it with "
        "`resume=true`. No test scores, ensemble or best model yet.**\n\n"
        if partial
        else ""
    )
    text = (
        f"# Leaderboard\n\n{banner}Best trial per architecture (chosen on valid), best first"
        f"{order}.\n\n"
        f"{table}\n\n{overall}{held_out}{len(rows)} trials, {epochs} epochs in all.\n"
    )
    (experiment_dir / "leaderboard.md").write_text(text)
    return text


def export_best(
    board: pd.DataFrame, rows: pd.DataFrame, experiment_dir: Path, refitted: bool = False
) -> Path | None:
    """The best trial's model directory as <experiment>/best_model (its files linked, not
    copied: data_prep/atomic.py link_or_copy), or, `refitted`, its refit already written
    there (search/refit.py); with its plots."""
    if board.empty:
        return None
    target = experiment_dir / BEST_MODEL_DIR
    if not refitted:
        best_trial = board.iloc[0]["trial"]
        source = Path(rows.set_index("trial").loc[best_trial, "path"]) / BEST_MODEL_DIR
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(source, target, copy_function=link_or_copy)
    plots.plot_run(target)  # drawn once here, not at every new best inside the trial
    return target

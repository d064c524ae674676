"""PNG plots of a run: loss curves, metrics per epoch, confusion matrix of the best epoch."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from data_prep.atomic import atomic_path  # noqa: E402


def save_figure(fig, path: Path) -> Path:
    """The figure as a PNG, replacing (never writing into) an existing file, which may be
    a hard link shared with another directory (data_prep/atomic.py link_or_copy)."""
    fig.tight_layout()
    with atomic_path(path) as temporary:
        fig.savefig(temporary, dpi=110, format="png")
    plt.close(fig)
    return path


def plot_losses(iteration_loss: list[float], epochs: list[dict], out: Path) -> list[Path]:
    fig, ax = plt.subplots(figsize=(7, 4))
    steps = np.arange(1, len(iteration_loss) + 1)
    ax.plot(steps, iteration_loss, lw=0.5, alpha=0.4, label="train loss (iteration)")
    if len(iteration_loss) >= 20:
        window = max(2, len(iteration_loss) // 50)
        smooth = np.convolve(iteration_loss, np.ones(window) / window, mode="valid")
        ax.plot(steps[window - 1 :], smooth, lw=1.5, label=f"mean of {window}")
    ax.set(xlabel="iteration", ylabel="cross-entropy", title="Training loss per iteration")
    ax.legend()
    paths = [save_figure(fig, out / "loss_iterations.png")]
    fig, ax = plt.subplots(figsize=(7, 4))
    x = [e["epoch"] for e in epochs]
    ax.plot(x, [e["train_loss"] for e in epochs], "o-", label="train")
    ax.plot(x, [e["valid_loss"] for e in epochs], "o-", label="valid")
    ax.set(xlabel="epoch", ylabel="cross-entropy", title="Loss per epoch")
    ax.legend()
    paths.append(save_figure(fig, out / "loss_epochs.png"))
    return paths


def plot_metrics(epochs: list[dict], out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4))
    x = [e["epoch"] for e in epochs]
    for name in ("valid_accuracy", "valid_macro_f1"):
        ax.plot(x, [e[name] for e in epochs], "o-", label=name)
    ax.set(xlabel="epoch", ylabel="score", title="Validation metrics per epoch")
    ax.legend()
    return save_figure(fig, out / "metrics.png")


# Classes drawn in a confusion plot at most: a 1,000-class matrix drew a 600-inch figure
# that took 23.6 GB. Above it, the classes most often confused (with any other) are shown.
MAX_PLOTTED_CLASSES = 30


def most_confused(confusion: np.ndarray, keep: int) -> np.ndarray:
    """Indices of the `keep` classes with the most errors, true or predicted, in class order."""
    errors = confusion.sum(0) + confusion.sum(1) - 2 * np.diag(confusion)
    return np.sort(np.argsort(-errors, kind="stable")[:keep])


def confusion_figure(confusion: np.ndarray, labels: list[str], title: str):
    share = confusion / np.maximum(confusion.sum(1, keepdims=True), 1)  # of the whole row
    if len(labels) > MAX_PLOTTED_CLASSES:
        shown = most_confused(confusion, MAX_PLOTTED_CLASSES)
        confusion, share = confusion[np.ix_(shown, shown)], share[np.ix_(shown, shown)]
        labels = [labels[i] for i in shown]
        title = f"{title}: the {len(shown)} most confused classes"
    size = max(6.0, 0.6 * len(labels) + 3)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    for (i, j), n in np.ndenumerate(confusion):
        color = "white" if share[i, j] > 0.5 else "black"
        ax.text(j, i, int(n), ha="center", va="center", fontsize=7, color=color)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.tight_layout()
    return fig


def plot_confusion(confusion: np.ndarray, labels: list[str], epoch: int, out: Path) -> Path:
    fig = confusion_figure(confusion, labels, f"Confusion matrix (best epoch {epoch})")
    return save_figure(fig, out / "confusion.png")


def plot_run(run_dir: Path) -> list[Path]:
    """All four PNGs of a saved run directory (metrics.json, iteration_loss.csv)."""
    summary = json.loads((run_dir / "metrics.json").read_text())
    losses = np.atleast_1d(np.loadtxt(run_dir / "iteration_loss.csv")).tolist()
    paths = plot_losses(losses, summary["history"], run_dir)
    paths.append(plot_metrics(summary["history"], run_dir))
    if summary.get("confusion") is not None:
        confusion = np.array(summary["confusion"])
        epoch = int(summary["best"]["epoch"])
        paths.append(plot_confusion(confusion, summary["labels"], epoch, run_dir))
    return paths


def confusion_image(confusion: np.ndarray, cell: int = 24) -> np.ndarray:
    """The confusion matrix (row shares) as an RGB image (3, H, W) for TensorBoard: no
    figure, so a trial can log one at every new best epoch for a millisecond."""
    cell = max(1, min(cell, 720 // len(confusion)))  # at most ~720 pixels a side
    share = confusion / np.maximum(confusion.sum(1, keepdims=True), 1)
    rgb = matplotlib.colormaps["Blues"](share)[..., :3]
    return np.kron(rgb.transpose(2, 0, 1), np.ones((1, cell, cell))).astype(np.float32)

"""Plots that scale with the number of classes."""

from __future__ import annotations

import numpy as np

from qamodels.plots import MAX_PLOTTED_CLASSES, confusion_image, most_confused, plot_confusion


def test_a_thousand_class_confusion_plot_shows_the_most_confused(tmp_path):
    """1,000 classes once drew a 600-inch figure that took 23.6 GB and the OOM killer."""
    classes = 1000
    rng = np.random.default_rng(0)
    confusion = np.diag(rng.integers(5, 20, classes))
    confusion[7, 900] = confusion[900, 7] = 9  # two classes often taken for each other
    confusion[42, 3] = 30
    labels = [f"class {i}" for i in range(classes)]
    path = plot_confusion(confusion, labels, 1, tmp_path)
    assert 0 < path.stat().st_size < 2_000_000
    shown = most_confused(confusion, MAX_PLOTTED_CLASSES)
    assert len(shown) == MAX_PLOTTED_CLASSES and {3, 7, 42, 900} <= set(shown.tolist())


def test_few_classes_are_all_shown():
    confusion = np.array([[5, 1], [0, 4]])
    assert most_confused(confusion, MAX_PLOTTED_CLASSES).tolist() == [0, 1]


def test_the_tensorboard_confusion_image_stays_small_for_many_classes():
    image = confusion_image(np.eye(1000, dtype=int))
    assert image.shape == (3, 1000, 1000)  # one pixel a class, not 24 (6.9 GB)
    assert confusion_image(np.eye(3, dtype=int)).shape == (3, 72, 72)

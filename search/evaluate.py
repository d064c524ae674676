r"""Score an exported model (or ensemble) on your own labeled test set.

    python -m search.evaluate model=~/qatune_results/qatune/best_model source=test.csv \
        text_column=question label_column=topic
    python -m search.evaluate model=~/qatune_results/qatune/best_ensemble source=test.jsonl
    python -m search.evaluate model=~/qatune_results/qatune source=test.csv   # the search's answer

Reads CSV / JSONL / Parquet as data_prep does; prints accuracy, macro-F1, log loss and the
per-class report, and writes confusion.png and evaluation.json next to `out=` (default: a
folder `evaluation/` in the model directory). Labels the model never saw are an error.
"""

from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import classification_report

from data_prep import PrepConfig
from data_prep.cli import ConfigError, arg, fail, help_text, parse_overrides
from data_prep.errors import QatuneError
from data_prep.sources import read_source
from qamodels import plots
from qamodels.metrics import confusion_matrix, scores
from search.predict import answer, load_predictor
from search.storage import local_model


@dataclass(frozen=True)
class EvaluateConfig:
    model: str = arg(
        "",
        "a finished search's directory or URI (its answer, as search.predict "
        "takes it), or an exported best_model/ or best_ensemble/ (required)",
    )
    source: str = arg("", "a labeled .csv, .jsonl or .parquet file (required)")
    text_column: str = arg("text", "the column of question text")
    label_column: str = arg("label", "the column of classes")
    encoding: str = arg("utf-8", "text encoding of a CSV / JSONL file")
    batch_size: int = arg(512, "questions classified at once", min=1)
    out: str = arg("", "where confusion.png and evaluation.json go; default <model>/evaluation")


def evaluate(config: EvaluateConfig) -> dict:
    if not config.model or not config.source:
        raise ConfigError("model= and source= are both required")
    chosen, why = answer(config.model)
    if why:
        print(why, file=sys.stderr)
    model = local_model(chosen)  # a URI's model: its local copy
    predictor = load_predictor(model)
    prep = PrepConfig(source=config.source, text_column=config.text_column,
                      label_column=config.label_column, encoding=config.encoding)  # fmt: skip
    out = Path(config.out or model / "evaluation").expanduser()
    try:  # before the predictions: an unwritable out= is found at once
        out.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=out).close()
    except OSError as err:
        raise ConfigError(f"out={out}: not a writable directory ({err.strerror})") from None
    rows = read_source(prep, config.source)
    if rows.empty:
        raise ConfigError(f"{config.source}: no labeled rows to evaluate (only a header?)")
    unknown = sorted(set(rows["category"]) - set(predictor.labels))
    if unknown:
        raise ConfigError(
            f"{config.source}: labels {unknown[:10]} are not classes of the model "
            f"({', '.join(predictor.labels[:20])}); map or drop those rows"
        )
    index = {label: i for i, label in enumerate(predictor.labels)}
    truth = rows["category"].map(index).to_numpy(np.int64)
    questions = rows["question"].tolist()
    probabilities = torch.cat(list(predictor.batches(questions, config.batch_size))).numpy()
    predicted = probabilities.argmax(1)
    confusion = confusion_matrix(truth, predicted, len(predictor.labels))
    found = {"rows": len(rows), **scores(probabilities, truth, len(predictor.labels))}
    found["per_class"] = classification_report(
        truth, predicted, labels=range(len(predictor.labels)),
        target_names=predictor.labels, output_dict=True, zero_division=0,
    )  # fmt: skip
    figure = plots.confusion_figure(confusion, predictor.labels, Path(config.source).name)
    plots.save_figure(figure, out / "confusion.png")
    (out / "evaluation.json").write_text(json.dumps(found, indent=1))
    found["report"] = classification_report(
        truth, predicted, labels=range(len(predictor.labels)),
        target_names=predictor.labels, zero_division=0,
    )  # fmt: skip
    found["out"] = str(out)
    return found


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        print(help_text(EvaluateConfig, "keys:"))
        return 0 if argv else 2
    try:
        found = evaluate(parse_overrides(EvaluateConfig, argv))
    except QatuneError as err:
        return fail(err)
    print(found["report"])
    print(f"confusion matrix and evaluation.json: {found['out']}")
    print(
        f"{found['rows']} questions: accuracy {found['accuracy']:.4f}, macro-F1 "
        f"{found['macro_f1']:.4f}, log loss {found['loss']:.4f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

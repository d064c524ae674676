"""Classify questions with an exported model, or with a finished search's answer.

    python -m search.predict model=~/qatune_results/qatune "does this fit my civic?"  # its answer
    python -m search.predict model=~/qatune_results/qatune/best_model "..."   # the best model
    python -m search.predict model=<dir> file=questions.txt [batch_size=512] [top=3]
    python -m search.predict model=~/qatune_results/qatune/best_ensemble "..."   # the ensemble
    python -m search.predict model=<dir> -- "is 1=2 on this remote?"   # after --: questions

Prints the category and the probabilities of the top classes; with `file=` one line per
question (tab-separated: category, probability, question), classified in batches.

model=<experiment> (a directory or URI of a finished search) takes the search's answer: the
better of its best_ensemble and best_model on valid (final.csv; a tie goes to the ensemble,
whose valid score is out of fold, while the best model's is the best of many trials').
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from data_prep.cli import ConfigError, arg, fail, help_text, parse_overrides
from data_prep.errors import QatuneError
from data_prep.store import Split
from data_prep.tokenize import UNK, encode_texts
from qamodels.baseline import LinearTextModel, load_baseline
from qamodels.batches import DeviceSplit
from qamodels.checkpoint import load_model
from qamodels.metrics import softmax_temperature
from qamodels.trainer import predict_logits
from search.ensemble import BASELINE_MEMBER, is_ensemble, read_manifest
from search.storage import local_model, model_location


class Batched:
    """Probabilities of many questions, a batch at a time."""

    def probabilities(self, questions: Sequence[str]) -> torch.Tensor:
        raise NotImplementedError

    def batches(self, questions: Sequence[str], batch_size: int) -> Iterator[torch.Tensor]:
        for start in range(0, len(questions), batch_size):
            yield self.probabilities(questions[start : start + batch_size])


@dataclass
class Predictor(Batched):
    """One exported model (best_model/ or a run directory)."""

    model: torch.nn.Module
    vocab: list[str]
    labels: list[str]
    max_length: int
    expand_vocab: str = ""  # the vectors its data read unknown words with (data_prep/expansion)

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> Predictor:
        model, checkpoint = load_model(path, device)
        return cls(model, checkpoint["vocab"], checkpoint["labels"], checkpoint["max_length"],
                   checkpoint.get("expand_vocab", ""))  # fmt: skip

    @torch.no_grad()
    def probabilities(self, questions: Sequence[str]) -> torch.Tensor:
        """(n, classes) probabilities; text encoded by data_prep's own steps."""
        encoded = encode_texts(questions, self.vocab, self.max_length, self.expand_vocab)
        device = next(self.model.parameters()).device
        unlabeled = np.zeros(len(questions), np.int32)
        split = Split(encoded.ids, encoded.mask, encoded.length, unlabeled)
        split = DeviceSplit.from_split(split, device)
        return torch.softmax(predict_logits(self.model, split, max(1, len(questions))), -1).cpu()


@dataclass
class BaselinePredictor(Batched):
    """The TF-IDF + linear model as an ensemble member (probabilities fitted on valid)."""

    model: LinearTextModel
    temperature: float

    def probabilities(self, questions: Sequence[str]) -> torch.Tensor:
        scores = self.model.decision_function([q.lower() for q in questions])
        return torch.from_numpy(softmax_temperature(scores, self.temperature)).float()


@dataclass
class EnsemblePredictor(Batched):
    """A weighted average of its members' probabilities (search/ensemble.py)."""

    labels: list[str]
    members: list[Batched]
    weights: list[float]

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> EnsemblePredictor:
        path = Path(path).expanduser()
        manifest = read_manifest(path)
        members: list[Batched] = []
        for member in manifest["members"]:  # names checked by read_manifest: one plain part
            directory = path / member["name"]
            if member["name"] == BASELINE_MEMBER:
                members.append(BaselinePredictor(*load_baseline(directory)))
            else:
                members.append(Predictor.load(directory, device))
        weights = [m["weight"] for m in manifest["members"]]
        return cls(manifest["labels"], members, weights)

    def probabilities(self, questions: Sequence[str]) -> torch.Tensor:
        weighted = zip(self.weights, self.members, strict=True)
        return sum(w * m.probabilities(questions) for w, m in weighted)


def answer(model: str) -> tuple[str, str]:
    """model= as it is, or for a finished search (final.csv there) its better export on valid;
    and a line that says which and why ("" for a model given directly)."""
    location = model_location(model)
    final_text = location.read_text("final.csv")
    if final_text is None:
        return model, ""
    final = pd.read_csv(io.StringIO(final_text))
    settings = json.loads(location.read_text("qatune_config.json") or "{}")
    metric = settings.get("search", {}).get("train", {}).get("metric", "valid_accuracy")
    if metric not in final.columns:  # final.csv has accuracy and macro F1, not the loss
        metric = "valid_accuracy"
    lower = metric.endswith("loss")
    score = {
        kind: final.loc[final["model"] == kind, metric] for kind in ("ensemble", "best of arch")
    }
    if score["best of arch"].empty:
        raise ConfigError(f"model={model}: the search exported no model (final.csv has none)")
    chosen_row = final["best_single"].eq(True) if "best_single" in final else None
    if chosen_row is not None and chosen_row.any():  # the search's choice, its best_model/
        single = final.loc[chosen_row, metric].iloc[0]
    else:  # a search from before the choice (search/choice.py): best_model/ was the best
        single = score["best of arch"].min() if lower else score["best of arch"].max()
    chosen, why = "best_model", f"{metric} {single:.4f}"
    if not score["ensemble"].empty:
        ensemble = score["ensemble"].iloc[0]
        if (ensemble <= single) if lower else (ensemble >= single):
            chosen = "best_ensemble"
        why = f"{metric} ensemble {ensemble:.4f}, best model {single:.4f}"
    return location.uri(chosen), f"model={model}: the search's answer, {chosen} ({why})"


def load_predictor(path: str | Path, device: str = "cpu") -> Predictor | EnsemblePredictor:
    """An exported model directory (best_model/) or ensemble (best_ensemble/), or its URI."""
    path = local_model(str(path))
    if is_ensemble(path):
        return EnsemblePredictor.load(path, device)
    return Predictor.load(path, device)


@dataclass(frozen=True)
class PredictConfig:
    model: str = arg(
        "",
        "a finished search's directory or URI (its answer: the better of "
        "best_ensemble and best_model on valid), or one of those (required)",
    )
    file: str = arg("", "a text file of questions, one a line (instead of questions as arguments)")
    encoding: str = arg("utf-8", "text encoding of file= (e.g. latin-1)")
    batch_size: int = arg(512, "questions classified at once", min=1)
    top: int = arg(3, "classes shown per question", min=1)
    device: str = arg("cpu", "cpu, cuda or cuda:N")


def parse_args(argv: list[str]) -> tuple[PredictConfig, list[str]]:
    """key=value options of PredictConfig, the rest questions; everything after `--` is a
    question (for questions that contain `=`)."""
    split = argv.index("--") if "--" in argv else len(argv)
    options = [a for a in argv[:split] if "=" in a and a.split("=", 1)[0].isidentifier()]
    questions = [a for a in argv[:split] if a not in options] + argv[split + 1 :]
    try:
        config = parse_overrides(PredictConfig, options)
    except ConfigError as err:
        raise ConfigError(f"{err} (a question holding '=' goes after --)") from None
    if not config.model:
        raise ConfigError(
            "model= is required: a finished search's directory, or its best_model/ or "
            "best_ensemble/"
        )
    if bool(questions) == bool(config.file):
        raise ConfigError("give questions as arguments or file=<questions.txt>, not both")
    if config.device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={config.device}: no CUDA device here; use device=cpu")
    if config.file and not Path(config.file).expanduser().is_file():
        raise ConfigError(f"file={config.file}: no such file")
    return config, questions


def warn_unknown(predictor: Predictor | EnsemblePredictor, questions: list[str]) -> None:
    """Questions with no word the model knows get its class prior: say which."""
    neural = [m for m in getattr(predictor, "members", [predictor]) if isinstance(m, Predictor)]
    if not neural:
        return
    encoded = encode_texts(questions, neural[0].vocab, neural[0].max_length,
                           neural[0].expand_vocab)  # fmt: skip
    known = (encoded.ids > UNK).any(1)
    for question in np.array(questions, dtype=object)[~known][:5]:
        print(f"warning: no known word in {question!r}: the answer is a guess", file=sys.stderr)


def read_questions(path: Path, encoding: str) -> list[str]:
    """The file's non-empty lines; a one-line error for a missing or undecodable file."""
    try:
        text = path.read_text(encoding=encoding)
    except FileNotFoundError:
        raise ConfigError(f"file={path}: no such file") from None
    except UnicodeDecodeError as err:
        line = path.read_bytes()[: err.start].count(b"\n") + 1
        raise ConfigError(
            f"file={path}, line {line}: not {encoding} text; add encoding= (e.g. latin-1)"
        ) from None
    return [line for line in text.splitlines() if line.strip()]


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        print(help_text(PredictConfig, "keys:"))
        return 0 if argv else 2
    try:
        config, questions = parse_args(argv)
        model, chosen = answer(config.model)
        predictor = load_predictor(model, config.device)
        if config.file:
            questions = read_questions(Path(config.file).expanduser(), config.encoding)
        if not [q for q in questions if q.strip()]:
            raise ConfigError(
                f"{config.file or 'the questions'}: nothing to predict (empty); give questions "
                "as arguments or a file= with one question a line"
            )
    except QatuneError as err:
        return fail(err)
    if chosen:
        print(chosen, file=sys.stderr)
    warn_unknown(predictor, questions)
    top = min(config.top, len(predictor.labels))
    if config.file:
        starts = range(0, len(questions), config.batch_size)
        for start, probs in zip(
            starts, predictor.batches(questions, config.batch_size), strict=True
        ):
            best, index = probs.max(-1)
            for offset, (p, i) in enumerate(zip(best.tolist(), index.tolist(), strict=True)):
                print(f"{predictor.labels[i]}\t{p:.4f}\t{questions[start + offset]}")
        return 0
    for question, probs in zip(questions, predictor.probabilities(questions), strict=True):
        values, index = probs.topk(top)
        print(f"{question}\n  -> {predictor.labels[int(index[0])]}")
        for p, i in zip(values.tolist(), index.tolist(), strict=True):
            print(f"     {p:.4f}  {predictor.labels[i]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

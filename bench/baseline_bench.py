"""The baseline's cost and accuracy per candidate, on the sample or a large file.

    python bench/baseline_bench.py raw_dir=../shared/data/amazon_qa categories=all \
        valid_size=0.1 train_size=0.6
    python bench/resample.py rows=300000 out=/tmp/big.csv && python bench/baseline_bench.py \
        source=/tmp/big.csv text_column=question label_column=category valid_size=0.05 \
        test_size=0.05 train_size=0.85

Prints the TF-IDF time and, per linear model, its fit time and valid accuracy (Markdown).
"""

from __future__ import annotations

import sys
import time

from sklearn.feature_extraction.text import TfidfVectorizer

from data_prep import PrepConfig, prepared_data
from data_prep.cli import parse_overrides
from qamodels.baseline import all_candidates, tokenizer


def main(argv: list[str]) -> None:
    data = prepared_data(parse_overrides(PrepConfig, argv))
    start = time.perf_counter()
    vectorizer = TfidfVectorizer(tokenizer=tokenizer, token_pattern=None, lowercase=False,
                                 ngram_range=(1, 2), sublinear_tf=True)  # fmt: skip
    train = vectorizer.fit_transform(data.texts("train"))
    valid = vectorizer.transform(data.texts("valid"))
    print(f"train rows {train.shape[0]:,}, features {train.shape[1]:,}, "
          f"tf-idf {time.perf_counter() - start:.1f} s")  # fmt: skip
    print("| model | fit s | valid accuracy |\n| --- | --- | --- |")
    for name, model in all_candidates():
        start = time.perf_counter()
        model.fit(train, data.train.label)
        seconds = time.perf_counter() - start
        accuracy = (model.predict(valid) == data.valid.label).mean()
        print(f"| {name} | {seconds:.1f} | {accuracy:.4f} |")


if __name__ == "__main__":
    main(sys.argv[1:])

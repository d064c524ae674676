"""data_prep: from the original Amazon QA files (or your own) to memory-mapped Arrow tensors."""

from data_prep.config import PrepConfig
from data_prep.embeddings import Embeddings, load_embeddings
from data_prep.errors import DataError, QatuneError
from data_prep.pipeline import ensure_raw_files, prepare, prepared_data
from data_prep.store import PreparedData, Split, load

__all__ = [
    "DataError",
    "Embeddings",
    "PrepConfig",
    "PreparedData",
    "QatuneError",
    "Split",
    "ensure_raw_files",
    "load",
    "load_embeddings",
    "prepare",
    "prepared_data",
]

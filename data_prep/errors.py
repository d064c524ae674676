"""The one exception base of qatune, and the kinds callers catch apart.

A QatuneError is a user's problem (a bad key, bad data, a missing file), reported as one line
by every command line; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class QatuneError(Exception):
    """Base of every error a command reports as one line."""


class DataError(QatuneError, ValueError):
    """Data that cannot be read, parsed, split or prepared; the message names the file."""

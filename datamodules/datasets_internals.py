"""The parts of ``datasets`` we use that it does not make public, each behind one function.

Nothing else in ``datamodules`` touches them: when a ``datasets`` release removes one, these
functions raise a ``RuntimeError`` naming the installed version and what changed, instead of a
run that silently degrades, and ``tests/datamodules/test_datasets_internals.py`` fails first.
See docs/private_apis.md (#15).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

import datasets


def _gone(what: str) -> RuntimeError:
    return RuntimeError(
        f"datasets {datasets.__version__} changed {what}; see docs/private_apis.md "
        "(lit-seqcls is tested with the versions pyproject.toml allows)."
    )


def dataset_fingerprint(ds: datasets.Dataset) -> str:
    """The hash ``datasets`` keeps of a dataset's content and history (``ds._fingerprint``).

    Example:
        >>> ds = datasets.Dataset.from_dict({"text": ["a"]})
        >>> dataset_fingerprint(ds) != dataset_fingerprint(ds.select([0]))
        True
    """
    value = getattr(ds, "_fingerprint", None)
    if not isinstance(value, str) or not value:
        raise _gone("Dataset._fingerprint (no longer a non-empty string)")
    return value


@contextmanager
def hub_offline(offline: bool) -> Iterator[None]:
    """Make ``load_dataset`` offline (or not) now, whatever the environment was at import.

    ``datasets`` reads ``HF_HUB_OFFLINE`` once, into ``datasets.config.HF_HUB_OFFLINE``, at
    import; this patches that module constant for the block.
    """
    if not hasattr(datasets.config, "HF_HUB_OFFLINE"):
        raise _gone("datasets.config.HF_HUB_OFFLINE (gone)")
    with mock.patch.object(datasets.config, "HF_HUB_OFFLINE", offline):
        yield


# `datasets`' JSON builder parses each `chunksize` read in blocks of `chunksize // 32` bytes
# (`packaged_modules/json/json.py`, not documented); tested by `test_datasets_internals.py`.
JSON_BLOCKS_PER_CHUNK = 32


def json_chunksize_for_one_block(nbytes: int) -> int:
    """The JSON ``chunksize`` with which ``datasets`` parses ``nbytes`` bytes as one block.

    Example:
        >>> json_chunksize_for_one_block(100) // JSON_BLOCKS_PER_CHUNK > 100
        True
    """
    return JSON_BLOCKS_PER_CHUNK * (nbytes + 1)


def hub_offline_default() -> bool:
    """``datasets.config.HF_HUB_OFFLINE``: what ``datasets`` read from the environment."""
    if not hasattr(datasets.config, "HF_HUB_OFFLINE"):
        raise _gone("datasets.config.HF_HUB_OFFLINE (gone)")
    return bool(datasets.config.HF_HUB_OFFLINE)

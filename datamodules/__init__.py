"""Data sources as LightningDataModules, each a plugin over ``TextClassificationDataModule``.

A third-party source subclasses the base and is used by ``class_path`` (or registered under the
``lit_seqcls.datamodules`` entry-point group); nothing in ``lit_seqcls`` changes.
"""

from datamodules.base import TextClassificationDataModule
from datamodules.imdb import IMDBDataModule
from datamodules.newsgroups import NewsgroupsDataModule
from datamodules.schema import DataError, DataFileNotFoundError
from datamodules.synthetic import SyntheticDataModule
from datamodules.text import TextDataModule

__all__ = [
    "DataError",
    "DataFileNotFoundError",
    "IMDBDataModule",
    "NewsgroupsDataModule",
    "SyntheticDataModule",
    "TextClassificationDataModule",
    "TextDataModule",
]

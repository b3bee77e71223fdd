"""``TextDataModule``: any Hugging Face dataset, or your own CSV / JSON Lines / Parquet / text.

Arguments mirror ``datasets.load_dataset`` (``path``, ``name``, ``data_files``, ``revision``)
plus the columns to read. Source splits named ``train``, ``validation`` (or ``valid``/``dev``/
``val``), ``test`` and ``predict`` are used as such; ``split`` maps other names. Labels may be
strings or integers; the class names come, in this order, from ``from_checkpoint``,
``class_names``, a ``ClassLabel`` feature, ``label_names_field``, or the sorted training labels.

Multi-label data needs no flag: a label column holding lists of class names (a JSON list, a list
feature) makes the task multi-label, and so does ``label_delimiter`` (``"net|web"`` with ``|``).
Then every row's label is a list (an empty list: none of the labels), the class names are the
sorted names seen in training, and the model is linked to ``task: multi_label``.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import datasets
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from datamodules.base import PREDICT, TEST, TRAIN, VAL, TextClassificationDataModule
from datamodules.caching import cache_root, file_digest, fingerprint, text_entry, tree_digest
from datamodules.diagnosis import check_exists_and_not_empty, diagnose
from datamodules.loading import (
    BUILDERS,
    as_file_lists,
    builder_for,
    check_delimiter,
    load_hub_or_folder,
    load_local_files,
)
from datamodules.schema import (
    LABEL,
    MAX_CLASSES,
    TEXT,
    DataError,
    check_class_count,
    check_class_index,
    check_label_list,
    check_label_value,
)
from lit_seqcls.metrics import MULTI_LABEL, SINGLE_LABEL
from lit_seqcls.validation import integers_name_classes

_ALIASES = {"valid": VAL, "dev": VAL, "val": VAL, TRAIN: TRAIN, VAL: VAL, TEST: TEST}
_ALIASES[PREDICT] = PREDICT


class TextDataModule(TextClassificationDataModule):
    """Text classification from a hub dataset or local files (see the module docstring).

    Args:
        path: a hub id (``stanfordnlp/imdb``), a local folder in the hub layout, or a builder
            name (``csv``, ``json``, ``parquet``, ``text``) used with ``data_files``; default:
            the builder guessed from the ``data_files`` extensions.
        name: the dataset configuration (``plain_text`` for IMDB), if it has several.
        data_files: files per split, e.g. ``{train: train.jsonl, test: [a.jsonl, b.jsonl]}``.
        revision: the hub commit, tag or branch to load (pin a commit for reproducible data).
        split: our split name → the source's split name, e.g. ``{predict: unsupervised}``; by
            default the source's ``train``/``validation``/``test``/``predict`` splits.
        text_field: the text column, or several joined with a newline (e.g. title and body).
        label_field: the label column (strings or integers).
        label_names_field: a column holding each label's name (e.g. ``label_text``).
        class_names: fix the classes and their order instead of reading them from the data.
        delimiter: the field separator of CSV files (one character; ``\\t`` for a tab); by
            default each file's header line says (``,`` ``;`` tab or ``|``).
        label_delimiter: multi-label data written as one string per row: the string between
            labels (``"net|web"`` with ``|``; an empty string or cell is no label). Lists need
            none.
        **kwargs: the shared data arguments (batch size, tokenizer, caching, bucketing; see
            ``TextClassificationDataModule``).

    Example:
        >>> dm = TextDataModule(data_files={"train": "reviews.csv", "test": "held_out.csv"},
        ...                     text_field=["title", "body"], label_field="stars")
        >>> dm.describe("test")
        "held_out.csv (split 'test')"

        ``dm.class_names``, ``dm.splits`` and ``dm.vocab_size`` then read the files (once; see
        the caching notes in ``datamodules.base``).
    """

    def __init__(
        self,
        path: str | None = None,
        name: str | None = None,
        data_files: dict[str, str | list[str]] | None = None,
        revision: str | None = None,
        split: dict[str, str] | None = None,
        text_field: str | list[str] = TEXT,
        label_field: str = LABEL,
        label_names_field: str | None = None,
        class_names: list[str] | None = None,
        delimiter: str | None = None,
        label_delimiter: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if path is None and not data_files:
            raise ValueError(
                "TextDataModule needs `path` (a hub id or local folder) or `data_files` "
                "(e.g. --data.data_files.train train.jsonl)."
            )
        self.path = path
        self.name = name
        self.data_files = as_file_lists(data_files)
        self.revision = revision
        self.split = split
        self.text_fields = [text_field] if isinstance(text_field, str) else list(text_field)
        self.label_field = label_field
        self.label_names_field = label_names_field
        self.fixed_class_names = list(class_names) if class_names is not None else None
        self.delimiter = check_delimiter(delimiter)
        if label_delimiter is not None and (
            not isinstance(label_delimiter, str) or not label_delimiter.strip()
        ):
            raise ValueError(
                f"label_delimiter must be a non-blank string such as '|' or ',', got "
                f"{label_delimiter!r:.40}"
            )
        self.label_delimiter = label_delimiter
        self._multi_label: bool | None = None
        self._class_names: list[str] | None = None
        self._data_class_names: list[str] | None = None  # as load_splits() read them

    # ---- the plugin interface ------------------------------------------------------------------
    @property
    def class_names(self) -> list[str]:
        if self._class_names is None:
            given = self.checkpoint_class_names or self.fixed_class_names or self._data_class_names
            self._class_names = given if given is not None else self._cached_class_names()
        return self._class_names

    def _cached_class_names(self) -> list[str]:
        # A warm start (and every rank after the first) reads them from the cache, not the data.
        path = self._class_names_entry()
        if path.is_file():  # written by an atomic rename: complete, or absent
            return json.loads(path.read_text(encoding="utf-8"))
        _ = self.splits  # load_splits() resolves them and writes the entry
        assert self._data_class_names is not None
        return self._data_class_names

    def _class_names_entry(self, kind: str = "classes") -> Path:
        key = fingerprint(self.source_fingerprint())
        return cache_root(self.cache_dir) / kind / f"{key}.json"

    @property
    def multi_label(self) -> bool:
        """Lists of labels (or ``label_delimiter``): decided by the data, cached like the
        class names, and kept in the checkpoint's text pipeline (``task``)."""
        if self._multi_label is None:
            if self.checkpoint_task is not None:
                self._multi_label = self.checkpoint_task == MULTI_LABEL
            elif self.label_delimiter is not None:
                self._multi_label = True
            elif (path := self._class_names_entry("tasks")).is_file():
                self._multi_label = json.loads(path.read_text(encoding="utf-8")) == MULTI_LABEL
            else:
                _ = self.splits  # load_splits() decides and writes the entry
        return bool(self._multi_label)

    def load_splits(self) -> datasets.DatasetDict:
        raw = self._pick_splits(self._load_raw())
        try:
            if self._multi_label is None:
                self._multi_label = self.label_delimiter is not None or _lists(
                    raw.get(TRAIN), self.label_field
                )
                if self.checkpoint_task is not None:
                    self._multi_label = self.checkpoint_task == MULTI_LABEL
                task = MULTI_LABEL if self._multi_label else SINGLE_LABEL
                text_entry(self._class_names_entry("tasks"), lambda: json.dumps(task))
            self._data_class_names = self._resolve_class_names(raw.get(TRAIN))
            if not (self.checkpoint_class_names or self.fixed_class_names):
                text_entry(self._class_names_entry(), lambda: json.dumps(self._data_class_names))
            return datasets.DatasetDict(
                {ours: self._standardize(ours, ds) for ours, ds in raw.items()}
            )
        except UnicodeDecodeError:
            # pyarrow's JSON reader keeps invalid UTF-8 bytes; they fail only when read here.
            for file in (f for fs in self.data_files.values() for f in fs):
                diagnose(Path(file), self.path if self._local else builder_for([file]))
            raise

    def source_fingerprint(self) -> Any:
        if self._local:
            source: Any = {s: [_digest(f) for f in fs] for s, fs in self.data_files.items()}
        elif Path(self.path).expanduser().is_dir():
            source = tree_digest(Path(self.path).expanduser())
        else:
            source = {"hub": self.path, "revision": self.revision}
        return {
            "class": f"{type(self).__module__}.{type(self).__qualname__}",
            "source": source,
            "name": self.name,
            "split": self.split,
            "fields": [self.text_fields, self.label_field, self.label_names_field],
            "class_names": self.checkpoint_class_names or self.fixed_class_names,
            # Only when set, so the keys of entries cached before the argument existed hold.
            **({"delimiter": self.delimiter} if self.delimiter is not None else {}),
            **({"label_delimiter": self.label_delimiter} if self.label_delimiter else {}),
        }

    def describe(self, split: str) -> str:
        if self._local:
            files = self.data_files.get(split) or self.data_files.get(self._source_name(split))
            if files:
                return f"{', '.join(files)} (split {split!r})"
        return f"{self.path} split {split!r}"

    def input_files(self) -> list[Path]:
        """Every local file read: each split's ``data_files``, the files of a local ``path``
        folder, and the shared ones (``from_checkpoint``, ``vectors``, ``tokenizer_file``).

        Example:
            >>> dm = TextDataModule(data_files={"train": "a.csv", "test": ["b.csv", "c.csv"]})
            >>> [str(p) for p in dm.input_files()]
            ['a.csv', 'b.csv', 'c.csv']
        """
        files = [Path(f).expanduser() for fs in self.data_files.values() for f in fs]
        folder = None if self._local else Path(self.path).expanduser()
        if folder is not None and folder.is_dir():
            files += [p for p in sorted(folder.rglob("*")) if p.is_file()]
        return super().input_files() + files

    # ---- loading -------------------------------------------------------------------------------
    @property
    def _local(self) -> bool:
        """Local ``data_files`` (not a hub id or a folder in the hub layout)?"""
        return self.path is None or self.path in set(BUILDERS.values())

    def _load_raw(self) -> datasets.DatasetDict:
        cache = cache_root(self.cache_dir) / "datasets"
        if self._local:
            fields = {"text_fields": self.text_fields, "label_field": self.label_field}
            fields["delimiter"] = self.delimiter
            return load_local_files(self.data_files, self.path, str(cache), **fields)
        folder = Path(self.path).expanduser()
        if folder.is_dir():
            digest = fingerprint(tree_digest(folder))
            return load_hub_or_folder(str(folder), self.name, None, str(cache / digest))
        return load_hub_or_folder(self.path, self.name, self.revision)

    def _source_name(self, ours: str) -> str:
        return (self.split or {}).get(ours, ours)

    def _pick_splits(self, raw: datasets.DatasetDict) -> datasets.DatasetDict:
        if self.split is None:
            return datasets.DatasetDict({_ALIASES[s]: ds for s, ds in raw.items() if s in _ALIASES})
        missing = {o: s for o, s in self.split.items() if s not in raw}
        if missing:
            raise DataError(
                f"{self.path or 'data_files'}: `split` asks for {missing}, but the source has "
                f"the splits {sorted(raw)}."
            )
        return datasets.DatasetDict({ours: raw[source] for ours, source in self.split.items()})

    def _resolve_class_names(self, train: datasets.Dataset | None) -> list[str]:
        if self.checkpoint_class_names is not None:
            return self.checkpoint_class_names
        if self.fixed_class_names is not None:
            return self.fixed_class_names
        if train is None:
            raise ValueError(
                f"{type(self).__name__}: no 'train' split to read the classes from; give "
                "`class_names` or `from_checkpoint`."
            )
        where = self.describe(TRAIN)
        if self.label_field not in train.column_names:
            raise DataError(
                f"{where}: no {self.label_field!r} column (columns: "
                f"{train.column_names}). Name the label column with `label_field`."
            )
        feature = train.features[self.label_field]
        if isinstance(feature, datasets.ClassLabel):
            return list(feature.names)
        if self.multi_label:
            inner = getattr(feature, "feature", None)
            if isinstance(inner, datasets.ClassLabel):  # a hub list of ClassLabel
                return list(inner.names)
            rows = enumerate(train[self.label_field], 1)
            values = {n: None for row, v in rows for n in self._label_list(where, row, v)}
            check_class_count(len(values), len(train), where, self.label_field)
            return sorted(values)
        labels = [_plain(v) for v in train[self.label_field]]
        for row, value in enumerate(labels, 1):
            if value is not None:  # a missing label is reported, by row, in `_standardize`
                check_label_value(value, where, row, self.label_field)
        if self.label_names_field is not None:
            return self._names_from_column(train, labels)
        self._labels_are_names = True
        # By name, so 1, 1.0 and "1" are one class, and True stays apart from 1 (True == 1).
        values = {str(v): v for v in labels if v is not None}
        check_class_count(len(values), len(labels), where, self.label_field)
        names = sorted(values, key=lambda name: _sort_key(values[name]))
        _report_classes(names, [str(v) for v in labels if v is not None], where)
        return names

    _labels_are_names = False  # labels map to classes by value (str(v)), not used as indices

    def _names_from_column(self, train: datasets.Dataset, labels: list[Any]) -> list[str]:
        if self.label_names_field not in train.column_names:
            raise DataError(
                f"{self.describe(TRAIN)}: no {self.label_names_field!r} column for "
                f"`label_names_field` (columns: {train.column_names})."
            )
        names: dict[int, str] = {}
        for row, (label, name) in enumerate(
            zip(labels, train[self.label_names_field], strict=True), 1
        ):
            if isinstance(label, int) and label >= MAX_CLASSES:  # else a list of `label` names
                raise DataError(
                    f"{self.describe(TRAIN)}, row {row}, field {self.label_field!r}: class "
                    f"index {label:,} is beyond the limit of {MAX_CLASSES:,} classes. Number "
                    "the classes 0, 1, 2, ..., or name another column with `label_field`."
                )
            if isinstance(label, int) and label >= 0 and names.setdefault(label, name) != name:
                raise DataError(
                    f"{self.describe(TRAIN)}, row {row}, field {self.label_names_field!r}: "
                    f"label {label} is named {name!r} here but {names[label]!r} earlier; "
                    "each label needs one name."
                )
        check_class_count(len(names), len(labels), self.describe(TRAIN), self.label_field)
        return [names.get(i, str(i)) for i in range(max(names, default=-1) + 1)]

    # ---- one split into the standard (text: str, label: int) schema ----------------------------
    def _standardize(self, ours: str, ds: datasets.Dataset) -> datasets.Dataset:
        where = self.describe(ours)
        for field in self.text_fields:
            if field not in ds.column_names:
                raise DataError(
                    f"{where}: no text column {field!r} (columns: {ds.column_names}). Name "
                    "the column that holds the text with `text_field`."
                )
        columns = [ds[f] for f in self.text_fields]
        texts = []
        for row, parts in enumerate(zip(*columns, strict=True), 1):
            for field, value in zip(self.text_fields, parts, strict=True):
                if not isinstance(value, str):
                    what = "missing (null)" if _is_null(value) else f"not a string: {value!r:.80}"
                    raise DataError(
                        f"{where}, row {row}, field {field!r}: the text is {what}. Fill it in "
                        "or remove the row (an empty string is allowed)."
                    )
            texts.append("\n".join(parts))
        if ours == PREDICT:
            return datasets.Dataset.from_dict({TEXT: texts})  # labels never reach predict
        if self.label_field not in ds.column_names:
            raise DataError(
                f"{where}: no label column {self.label_field!r} (columns: {ds.column_names}). "
                "Name it with `label_field`, or map the split to `predict` if it is unlabelled."
            )
        lookup = {name: i for i, name in enumerate(self.class_names)}
        values = enumerate(ds[self.label_field], 1)  # rows counted from 1, as a person does
        if self.multi_label:
            indices = _class_label_list(ds.features[self.label_field])
            labels = [self._label_indices(where, row, v, lookup, indices) for row, v in values]
            feature = datasets.Features(
                {TEXT: datasets.Value("string"), LABEL: datasets.List(datasets.Value("int64"))}
            )
            return datasets.Dataset.from_dict({TEXT: texts, LABEL: labels}, features=feature)
        # Integers are class indices in a ClassLabel column or beside `label_names_field`;
        # otherwise they name classes when a class name is an integer (`fit` reading 1..5 from
        # train, or a checkpoint trained so), whatever file the split comes from.
        by_name = self._labels_are_names or (
            not isinstance(ds.features[self.label_field], datasets.ClassLabel)
            and self.label_names_field is None
            and integers_name_classes(self.class_names)
        )
        labels = [self._label_index(where, row, v, lookup, by_name) for row, v in values]
        return datasets.Dataset.from_dict({TEXT: texts, LABEL: labels})

    def _label_list(self, where: str, row: int, value: Any) -> list[str]:
        """A multi-label row's class names: its list, or its string split at ``label_delimiter``."""
        if self.label_delimiter is not None and _is_null(value):
            value = []  # an empty CSV cell (read as null): none of the labels
        elif self.label_delimiter is not None and isinstance(value, str):
            value = [part.strip() for part in value.split(self.label_delimiter) if part.strip()]
        elif self.label_delimiter is not None and value is not None and not isinstance(value, list):
            raise DataError(
                f"{where}, row {row}, field {self.label_field!r}: with `label_delimiter` a label "
                f"is a string of names such as 'net{self.label_delimiter}web', got {value!r:.80}."
            )
        return check_label_list(value, where, row, self.label_field)

    def _label_indices(
        self, where: str, row: int, value: Any, lookup: dict[str, int], indices: bool
    ) -> list[int]:
        if indices:  # a list of ClassLabel: already class indices
            for item in value or []:
                check_class_index(item, where, row, self.label_field, self.class_names)
            return sorted(set(value or []))
        out = []
        for name in self._label_list(where, row, value):
            if name not in lookup:
                shown = self.class_names if len(lookup) <= 20 else f"{len(lookup):,} classes"
                raise DataError(
                    f"{where}, row {row}, field {self.label_field!r}: label {name!r:.80} was "
                    f"never seen in training (labels: {shown}). Add examples of it to the "
                    "training data, fix the label, or list it in `class_names`."
                )
            out.append(lookup[name])
        return sorted(out)

    def _label_index(
        self, where: str, row: int, value: Any, lookup: dict[str, int], by_name: bool
    ) -> int:
        value = _plain(value)
        if value is None:
            raise DataError(
                f"{where}, row {row}, field {self.label_field!r}: the label is missing (null). "
                "Label the row or remove it; unlabelled texts belong in the `predict` split."
            )
        check_label_value(value, where, row, self.label_field)
        if isinstance(value, int) and not by_name:
            # A class index; checked here, as one beyond int64 cannot even become a column.
            check_class_index(value, where, row, self.label_field, self.class_names)
            return value
        try:
            return lookup[str(value)]
        except KeyError:
            shown = self.class_names if len(lookup) <= 20 else f"{len(lookup):,} classes"
            raise DataError(
                f"{where}, row {row}, field {self.label_field!r}: label {value!r:.80} was never "
                f"seen in training (classes: {shown}). Add examples of it to the "
                "training data, fix the label, or list it in `class_names`."
            ) from None


def _report_classes(names: list[str], labels: list[str], where: str) -> None:
    """One line with the classes read from the labels and their counts, and a warning for names
    that differ only in case or surrounding spaces (a typo makes a class of its own)."""
    counts = Counter(labels)
    shown = ", ".join(f"{name!r} ({counts[name]:,})" for name in names[:20])
    more = f", ... ({len(names):,} classes)" if len(names) > 20 else ""
    rank_zero_info(f"Classes read from {where}: {shown}{more}.")
    alike: dict[str, list[str]] = {}
    for name in names:
        alike.setdefault(name.strip().casefold(), []).append(name)
    for group in (group for group in alike.values() if len(group) > 1):
        listed = ", ".join(f"{name!r} ({_texts(counts[name])})" for name in group)
        rank_zero_warn(
            f"{where}: the classes {listed} differ only in case or spaces, so they are trained "
            "as different classes. If they are one class, correct the labels and run again."
        )


def _texts(n: int) -> str:
    return f"{n:,} text" if n == 1 else f"{n:,} texts"


def _lists(train: datasets.Dataset | None, field: str) -> bool:
    """Is a training split's label column multi-label: a list feature, or any row a list?"""
    if train is None or field not in train.column_names:
        return False
    if isinstance(train.features[field], datasets.List | datasets.Sequence | list):
        return True
    return any(isinstance(v, list) for v in train[field])


def _class_label_list(feature: Any) -> bool:
    return isinstance(getattr(feature, "feature", None), datasets.ClassLabel)


def _digest(file: str) -> str:
    check_exists_and_not_empty(Path(file))  # our error, naming the file, not the OS's
    return file_digest(file)


def _plain(value: Any) -> Any:
    """A label as int/str/None: CSV readers turn int columns with gaps into floats with NaN."""
    if isinstance(value, float):
        return None if math.isnan(value) else int(value) if value.is_integer() else value
    return value


def _is_null(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _sort_key(value: Any) -> tuple[int, Any]:
    return (0, value) if isinstance(value, int) else (1, str(value))

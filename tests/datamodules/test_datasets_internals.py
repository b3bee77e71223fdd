"""The ``datasets`` internals fenced in ``datamodules/datasets_internals.py`` still exist.

These check each one directly on the installed ``datasets``, so that a release that changes
one fails here, by name, before a run silently degrades (docs/private_apis.md, #15).
"""

from __future__ import annotations

import datasets
import pyarrow.json as paj
import pytest

from datamodules import datasets_internals, loading


def test_a_dataset_still_has_a_fingerprint_that_follows_its_content():
    one = datasets.Dataset.from_dict({"text": ["a", "b"]})
    same = datasets.Dataset.from_dict({"text": ["a", "b"]})
    other = datasets.Dataset.from_dict({"text": ["a", "c"]})
    assert isinstance(one._fingerprint, str) and one._fingerprint
    assert datasets_internals.dataset_fingerprint(one) == datasets_internals.dataset_fingerprint(
        same
    )
    assert datasets_internals.dataset_fingerprint(one) != datasets_internals.dataset_fingerprint(
        other
    )


def test_hub_offline_is_still_the_module_constant_load_dataset_reads(monkeypatch):
    assert isinstance(datasets.config.HF_HUB_OFFLINE, bool)
    before = datasets.config.HF_HUB_OFFLINE
    with datasets_internals.hub_offline(not before):
        assert datasets.config.HF_HUB_OFFLINE is (not before)
        assert datasets_internals.hub_offline_default() is (not before)
    assert datasets.config.HF_HUB_OFFLINE is before
    # `load_dataset` reads it at call time: offline, a hub id fails without a network attempt.
    with datasets_internals.hub_offline(True), pytest.raises(Exception) as err:
        datasets.load_dataset("lit-seqcls-test/no-such-dataset-xyz")
    assert "offline" in str(err.value).lower() or "couldn't" in str(err.value).lower()


def test_a_missing_internal_is_named_with_the_datasets_version(monkeypatch):
    monkeypatch.delattr(datasets.config, "HF_HUB_OFFLINE")
    gone = f"datasets {datasets.__version__} changed"
    with pytest.raises(RuntimeError, match=gone), datasets_internals.hub_offline(True):
        pass
    ds = datasets.Dataset.from_dict({"text": ["a"]})
    monkeypatch.setattr(ds, "_fingerprint", None)
    with pytest.raises(RuntimeError, match=r"Dataset\._fingerprint"):
        datasets_internals.dataset_fingerprint(ds)


def test_a_mixed_type_json_column_is_still_a_public_json_feature(tmp_path):
    file = tmp_path / "mixed.jsonl"
    file.write_text('{"text": "a", "label": 1}\n{"text": "b", "label": "x"}\n')
    loaded = datasets.load_dataset("json", data_files={"train": str(file)}, cache_dir=str(tmp_path))
    assert isinstance(loaded["train"].features["label"], datasets.Json)
    with pytest.raises(loading.DataError, match="line 2, field 'label'"):
        loading._check_json_types(loaded, {"train": [str(file)]}, ["text"], ["label"])


def test_a_json_file_is_still_parsed_in_blocks_of_a_32nd_of_the_chunksize(tmp_path, monkeypatch):
    # `loading._one_block_chunksize` relies on it to parse a file as one block (pyarrow segfault).
    file = tmp_path / "rows.jsonl"
    file.write_text("".join(f'{{"text": "{"w " * 2000}", "label": {i % 2}}}\n' for i in range(300)))
    size = file.stat().st_size  # ~1.2 MB: more than the 16 KB floor and 10 MB / 32
    blocks, read_json = [], paj.read_json

    def recording(source, read_options=None, **kwargs):
        blocks.append(read_options.block_size)
        return read_json(source, read_options=read_options, **kwargs)

    monkeypatch.setattr(paj, "read_json", recording)
    chunksize = datasets_internals.json_chunksize_for_one_block(size)
    loaded = datasets.load_dataset(
        "json", data_files=str(file), chunksize=chunksize, cache_dir=str(tmp_path / "cache")
    )
    assert len(loaded["train"]) == 300
    assert blocks and min(blocks) >= size
    assert chunksize // datasets_internals.JSON_BLOCKS_PER_CHUNK > size

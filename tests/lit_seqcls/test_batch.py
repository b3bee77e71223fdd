import pytest
import torch

from lit_seqcls.batch import PAD_ID, Batch, collate


def test_collate_pads_to_longest_and_keeps_order():
    batch = collate(
        [
            {"input_ids": [4, 5], "label": 2, "index": 7},
            {"input_ids": [9, 8, 7, 6], "label": 0, "index": 3},
        ]
    )
    assert batch.input_ids.tolist() == [[4, 5, PAD_ID, PAD_ID], [9, 8, 7, 6]]
    assert batch.lengths.tolist() == [2, 4]
    assert batch.labels.tolist() == [2, 0]
    assert batch.index.tolist() == [7, 3]
    assert batch.mask.sum().item() == 6


def test_collate_rounds_width_up_to_multiple():
    batch = collate([{"input_ids": [1] * 9}], pad_to_multiple_of=8)
    assert batch.input_ids.shape == (1, 16)
    assert batch.lengths.tolist() == [9]


def test_collate_without_labels_for_predict():
    batch = collate([{"input_ids": [3]}, {"input_ids": [3, 4]}])
    assert batch.labels is None and batch.index is None


def test_collate_rejects_empty_text():
    with pytest.raises(ValueError, match="zero tokens"):
        collate([{"input_ids": []}])


def test_batch_moves_to_device_with_lightning():
    from lightning.fabric.utilities.apply_func import move_data_to_device

    batch = collate([{"input_ids": [1, 2], "label": 1}])
    moved = move_data_to_device(batch, torch.device("cpu"))
    assert isinstance(moved, Batch) and torch.equal(moved.input_ids, batch.input_ids)

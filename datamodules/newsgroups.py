"""``NewsgroupsDataModule``: 20 Newsgroups topic classification, ``SetFit/20_newsgroups``.

The "bydate" split: 11,314 training and 7,532 test posts in 20 groups, with headers, signature
blocks and quoted replies already removed (as scikit-learn's ``remove=('headers', 'footers',
'quotes')``), so a model cannot cheat on the sender or the group name in the header. JSON Lines
with ``text``, ``label`` and ``label_text``; the class names come from ``label_text``. Some posts
are empty after the clean-up: they are kept (one ``[UNK]`` token), as in the reference numbers.
"""

from __future__ import annotations

from typing import Any

from datamodules.text import TextDataModule

NEWSGROUPS_HUB_ID = "SetFit/20_newsgroups"
# A hub commit of `SetFit/20_newsgroups` that public projects pin when they load it (it could
# not be checked against the hub from here); pass `revision: main` for the newest.
NEWSGROUPS_REVISION = "f1b91292074e7cfb69be58b642d583ec262f30ed"


class NewsgroupsDataModule(TextDataModule):
    """20 Newsgroups, 20 classes named by ``label_text`` (see the module docstring).

    Args:
        path: the hub id, or a local folder in the same layout (``train.jsonl[.gz]``,
            ``test.jsonl[.gz]``).
        revision: the hub commit, tag or branch to load (ignored for a local folder).
        max_length: tokens kept per post (longer ones are truncated; a few posts are very long).
        **kwargs: the shared data arguments (see ``TextDataModule`` and
            ``TextClassificationDataModule``).
    """

    def __init__(
        self,
        path: str = NEWSGROUPS_HUB_ID,
        revision: str | None = NEWSGROUPS_REVISION,
        max_length: int | None = 400,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            path=path,
            revision=revision,
            split={"train": "train", "test": "test"},
            label_names_field="label_text",
            max_length=max_length,
            **kwargs,
        )

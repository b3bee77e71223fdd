"""Data sources registered by other packages: the ``lit_seqcls.datamodules`` entry-point group.

Importing them is what lets ``--data SyntheticDataModule`` (a short class name) resolve, in the CLI
and in ``compare``'s reference row alike; the core itself never imports ``datamodules/`` (see
docs/DESIGN.md).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib.metadata import entry_points
from typing import Any

from lightning.pytorch.utilities import rank_zero_warn

from lit_seqcls.trust import check_untrusted

PLUGIN_GROUP = "lit_seqcls.datamodules"


def load_datamodule_plugins() -> dict[str, type]:
    """Import every DataModule registered under the ``lit_seqcls.datamodules`` entry-point group.

    Importing them is what lets ``--data SyntheticDataModule`` (a short class name) resolve; the
    core itself never imports ``datamodules/`` (see docs/DESIGN.md). A plugin that fails to import
    is reported and skipped, so one broken package does not take the CLI down.
    """
    plugins = {}
    for entry in entry_points(group=PLUGIN_GROUP):
        try:
            plugins[entry.name] = entry.load()
        except Exception as err:
            rank_zero_warn(f"Skipping data plugin {entry.name!r} ({entry.value}): {err}")
    return plugins


def build_datamodule(
    sections: Sequence[dict[str, Any] | None], data_args: Sequence[str] = ()
) -> Any:
    """The DataModule ``fit`` builds from config ``data:`` sections (later ones override earlier
    ones) and ``--data...`` arguments, checked by ``check_untrusted`` before it is instantiated.

    A DataModule reads no data in its constructor, so this is cheap: ``vectors`` builds the one
    it trains on, ``compare`` the one of each encoder's runs (to check their input files before
    it starts) and of its reference row. Raises jsonargparse's ``ArgumentError`` for arguments
    that do not parse, and a ``UserError`` for a class path or setting that is refused.
    """
    import lightning as L
    from jsonargparse import ArgumentParser

    load_datamodule_plugins()  # short class names resolve as in `fit`
    args = [a for data in sections if data is not None for a in ("--data", json.dumps(data))]
    parser = ArgumentParser(exit_on_error=False, prog="lit-seqcls")
    parser.add_subclass_arguments(L.LightningDataModule, "data", required=True)
    parsed = parser.parse_args([*args, *data_args])
    check_untrusted(parsed.as_dict(), "the data configuration (config files and --data)")
    instantiate = getattr(parser, "instantiate", None) or parser.instantiate_classes
    return instantiate(parsed).data


def data_arguments(args: Sequence[str]) -> list[str]:
    """The ``--data...`` options of command-line ``args``, each with its value.

    Example:
        >>> data_arguments(["--data.init_args.path", "x", "--model.embedding_dim=8", "--data=y"])
        ['--data.init_args.path', 'x', '--data=y']
    """
    kept, keep = [], False
    for arg in args:
        if arg.startswith("--"):
            keep = arg.split("=", 1)[0].split(".", 1)[0] == "--data"
        if keep:
            kept.append(arg)
    return kept

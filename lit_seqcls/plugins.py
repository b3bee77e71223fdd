"""Data sources registered by other packages: the ``lit_seqcls.datamodules`` entry-point group.

Importing them is what lets ``--data SyntheticDataModule`` (a short class name) resolve, in the CLI
and in ``compare``'s reference row alike; the core itself never imports ``datamodules/`` (see
docs/DESIGN.md).
"""

from __future__ import annotations

from importlib.metadata import entry_points

from lightning.pytorch.utilities import rank_zero_warn

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

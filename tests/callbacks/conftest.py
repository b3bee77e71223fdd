"""W&B side directories under tmp_path (artifact staging, cache, settings), and no run left open."""

from __future__ import annotations

import pytest


def wandb_env(root) -> dict[str, str]:
    """Environment for an offline W&B run that writes only under ``root``."""
    return {
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        "WANDB_DIR": str(root / "wandb"),
        # Tables with media are staged as artifacts here (what `wandb sync` uploads later).
        "WANDB_DATA_DIR": str(root / "wandb_data"),
        "WANDB_CACHE_DIR": str(root / "wandb_cache"),
        "WANDB_CONFIG_DIR": str(root / "wandb_config"),
    }


@pytest.fixture(autouse=True)
def _wandb_under_tmp_path(tmp_path, monkeypatch):
    for key, value in wandb_env(tmp_path).items():
        monkeypatch.setenv(key, value)
    yield
    import wandb

    wandb.finish()  # an open run would be reused by the next test's logger

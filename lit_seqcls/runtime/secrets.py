"""Secrets from the environment (API keys, tokens) are never written anywhere we write.

Credentials reach a run through the environment (``WANDB_API_KEY``, ``HF_TOKEN``, ...) and the
libraries that need them read them there; none of what lit-seqcls writes (``config.yaml``, the
W&B config, checkpoints) may hold their values. ``find_secrets`` looks for the *values*, so a key
pasted into any config field (or a path built from one) is caught, whatever the field is called.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from lit_seqcls.errors import UserError

# Variable names that hold credentials: HF_TOKEN, WANDB_API_KEY, AWS_SECRET_ACCESS_KEY, ...
# Whole words only (TOKENIZERS_PARALLELISM is not a token); *_FILE/_PATH/_DIR name where a
# secret is kept, which is not itself secret.
_SECRET_NAME = re.compile(
    r"(^|_)(TOKEN|API_?KEY|SECRET|PASSWORD|PASSWD|CREDENTIALS?|ACCESS_KEY|PRIVATE_KEY)(_|$)", re.I
)
_NOT_SECRET = re.compile(r"_(FILE|PATH|DIR)$", re.I)
MIN_LENGTH = 8  # shorter values ("1", "true") would match everywhere and protect nothing


class SecretInConfigError(ValueError, UserError):
    """A value to be written (config, checkpoint) holds a secret from the environment."""


def secret_values(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``{value: variable name}`` of the credentials found in ``environ`` (``os.environ``).

    Example:
        >>> secret_values({"HF_TOKEN": "hf_abcdefgh", "TOKENIZERS_PARALLELISM": "false-ish"})
        {'hf_abcdefgh': 'HF_TOKEN'}
    """
    environ = os.environ if environ is None else environ
    return {
        value: name
        for name, value in environ.items()
        if _SECRET_NAME.search(name) and not _NOT_SECRET.search(name) and len(value) >= MIN_LENGTH
    }


def find_secrets(obj: Any, secrets: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """``(where, variable)`` for every string in ``obj`` (nested dicts/lists) holding a secret.

    Example:
        >>> find_secrets({"data": {"paths": ["a", "/x/hf_abcdefgh"]}}, {"hf_abcdefgh": "HF_TOKEN"})
        [('data.paths[1]', 'HF_TOKEN')]
    """
    secrets = secret_values() if secrets is None else secrets
    if not secrets:
        return []
    found: list[tuple[str, str]] = []
    _walk(obj, "", secrets, found)
    return found


def _walk(obj: Any, where: str, secrets: Mapping[str, str], found: list) -> None:
    if isinstance(obj, str | bytes):
        text = obj.decode("utf-8", "replace") if isinstance(obj, bytes) else obj
        found.extend((where or "<root>", name) for value, name in secrets.items() if value in text)
    elif isinstance(obj, Mapping):
        for key, value in obj.items():
            _walk(key, where, secrets, found)
            _walk(value, f"{where}.{key}" if where else str(key), secrets, found)
    elif isinstance(obj, list | tuple | set | frozenset):
        for i, value in enumerate(obj):
            _walk(value, f"{where}[{i}]", secrets, found)


def secrets_message(found: list[tuple[str, str]], what: str) -> str:
    """A message for people: what would have been written where, and what to do instead."""
    places = ", ".join(f"{where} (the value of ${name})" for where, name in found[:5])
    return (
        f"Refusing to write {what}: {places} holds a secret from the environment, and it would "
        "end up in config.yaml, W&B and checkpoints. Keep credentials in environment variables "
        "only (the libraries read them there); do not paste them into options or config files."
    )

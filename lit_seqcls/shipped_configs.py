"""The configs that ship inside the package, by name (``lit_seqcls:model/cnn.yaml``) or copied out.

``lit_seqcls/configs/`` is the one copy: a checkout's ``configs/`` is a link to it, and a wheel
(``pip install .`` on a cluster, in a container) carries it as package data. So the CLI's
training defaults (``trainer/default.yaml``) hold with or without a checkout, and any shipped
config can be named from anywhere::

    lit-seqcls fit --config lit_seqcls:data/synthetic.yaml --config lit_seqcls:model/cnn.yaml
    lit-seqcls configs my_configs   # a copy to edit: --config my_configs/model/cnn.yaml
"""

from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path

from lit_seqcls.errors import UserError
from lit_seqcls.runtime.outputs import OutputFileError, check_output_dir

PREFIX = "lit_seqcls:"
CONFIG_OPTION = "--config"


class ShippedConfigError(FileNotFoundError, UserError):
    """A ``lit_seqcls:<name>`` that is not a shipped config; the message lists those that are."""


def shipped_root() -> Path:
    """The folder of the shipped configs, in the installed package (or the checkout)."""
    return Path(str(resources.files("lit_seqcls") / "configs"))


def shipped_names() -> list[str]:
    """Every shipped config, as ``<group>/<file>.yaml``.

    Example:
        >>> "model/cnn.yaml" in shipped_names() and "trainer/default.yaml" in shipped_names()
        True
    """
    root = shipped_root()
    return sorted(path.relative_to(root).as_posix() for path in root.rglob("*.yaml"))


def shipped_config(name: str) -> Path:
    """The file of the shipped config ``name`` (``model/cnn.yaml``, with or without the prefix).

    Only the listed names resolve, so ``lit_seqcls:../cli.py`` names nothing.

    Example:
        >>> shipped_config("lit_seqcls:model/cnn.yaml").read_text().startswith("model:")
        True
    """
    name = name.removeprefix(PREFIX)
    names = shipped_names()
    if name not in names:
        group = name.split("/")[0]
        near = [n for n in names if n.startswith(f"{group}/")] or names
        raise ShippedConfigError(
            f"{PREFIX}{name} is not a config shipped with lit-seqcls; shipped "
            f"{f'in {group}/' if near != names else 'ones'}: "
            f"{', '.join(PREFIX + n for n in near)} (`lit-seqcls configs --list` names all)."
        )
    return shipped_root() / name


def resolve_config_names(argv: list[str]) -> list[str]:
    """``argv`` with every ``--config lit_seqcls:<name>`` replaced by the shipped file's path.

    Example:
        >>> args = resolve_config_names(["fit", "--config=lit_seqcls:model/cnn.yaml", "--x", "1"])
        >>> args[1].startswith("--config=/") and args[1].endswith("model/cnn.yaml"), args[2:]
        (True, ['--x', '1'])
    """
    resolved = []
    for i, arg in enumerate(argv):
        if arg.startswith(f"{CONFIG_OPTION}={PREFIX}"):
            arg = f"{CONFIG_OPTION}={shipped_config(arg.split('=', 1)[1])}"
        elif i > 0 and argv[i - 1] == CONFIG_OPTION and arg.startswith(PREFIX):
            arg = str(shipped_config(arg))
        resolved.append(arg)
    return resolved


def copy_configs(dest: str | Path, overwrite: bool = False) -> tuple[list[Path], int]:
    """Copy every shipped config into ``dest`` (same layout); the files written, and how many
    were already there unchanged.

    ``dest`` must be new, empty or an earlier copy (``lit_seqcls/runtime/outputs.py``'s rule),
    and a file there that differs from the shipped one (edited since) is kept unless
    ``overwrite``: then nothing is written at all.
    """
    dest = Path(dest).expanduser()
    check_output_dir(
        dest,
        overwrite=overwrite,
        looks_like_ours=_holds_a_copy,
        option="lit-seqcls configs",
        overwrite_option="--overwrite",
    )
    root, todo, unchanged, edited = shipped_root(), [], 0, []
    for name in shipped_names():
        source, target = root / name, dest / name
        if target.is_file() and target.read_bytes() == source.read_bytes():
            unchanged += 1  # also what a checkout's own configs/ (a link to root) gives
        elif target.exists() and not overwrite:
            edited.append(name)
        else:
            todo.append((source, target))
    if edited:
        raise OutputFileError(
            f"{dest} already holds {len(edited)} config(s) that differ from the shipped ones "
            f"({', '.join(edited)}), edits perhaps; nothing was copied. Copy into a new folder, "
            "or pass --overwrite to replace them."
        )
    for source, target in todo:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read_bytes())
    return [target for _, target in todo], unchanged


def main(argv: list[str]) -> None:
    """``lit-seqcls configs [DEST] [--overwrite] [--list]``."""
    parser = argparse.ArgumentParser(
        prog="lit-seqcls configs",
        description="Copy the configs shipped with lit-seqcls into DEST, to edit and use with "
        "--config DEST/<group>/<file>.yaml. Unedited, they are also usable by name from "
        "anywhere: --config lit_seqcls:<group>/<file>.yaml.",
    )
    parser.add_argument("dest", nargs="?", default="configs", help="folder (default: configs)")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace files in DEST that differ"
    )
    parser.add_argument(
        "--list", action="store_true", help="print the shipped names and copy nothing"
    )
    options = parser.parse_args(argv)
    if options.list:
        print("\n".join(PREFIX + name for name in shipped_names()))
        return
    written, unchanged = copy_configs(options.dest, options.overwrite)
    kept = f" ({unchanged} already there, unchanged)" if unchanged else ""
    print(
        f"Copied {len(written)} config file(s) to {options.dest}{kept}. Use them with "
        f"--config {Path(options.dest) / 'data' / 'synthetic.yaml'} "
        f"--config {Path(options.dest) / 'model' / 'cnn.yaml'}"
    )


def _holds_a_copy(path: Path) -> bool:
    return any((path / name).is_file() for name in shipped_names())

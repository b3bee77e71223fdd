"""``python -m lit_seqcls`` runs the CLI (the same as the ``lit-seqcls`` console script)."""

from lit_seqcls.cli import main

main()

"""``python -m lit_seqcls.serving --bundle DIR --data.data_files.predict FILE``: see ``command``."""

from lit_seqcls.serving.command import main

if __name__ == "__main__":  # pragma: no cover
    main()

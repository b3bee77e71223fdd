"""``UserError``: the base of every error whose message already says what happened and what to do.

The CLI prints such an error as one block, ``lit-seqcls: error: <message>``, without the Python
traceback that would bury it (set ``LIT_SEQCLS_DEBUG=1`` to see the traceback too). Anything else
is a bug and keeps its traceback. Subclasses also derive from the built-in error that fits
(``ValueError`` for bad input), so ``except ValueError`` keeps working for Python users.
"""

from __future__ import annotations

DEBUG_ENV = "LIT_SEQCLS_DEBUG"


class UserError(Exception):
    """An error for people: bad input, a refused file or setting; never a bug of ours.

    Example:
        >>> class BadSetting(ValueError, UserError): ...
        >>> isinstance(BadSetting("dropout must be in [0, 1), got 1.5"), UserError)
        True
    """


def first_line(err: BaseException) -> str:
    """``"<error type>: <first line of its message>"``: an error as a short reason in a sentence.

    Example:
        >>> first_line(OSError("No space left on device\\nand more"))
        'OSError: No space left on device'
    """
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def user_error_in(err: BaseException | None) -> UserError | None:
    """``err`` or the error it wraps, if it is a ``UserError`` (jsonargparse and Lightning wrap
    errors raised in constructors and hooks).

    Example:
        >>> class BadSetting(ValueError, UserError): ...
        >>> try:
        ...     try:
        ...         raise BadSetting("max_length must be a positive integer, got 0")
        ...     except BadSetting as inner:
        ...         raise ValueError("Does not validate against any of the subtypes") from inner
        ... except ValueError as outer:
        ...     str(user_error_in(outer))
        'max_length must be a positive integer, got 0'
    """
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, UserError):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None

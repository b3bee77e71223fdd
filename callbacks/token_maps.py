"""How texts are shown with their token weights: the window around the weight, and the HTML."""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np


def window(weights: Sequence[float], size: int) -> tuple[int, int]:
    """``[start, stop)`` of the ``size`` consecutive tokens with the largest total weight.

    Example:
        >>> window([0.1, 0.1, 0.5, 0.2, 0.1], 2)
        (2, 4)
        >>> window([0.5, 0.5], 10)
        (0, 2)
    """
    n = len(weights)
    if n <= size:
        return 0, n
    sums = np.convolve(np.asarray(weights, dtype=float), np.ones(size), mode="valid")  # (n-size+1,)
    start = int(sums.argmax())
    return start, start + size


def tokens_html(tokens: Sequence[str], weights: Sequence[float], clipped: tuple[bool, bool]) -> str:
    """Tokens as HTML spans shaded by weight (relative to the largest); hover shows the weight.

    ``clipped`` says whether text was cut before and after the tokens, shown as ``…``.

    Example:
        >>> html_text = tokens_html(["a", "<b>"], [0.25, 0.75], (False, True))
        >>> html_text[html_text.index("<span"):]
        '<span title="0.2500" style="background:rgba(214,39,40,0.33)">a</span> <span
        title="0.7500" style="background:rgba(214,39,40,1.00)">&lt;b&gt;</span> …</div>'
    """
    top = max(max(weights, default=0.0), 1e-12)
    spans = [
        f'<span title="{w:.4f}" style="background:rgba(214,39,40,{w / top:.2f})">'
        f"{html.escape(t)}</span>"
        for t, w in zip(tokens, weights, strict=True)
    ]
    body = " ".join(["…"] * clipped[0] + spans + ["…"] * clipped[1])
    return f'<div style="font-family:sans-serif;line-height:1.8">{body}</div>'


def html_page(title: str, sections: Sequence[tuple[str, str]]) -> str:
    """A standalone page: ``title`` and one ``(heading, body_html)`` section per example."""
    parts = [f"<h3>{html.escape(heading)}</h3>{body}" for heading, body in sections]
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"</head><body><h2>{html.escape(title)}</h2>{''.join(parts)}</body></html>"
    )

"""How large is the 15-bin ECE of a perfectly calibrated model, from a finite sample alone?

docs/decisions.md (IMDB calibration) compares test ECE with #18's target of 0.02. This draws
texts whose correct-or-not is a coin with exactly the model's confidence (so the true calibration
error is 0) and measures torchmetrics' top-label ECE, the one the package logs, on validation-
and test-sized samples. Confidences: uniform on [0.5, 1], or skewed towards 1 (0.5 + 0.5 ·
Beta(3, 1)), as a two-class model's are.

    python benchmarks/ece_noise.py   # a few seconds
"""

from __future__ import annotations

import numpy as np
import torch
from torchmetrics.functional.classification import binary_calibration_error


def ece_of_calibrated(n: int, spread: str, rng: np.random.Generator) -> float:
    confidence = rng.uniform(0.5, 1.0, n) if spread == "uniform" else 0.5 + 0.5 * rng.beta(3, 1, n)
    correct = rng.random(n) < confidence
    # Two classes: predict class 1 with probability = confidence; the label is 1 when correct.
    return float(
        binary_calibration_error(
            torch.tensor(confidence), torch.tensor(correct.astype(np.int64)), n_bins=15
        )
    )


def main() -> None:
    rng = np.random.default_rng(0)
    print("| texts | confidences | mean ECE | 95th percentile |")
    print("|---|---|---|---|")
    for n in (2_500, 25_000):
        for spread in ("uniform", "skewed"):
            values = [ece_of_calibrated(n, spread, rng) for _ in range(300)]
            print(f"| {n:,} | {spread} | {np.mean(values):.4f} | {np.percentile(values, 95):.4f} |")


if __name__ == "__main__":
    main()

"""``AttentionMapLogger``: the same validation texts every few epochs, coloured by token weight."""

from __future__ import annotations

import json
import random
from typing import Any, Literal

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from callbacks import figures, sinks, token_maps
from lit_seqcls.attribution import class_probabilities, token_weights
from lit_seqcls.validation import require_positive_int

Candidate = tuple[float, int, list[int]]  # (sort key, row index in the split, token ids)
# (row in `selected`, predicted, confidence, caption after the arrow, weights (T,))
Explained = tuple[int, str, float, str, torch.Tensor]
TITLES = {
    "attention": "Attention weights",
    "integrated_gradients": "Token importance (integrated gradients)",
    "gradient_x_input": "Token importance (gradient × input)",
}


class AttentionMapLogger(Callback):
    """Logs which tokens decided, for a fixed, class-balanced set of validation texts.

    The texts are picked once, in the first validation epoch after the sanity check: a seeded
    pseudo-random order over row indices, taken round-robin over the classes, so the set is the
    same at every epoch, on every run with the same seed, and at any world size (it is kept in
    the checkpoint too). Then, every ``every_n_epochs``, rank zero logs to W&B a table
    (``val/token_weights``: text, true and predicted label, confidence, the tokens as
    ``wandb.Html`` coloured by weight, and the weights) and one tokens × examples heatmap
    (``val/token_weights_image``), and writes PNG, HTML and CSV under
    ``<log dir>/media/token_weights/``.

    Weights are the encoder's attention when it has one (the ``attention`` encoder) and token
    importance otherwise (``lit_seqcls.attribution``: integrated gradients by default). Padding
    is never drawn; a text longer than ``max_tokens`` is shown around its highest weights.
    Confidences are the model's calibrated probabilities (its current ``temperature``).

    A multi-label model gets one row per (text, predicted label): the labels whose probability
    reaches the label's threshold (the model's current ``thresholds``, the ones this epoch's
    validation metrics used), most probable first, at most ``max_labels``; when none does, the
    most probable label, marked ``(below threshold)``. Each row's importance explains that
    label's logit; the ``attention`` encoder's map is the same for every label, so it keeps one
    row per text whose ``predicted`` lists the labels (``db|web``) and whose confidence is the
    first one's.

    Args:
        num_examples: texts to follow (balanced across classes).
        every_n_epochs: log every this many validation epochs.
        max_tokens: tokens drawn per text, at most (a window around the highest weights); not
            the DataModule's ``max_tokens`` batch budget.
        importance: ``integrated_gradients`` or ``gradient_x_input``, for encoders without
            attention (or all encoders with ``use_attention=False``).
        use_attention: draw attention weights when the encoder returns them.
        seed: seed of the pick.
        max_labels: multi-label models: rows per text, at most (its most probable labels).

    Example:
        >>> AttentionMapLogger(num_examples=4).num_examples
        4
    """

    def __init__(
        self,
        num_examples: int = 8,
        every_n_epochs: int = 1,
        max_tokens: int = 30,
        importance: Literal["integrated_gradients", "gradient_x_input"] = "integrated_gradients",
        use_attention: bool = True,
        seed: int = 0,
        max_labels: int = 4,
    ) -> None:
        self.num_examples = num_examples
        self.every_n_epochs = every_n_epochs
        self.max_tokens = max_tokens
        self.importance = importance
        self.use_attention = use_attention
        self.seed = seed
        self.max_labels = require_positive_int("max_labels", max_labels)
        self.selected: list[dict[str, Any]] | None = None  # [{"index", "label", "ids"}]
        self._candidates: dict[int, list[Candidate]] = {}

    # ---- picking the texts (first validation epoch; a collective at its end) -----------------
    def on_validation_batch_end(
        self, trainer, pl_module, outputs: Any, batch: Any, batch_idx: int, dataloader_idx=0
    ) -> None:
        if self.selected is not None or trainer.sanity_checking:
            return
        for row, (index, label) in enumerate(
            zip(batch.index.tolist(), batch.labels.tolist(), strict=True)
        ):
            if isinstance(label, list):  # multi-label: grouped by label set, "0|2"
                label = "|".join(str(i) for i, v in enumerate(label) if v)
            key = random.Random(self.seed * 1_000_003 + index).random()
            pool = self._candidates.setdefault(label, [])
            if len(pool) < self.num_examples or key < pool[-1][0]:
                ids = batch.input_ids[row, : batch.lengths[row]].tolist()
                pool.append((key, index, ids))
                pool.sort()
                del pool[self.num_examples :]  # keep this rank's best few per class

    def _select(self, trainer: L.Trainer) -> None:
        merged: dict[int, list[Candidate]] = {}
        for part in sinks.gather_objects(trainer, self._candidates):  # a collective
            for label, pool in part.items():
                merged.setdefault(label, []).extend(pool)
        queues = {label: sorted(pool) for label, pool in sorted(merged.items())}
        picked: list[dict[str, Any]] = []
        while len(picked) < self.num_examples and any(queues.values()):
            for label, queue in queues.items():  # round-robin over classes: balanced
                if queue and len(picked) < self.num_examples:
                    _, index, ids = queue.pop(0)
                    picked.append({"index": index, "label": label, "ids": ids})
        self.selected = sorted(picked, key=lambda ex: (ex["label"], ex["index"]))
        self._candidates = {}

    # ---- logging ------------------------------------------------------------------------------
    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        if self.selected is None:
            self._select(trainer)
        if (trainer.current_epoch + 1) % self.every_n_epochs != 0 or not self.selected:
            return
        out_dir = sinks.local_dir(trainer, "token_weights")  # a collective
        if out_dir is None:
            return
        method = self._method(pl_module)
        rows = self._rows(trainer, pl_module, method)
        self._write(trainer, rows, method, out_dir)

    def _method(self, pl_module: L.LightningModule) -> str:
        has_attention = getattr(pl_module.network.encoder, "returns_attention", False)
        return "attention" if self.use_attention and has_attention else self.importance

    def _rows(self, trainer: L.Trainer, pl_module: Any, method: str) -> list[dict[str, Any]]:
        lengths = torch.tensor([len(ex["ids"]) for ex in self.selected])  # (N,)
        input_ids = torch.zeros(len(self.selected), int(lengths.max()), dtype=torch.long)
        for row, ex in enumerate(self.selected):
            input_ids[row, : lengths[row]] = torch.tensor(ex["ids"])  # (N, T), 0 = padding
        device = pl_module.device
        input_ids, lengths = input_ids.to(device), lengths.to(device)
        names = sinks.class_names(trainer, pl_module)
        datamodule = getattr(trainer, "datamodule", None)
        tokenizer = getattr(datamodule, "tokenizer", None)
        texts = sinks.texts(trainer, "val")
        explained: list[Explained]
        if getattr(pl_module, "multi_label", False):
            explained = self._label_rows(pl_module, input_ids, lengths, method, names)
        else:
            weights, probs = token_weights(pl_module, input_ids, lengths, method)
            explained = []
            for row in range(len(self.selected)):
                pred = int(probs[row].argmax())
                confidence = float(probs[row, pred])
                caption = f"{names[pred]} ({confidence:.0%})"
                explained.append((row, names[pred], confidence, caption, weights[row]))
        rows = []
        for row, predicted, confidence, caption, weights in explained:
            ex = self.selected[row]
            true = _names(names, ex["label"])
            rows.append(
                {
                    "index": ex["index"],
                    "true": true,
                    "predicted": predicted,
                    "confidence": confidence,
                    "text": texts[ex["index"]] if texts is not None else "",
                    "tokens": [_token(tokenizer, i) for i in ex["ids"]],
                    "weights": weights[: len(ex["ids"])].tolist(),
                    "caption": f"#{ex['index']}: {true} → {caption}",
                }
            )
        return rows

    def _label_rows(
        self, pl_module: Any, input_ids: torch.Tensor, lengths: torch.Tensor, method: str, names
    ) -> list[Explained]:
        """Multi-label: one row per (text, predicted label); per text for attention maps."""
        network = pl_module.network
        was_training = network.training
        network.eval()
        try:
            with torch.no_grad():
                logits = network(input_ids, lengths).logits  # (N, C)
        finally:
            network.train(was_training)
        probs = class_probabilities(pl_module, logits).cpu()  # (N, C), calibrated sigmoids
        thresholds = pl_module.thresholds.float().cpu()  # (C,)
        picked = []  # (text row, its labels most probable first, whether they reach thresholds)
        for row, p in enumerate(probs):
            order = p.argsort(descending=True).tolist()
            above = [c for c in order if p[c] >= thresholds[c]][: self.max_labels]
            picked.append((row, above or order[:1], bool(above)))

        def explained(row: int, labels: list[int], reached: bool, weights) -> Explained:
            joined = "|".join(names[c] for c in labels)
            numbers = ", ".join(f"{float(probs[row, c]):.2f}" for c in labels)
            mark = "" if reached else "below threshold"
            predicted = f"{joined} ({mark})" if mark else joined
            caption = f"{joined} ({numbers}{', ' + mark if mark else ''})"
            return row, predicted, float(probs[row, labels[0]]), caption, weights

        if method == "attention":  # one map per text, the same whichever label
            weights, _ = token_weights(pl_module, input_ids, lengths, method)  # (N, T)
            return [explained(*pick, weights[pick[0]]) for pick in picked]
        pairs = [(row, [c], reached) for row, labels, reached in picked for c in labels]
        texts = torch.tensor([row for row, _, _ in pairs], device=input_ids.device)  # (R,)
        target = torch.tensor([c for _, (c,), _ in pairs], device=input_ids.device)  # (R,)
        weights, _ = token_weights(
            pl_module, input_ids[texts], lengths[texts], method, target=target
        )  # (R, T): each row explains its own label's logit
        return [explained(*pair, weights[k]) for k, pair in enumerate(pairs)]

    def _write(self, trainer: L.Trainer, rows: list[dict], method: str, out_dir) -> None:
        what = TITLES[method]
        epoch = sinks.evaluated_epoch(trainer)
        title = f"{what}, validation, epoch {epoch}"
        stem = sinks.file_stem("val", epoch)
        shown, htmls, labels = [], [], []
        for r in rows:
            n = len(r["tokens"])
            start, stop = token_maps.window(r["weights"], self.max_tokens)
            shown.append((r["tokens"][start:stop], r["weights"][start:stop]))
            htmls.append(token_maps.tokens_html(*shown[-1], (start > 0, stop < n)))
            where = f", tokens {start + 1}–{stop} of {n}" if stop - start < n else ""
            labels.append(r["caption"] + where)
        unit = "attention" if method == "attention" else "share of |attribution|"
        fig = figures.token_heatmap_figure(
            [s[0] for s in shown], [s[1] for s in shown], labels, title, f"{unit} ÷ row maximum"
        )
        png = figures.save(fig, out_dir / f"{stem}.png")
        (out_dir / f"{stem}.html").write_text(
            token_maps.html_page(title, list(zip(labels, htmls, strict=True))), encoding="utf-8"
        )
        columns = ["index", "true", "predicted", "confidence", "text", "tokens", "weights"]
        table = [
            [r[c] if c not in ("tokens", "weights") else json.dumps(r[c]) for c in columns]
            for r in rows
        ]
        sinks.write_csv(out_dir / f"{stem}.csv", columns, table)
        if sinks.wandb_run(trainer) is None:
            return
        import wandb

        html_cells = [wandb.Html(h, inject=False) for h in htmls]
        sinks.log_to_wandb(
            trainer,
            {
                "val/token_weights": wandb.Table(
                    columns=[*columns, "html"],
                    data=[[*r, h] for r, h in zip(table, html_cells, strict=True)],
                ),
                "val/token_weights_image": wandb.Image(str(png), caption=title),
            },
        )

    def state_dict(self) -> dict[str, Any]:
        return {"selected": self.selected}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.selected = state_dict.get("selected")


def _names(names: list[str], label: int | str) -> str:
    """A class name, or a multi-label set ("0|2") as its names joined by "|"."""
    if isinstance(label, int):
        return names[label]
    return "|".join(names[int(i)] for i in label.split("|") if i) or "(none)"


def _token(tokenizer: Any, token_id: int) -> str:
    token = tokenizer.id_to_token(token_id) if tokenizer is not None else None
    return token if token is not None else str(token_id)

"""Which tokens decided: attention weights, or gradient-based importance for any encoder.

``token_weights`` returns one non-negative weight per real token that sums to 1 per text and is
exactly 0 on padding, so the same pictures work for every encoder:

- ``attention``: the encoder's own attention weights (only encoders that return them).
- ``integrated_gradients`` (Sundararajan et al., 2017): the gradient of the explained class's
  logit (the argmax, or a ``target`` per text: one label of a multi-label model) with respect
  to the token embeddings, averaged along the straight path from an all-zero embedding (the
  padding embedding) to the real one (midpoint rule, ``steps`` points), times the embedding,
  summed over the embedding dimension. The attributions add up to
  ``logit(x) - logit(0)`` (checked in the tests).
- ``gradient_x_input``: the same with one gradient at the real embedding (cheaper, noisier).

For the gradient methods the weight is ``|attribution| / sum |attribution|`` over the text: a
share of the evidence, not its sign. Gradients are taken with respect to the embedding output
only (``torch.autograd.grad``), so no parameter ``.grad`` is touched (nor any DDP hook fired),
and they work inside Lightning's ``inference_mode`` evaluation loops. They run the network's own
forward from the embeddings on (``TextClassifierNetwork.classify``), in eval mode.

The probabilities returned alongside are the model's calibrated ones (``class_probabilities``):
``softmax(logits / T)``, or for a multi-label model an independent ``sigmoid(logits / T)`` per
label, with ``T`` the ``SequenceClassifier``'s fitted ``temperature`` (1 for a bare network): the
numbers ``predict`` and the other analysis callbacks show.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from lit_seqcls.masking import lengths_to_mask
from lit_seqcls.network import TextClassifierNetwork

Method = Literal["attention", "integrated_gradients", "gradient_x_input"]


def class_probabilities(
    model: nn.Module, logits: Tensor, multi_label: bool | None = None
) -> Tensor:
    """The model's calibrated probabilities ``(B, C)`` for its ``logits`` ``(B, C)``.

    Softmax of ``logits / temperature``, or for a multi-label model (``model.multi_label``, or
    ``multi_label=True`` for a bare network) a sigmoid per label. The temperature is the
    ``SequenceClassifier``'s ``temperature`` buffer; a bare network has none (1).

    Example:
        >>> from lit_seqcls.encoders import CNNEncoder
        >>> model = TextClassifierNetwork(20, 2, CNNEncoder(8, num_filters=4), embedding_dim=8)
        >>> logits = torch.tensor([[0.0, 2.0]])
        >>> round(class_probabilities(model, logits).sum().item(), 6)
        1.0
        >>> [round(p, 4) for p in class_probabilities(model, logits, multi_label=True)[0].tolist()]
        [0.5, 0.8808]
    """
    if multi_label is None:
        multi_label = bool(getattr(model, "multi_label", False))
    temperature = getattr(model, "temperature", None)
    z = logits.float()  # (B, C)
    if temperature is not None:
        z = z / temperature.to(z.device)
    return z.sigmoid() if multi_label else z.softmax(dim=-1)  # (B, C)


@torch.inference_mode(False)
def token_weights(
    model: nn.Module,
    input_ids: Tensor,
    lengths: Tensor,
    method: Method = "integrated_gradients",
    steps: int = 32,
    *,
    target: Tensor | None = None,
    multi_label: bool | None = None,
) -> tuple[Tensor, Tensor]:
    """Per-token weights and the class probabilities, with the model in eval mode.

    Args:
        model: a ``TextClassifierNetwork``, or a module holding one as ``network`` (the
            ``SequenceClassifier``).
        input_ids: padded token ids. ``(B, T)``
        lengths: real tokens per text. ``(B,)``
        method: ``attention``, ``integrated_gradients`` or ``gradient_x_input`` (module docs).
        steps: points on the integration path for ``integrated_gradients``.
        target: the class whose logit the gradient methods explain, per text ``(B,)``; the
            argmax by default. The ``attention`` method has one map per text and ignores it.
        multi_label: whether the probabilities are a sigmoid per label; by default the model's
            ``multi_label`` (a bare network: no).

    Returns:
        ``weights`` ``(B, T)`` (each row sums to 1 over its real tokens, 0 on padding) and the
        calibrated probabilities ``(B, C)`` (``class_probabilities``).

    Example:
        >>> from lit_seqcls.encoders import CNNEncoder
        >>> model = TextClassifierNetwork(20, 2, CNNEncoder(8, num_filters=4), embedding_dim=8)
        >>> ids, lengths = torch.tensor([[4, 5, 6], [7, 8, 0]]), torch.tensor([3, 2])
        >>> w, probs = token_weights(model, ids, lengths, "gradient_x_input")
        >>> w.shape, w[1, 2].item(), [round(s, 5) for s in w.sum(1).tolist()]
        (torch.Size([2, 3]), 0.0, [1.0, 1.0])
    """
    network: TextClassifierNetwork = getattr(model, "network", model)
    was_training = network.training
    network.eval()
    try:
        input_ids, lengths = input_ids.clone(), lengths.clone()  # out of inference mode
        mask = lengths_to_mask(lengths, input_ids.size(1))  # (B, T)
        with torch.no_grad():
            output = network(input_ids, lengths)
        probs = class_probabilities(model, output.logits, multi_label)  # (B, C)
        if method == "attention":
            if output.attention is None:
                raise ValueError(
                    f"{type(network.encoder).__name__} returns no attention weights; use "
                    "method='integrated_gradients' or 'gradient_x_input'"
                )
            weights = output.attention.float()
        else:
            # Midpoint rule on the path: error O(1/steps²) where a right-hand sum has O(1/steps).
            ig = method == "integrated_gradients"
            alphas = (torch.arange(steps) + 0.5) / steps if ig else torch.ones(1)
            if target is None:
                target = probs.argmax(-1)  # (B,)
            target = _check_target(target, probs)
            scores = _attributions(network, input_ids, lengths, target, alphas)
            weights = scores.abs()
        weights = weights.masked_fill(~mask, 0.0)  # (B, T)
        return weights / weights.sum(-1, keepdim=True).clamp_min(1e-12), probs
    finally:
        network.train(was_training)


def _check_target(target: Tensor, probs: Tensor) -> Tensor:
    """``target`` as class indices ``(B,)`` on the logits' device, or a ``ValueError``."""
    batch, classes = probs.shape
    if target.shape != (batch,) or target.is_floating_point():
        raise ValueError(
            f"target must hold one class index per text, shape ({batch},); got "
            f"{tuple(target.shape)} of {target.dtype}"
        )
    if len(target) and not (int(target.min()) >= 0 and int(target.max()) < classes):
        raise ValueError(f"target holds a class index outside 0..{classes - 1}")
    return target.to(probs.device).long().clone()  # a clone: out of inference mode


def _attributions(
    network: TextClassifierNetwork,
    input_ids: Tensor,
    lengths: Tensor,
    target: Tensor,
    alphas: Tensor,
) -> Tensor:
    """Path-averaged ``gradient × embedding`` summed over the embedding dimension. ``(B, T)``"""
    embedded = network.embedding(input_ids).detach()  # (B, T, E)
    total = torch.zeros_like(embedded)  # (B, T, E)
    # cuDNN's RNN backward refuses to run in eval mode; the native kernels give the same numbers.
    with torch.enable_grad(), torch.backends.cudnn.flags(enabled=False):
        for alpha in alphas:
            scaled = (embedded * alpha).requires_grad_(True)  # (B, T, E)
            logits = network.classify(scaled, lengths, input_ids).logits  # (B, C)
            picked = logits.gather(1, target.unsqueeze(1)).sum()
            (grad,) = torch.autograd.grad(picked, scaled)  # (B, T, E)
            total += grad
    return (total / len(alphas) * embedded).sum(-1)  # (B, T)

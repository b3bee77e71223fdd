"""Every encoder constructor rejects out-of-range sizes and dropout with a ConfigValueError.

Before #14 ``hidden_size=0`` or ``dropout=1.5`` surfaced as a torch error (or not at all) far from
the flag that caused it; these tests would have caught that.
"""

from __future__ import annotations

import inspect
import re

import pytest

from lit_seqcls.encoders import ENCODERS, resolve
from lit_seqcls.validation import ConfigValueError

E = 8

# Constructor arguments that are not numbers; each is checked by its own test in test_contract.py.
NOT_NUMERIC = {"bidirectional", "implementation", "pooling"}

# argument -> (bad values, the message fragment that must name the allowed range)
BAD = {
    "input_size": ([0, -3, 2.5, True], "input_size must be a positive integer"),
    "hidden_size": ([0, -1, 1.5, "16", None], "hidden_size must be a positive integer"),
    "num_layers": ([0, -2, 1.0], "num_layers must be a positive integer"),
    "dropout": ([-0.1, 1.0, 1.5, float("nan"), "0.1"], "dropout must be a number in [0, 1)"),
    "attention_dim": ([0, -4, 2.5], "attention_dim must be a positive integer"),
    "num_filters": ([0, -1, 3.0], "num_filters must be a positive integer"),
    "kernel_sizes": ([(), (3, 0), (3, -1), (2.5,), 3], "kernel_sizes"),
    "ngram_buckets": ([-1, 2.5, "8", None], "ngram_buckets must be an integer >= 0"),
}


def _cases():
    for name, cls in ENCODERS.items():
        for argument in inspect.signature(cls).parameters:
            if argument in NOT_NUMERIC:
                continue
            values, message = BAD[argument]  # KeyError: a new argument needs its bad values here
            for value in values:
                yield pytest.param(
                    name, argument, value, message, id=f"{name}-{argument}={value!r}"
                )


@pytest.mark.parametrize(("name", "argument", "value", "message"), list(_cases()))
def test_bad_value_raises_config_value_error(name, argument, value, message):
    kwargs = {"input_size": E, argument: value}
    with pytest.raises(ConfigValueError, match=re.escape(message)) as e:
        ENCODERS[name](**kwargs)
    assert repr(value) in str(e.value), "the message must show the value it got"


@pytest.mark.parametrize("name", ENCODERS)
def test_every_numeric_argument_has_bad_values(name):
    """A new encoder argument must be added to BAD (and validated), or this fails."""
    arguments = set(inspect.signature(ENCODERS[name]).parameters) - NOT_NUMERIC
    assert arguments <= set(BAD), f"add bad values for {sorted(arguments - set(BAD))}"


@pytest.mark.parametrize("name", ENCODERS)
def test_smallest_valid_values_are_accepted(name):
    """The boundary itself is allowed: 1 unit, 1 layer, dropout 0, width 1."""
    smallest = {
        "hidden_size": 1,
        "num_layers": 1,
        "dropout": 0.0,
        "attention_dim": 1,
        "num_filters": 1,
        "kernel_sizes": [1],  # a list, as a YAML config gives it
        "ngram_buckets": 1,  # every bigram in one row
    }
    parameters = inspect.signature(ENCODERS[name]).parameters
    encoder = ENCODERS[name](1, **{k: v for k, v in smallest.items() if k in parameters})
    assert encoder.output_dim >= 1


def test_unknown_encoder_name_is_a_config_value_error():
    with pytest.raises(ConfigValueError, match="unknown encoder 'transformer'"):
        resolve("transformer", E)


def test_config_value_error_is_still_a_value_error():
    """Callers that catch ValueError keep working."""
    with pytest.raises(ValueError, match="hidden_size"):
        resolve(
            {"class_path": "lit_seqcls.encoders.LSTMEncoder", "init_args": {"hidden_size": 0}}, E
        )

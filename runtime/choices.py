"""The fixed sets of values users choose from, one home each. Standard library only, so that commands can
offer them (argparse `choices`) before onnxruntime or torch is imported."""

from __future__ import annotations

DEVICES = ("auto", "cpu", "cuda")  # where a bundle runs (vaekit.runtime.devices)
LIKELIHOODS = ("bernoulli", "gaussian")  # a bundle's `likelihood`, and what vaekit-train offers
METHODS = ("slerp", "lerp")  # interpolation paths between two latents

"""The fixed sets of values users choose from, one home each. Standard library only, so that every
command can offer them (argparse `choices`) before onnxruntime or torch is imported."""

from __future__ import annotations

# where a bundle runs, and what it holds
DEVICES = ("auto", "cpu", "cuda")
LIKELIHOODS = ("bernoulli", "gaussian")
METHODS = ("slerp", "lerp")  # interpolation paths between two latents
# vaekit-train's model and objective
MODEL_KINDS = ("mlp", "conv")
ACTIVATIONS = ("relu", "elu", "gelu", "silu", "tanh")
VARIANCES = ("pixel", "shared", "analytic")  # a Gaussian decoder's variance: one per pixel, one learned for all, or the MSE
SCHEDULES = ("cosine", "constant")
BINARIZE = ("dynamic", "none")
PRECISIONS = ("float32", "bfloat16")  # the training step's matmuls (--precision auto picks one)
# vaekit-export's precisions: --dtype, and --quantize on float32 graphs
DTYPES = ("float32", "float16")
QUANTIZE = ("int8",)

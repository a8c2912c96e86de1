"""vaekit.runtime: run exported VAE bundles with numpy and onnxruntime only (never torch).

    from vaekit.runtime import VAE
    vae = VAE.load("bundles/digits")          # device="auto": CUDA when it works, else CPU
    images = vae.sample(16, seed=0)           # float32 (16, C, H, W) in [0, 1]
"""

from .bundle import FORMAT_VERSION, BundleError, read_manifest
from .devices import DeviceError
from .images import (ImageFileError, as_image_batch, fit_image, load_image, make_grid, save_png, to_pil, to_uint8,
                     upscale)
from .model import VAE

__all__ = [
    "FORMAT_VERSION",
    "VAE",
    "BundleError",
    "DeviceError",
    "ImageFileError",
    "as_image_batch",
    "fit_image",
    "load_image",
    "make_grid",
    "read_manifest",
    "save_png",
    "to_pil",
    "to_uint8",
    "upscale",
]

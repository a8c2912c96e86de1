"""vaekit.runtime: run exported VAE bundles with numpy and onnxruntime only (never torch).

    from vaekit.runtime import VAE
    vae = VAE.load("bundles/digits")          # device="auto": CUDA when it works, else CPU
    images = vae.sample(16, seed=0)           # float32 (16, C, H, W) in [0, 1]
    print(vae.verify().summary())             # does this machine compute what torch did at export?

Names load on first use (see `extras.lazy_exports`), so `vaekit.runtime.errors` and `.extras` import
even where onnxruntime is missing.
"""

from .extras import lazy_exports

_WHERE = {
    "FORMAT_VERSION": "manifest",
    "read_manifest": "bundle",
    "Manifest": "manifest",
    "VAE": "model",
    "Verification": "conformance",
    "VaekitError": "errors",
    "BundleError": "errors",
    "DeviceError": "errors",
    "MissingExtraError": "errors",
    "ImageFileError": "images",
    "as_image_batch": "images",
    "fit_image": "images",
    "load_image": "images",
    "make_grid": "images",
    "save_png": "images",
    "to_pil": "images",
    "to_uint8": "images",
    "upscale": "images",
}
__all__ = sorted(_WHERE)
__getattr__ = lazy_exports(__name__, _WHERE)

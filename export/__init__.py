"""vaekit.export: a trained VAE -> a self-describing ONNX bundle that matches torch (see docs/bundle-format.md).

    from vaekit.export import export_run
    export_run("runs/digits", "bundles/digits")       # or: vaekit-export runs/digits --out bundles/digits

Names load on first use, so `vaekit-export` can say which extra is missing instead of failing in an import.
"""

from vaekit.runtime.extras import lazy_exports

_WHERE = {"ExportError": "errors", "ParityError": "errors", "export_model": "api", "export_run": "api"}
__all__ = sorted(_WHERE)
__getattr__ = lazy_exports(__name__, _WHERE)

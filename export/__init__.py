"""vaekit.export: a trained VAE -> a self-describing ONNX bundle that matches torch (see docs/bundle-format.md).

    from vaekit.export import export_run
    export_run("runs/digits", "bundles/digits")       # or: vaekit-export runs/digits --out bundles/digits
"""

from .api import export_model, export_run
from .errors import ExportError, ParityError

__all__ = ["ExportError", "ParityError", "export_model", "export_run"]

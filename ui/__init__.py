"""vaekit.ui: a Gradio app to sample, interpolate, explore and reconstruct with a bundle (never torch).

    from vaekit.ui import build_app, launch_settings
    app = build_app("bundles/digits")
    app.launch(**launch_settings("bundles/digits"))   # or: vaekit-ui bundles/digits

Names load on first use, so `vaekit-ui` can say which extra is missing instead of failing in an import.
"""

from vaekit.runtime.extras import lazy_exports

_WHERE = {"API_NAMES": "app", "build_app": "app", "launch_settings": "app", "serve": "app"}
__all__ = sorted(_WHERE)
__getattr__ = lazy_exports(__name__, _WHERE)

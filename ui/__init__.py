"""vaekit.ui: a Gradio app to sample, interpolate, explore and reconstruct with a bundle (never torch).

    from vaekit.ui import build_app, launch_settings
    app = build_app("bundles/digits")
    app.launch(**launch_settings("bundles/digits"))   # or: vaekit-ui bundles/digits
"""

from .app import API_NAMES, build_app, launch_settings, serve

__all__ = ["API_NAMES", "build_app", "launch_settings", "serve"]

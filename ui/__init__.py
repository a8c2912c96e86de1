"""vaekit.ui."""

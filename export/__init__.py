"""vaekit.export."""

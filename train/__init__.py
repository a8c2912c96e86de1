"""vaekit.train."""

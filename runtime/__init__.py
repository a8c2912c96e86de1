"""vaekit.runtime."""

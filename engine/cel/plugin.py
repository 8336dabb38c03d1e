"""The CEL plugin (being written)."""

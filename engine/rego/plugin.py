"""The Rego plugin (being written)."""

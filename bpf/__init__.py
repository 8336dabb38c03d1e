"""Package data: the eBPF C sources of the collector and, once built, their objects."""

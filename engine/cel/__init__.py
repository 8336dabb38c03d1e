"""CEL signatures: YAML detectors with CEL conditions, modelled on Tracee's YAML detectors."""

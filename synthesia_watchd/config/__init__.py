"""The operator's YAML: read with line numbers, checked against the key table, frozen."""

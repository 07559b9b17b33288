"""The pure domain: states, reasons, errors, output names, API answer types, pacing rules.

Standard library only, so every rule here is tested without a disk, a network or a clock."""

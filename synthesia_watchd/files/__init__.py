"""Pure filesystem helpers: safe opens and writes inside a root, stability, completeness.

Standard library only; they take paths and file descriptors, never the ledger or the API."""

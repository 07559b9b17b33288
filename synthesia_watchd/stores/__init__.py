"""Ledger stores: the `LedgerStore` protocol (base); the SQL shared by every backend
(sqlbase, sqlreads, sqlcommon for the writes, sqlshared for nodes working together); the
backends themselves (sqlite embedded, postgres shared, with pgschema)."""

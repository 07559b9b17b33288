"""Ledger stores: the `LedgerStore` protocol (base), the SQL shared by every backend
(sqlcommon), and the backends themselves (SQLite embedded, PostgreSQL shared)."""

"""Ledger: double-entry accounting of every fill, fee and funding payment (docs/ledger.md)."""

"""The repository layer: one module per concept, each a set of functions on
an open `AsyncConnection` (the caller owns the transaction)."""

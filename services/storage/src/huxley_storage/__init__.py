"""Storage service: durable per-skill settings, schema versions, sessions."""

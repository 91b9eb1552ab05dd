"""Typed messages of every service, grouped by the service that serves them."""

"""Realtime bridge: turns with the OpenAI Realtime model."""

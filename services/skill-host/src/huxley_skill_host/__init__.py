"""Skill host: runs Huxley skills and serves their tools over the bus."""

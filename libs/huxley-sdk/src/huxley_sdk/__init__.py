"""huxley_sdk (to be implemented with the skill-host issue)."""

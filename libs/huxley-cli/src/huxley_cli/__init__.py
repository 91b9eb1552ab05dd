"""The `huxley` command."""

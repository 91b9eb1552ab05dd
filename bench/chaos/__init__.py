"""The chaos run (issue 13 item 6): see run.py."""

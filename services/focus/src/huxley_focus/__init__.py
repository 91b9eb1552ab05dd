"""Focus service: the AVS-style arbiter and the inject scheduler."""

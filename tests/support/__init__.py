"""Test helpers shared by every test package: a real nats-server, services
run in-process or as subprocesses against it, and bus utilities."""

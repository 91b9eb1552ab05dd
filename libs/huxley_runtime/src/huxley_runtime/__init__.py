"""What every huxley-nats service runs on: settings, logging, the persona,
NATS plumbing (connect, request/reply) and the service base."""

from huxley_runtime.service import Endpoint, Service, run_service
from huxley_runtime.settings import HuxleySettings

__all__ = ["Endpoint", "HuxleySettings", "Service", "run_service"]

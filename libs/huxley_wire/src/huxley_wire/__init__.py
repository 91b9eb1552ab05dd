"""The huxley-nats wire contract: subjects, message schemas and codecs.

Pure: no I/O here. `huxley_runtime` puts it on the bus.
"""

from huxley_wire.codec import SCHEMA_VERSION, Message, Ok, Request, RequestTable, decode, encode
from huxley_wire.errors import ErrorCode, WireError
from huxley_wire.subjects import Subjects

__all__ = [
    "SCHEMA_VERSION",
    "ErrorCode",
    "Message",
    "Ok",
    "Request",
    "RequestTable",
    "Subjects",
    "WireError",
    "decode",
    "encode",
]

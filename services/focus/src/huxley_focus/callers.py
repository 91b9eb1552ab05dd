"""Who may ask focus what: the holder named by the request's subject.

Each part sends on `focus.rpc.<its holder>` and NATS lets it publish only
there (huxley_wire.permissions), so the subject's last token is who acts. A
body `holder` must be that holder, and the operations that act for the user
(interrupt, stops, a turn's end) belong to the bridge and audio-io only: a
skill may acquire, renew and release its own activities, inject and read a
snapshot. Pure: no I/O.
"""

from __future__ import annotations

from pydantic import BaseModel

from huxley_wire.errors import ErrorCode, WireError
from huxley_wire.messages import focus as m
from huxley_wire.subjects import InvalidToken, token

# Holders that may act for the user. Audio-io sends none of these today; it
# is the user's hands (PTT), so it may. A satellite's audio-io (holder
# `satellite`) needs none either: the bridge interrupts for its PTT (SCALE-2).
CONTROL_HOLDERS = frozenset({"bridge", "audio-io"})
CONTROL_OPS = (m.Interrupt, m.StopForeground, m.StopAll, m.StopChannel, m.TurnEnd)


def holder_of(subject: str, prefix: str) -> str:
    """The holder token of `<prefix>.<holder>`; `invalid` for anything else."""
    head, _, holder = subject.rpartition(".")
    try:
        if head != prefix:
            raise InvalidToken(subject)
        return token(holder, "holder")
    except InvalidToken:
        raise WireError(
            ErrorCode.INVALID, f"focus requests go to {prefix}.<holder>, not {subject!r}"
        ) from None


def check_caller(holder: str, req: BaseModel, control_holders: frozenset[str] = CONTROL_HOLDERS) -> None:
    """Refuse a request its subject's holder may not make."""
    named = getattr(req, "holder", None)
    if named is not None and named != holder:
        try:
            token(named, "holder")
        except InvalidToken as exc:
            raise WireError(ErrorCode.INVALID, str(exc)) from None
        raise WireError(ErrorCode.NOT_HOLDER, f"holder {named!r} in a request sent as {holder!r}")
    if isinstance(req, CONTROL_OPS) and holder not in control_holders:
        op = getattr(req, "op", type(req).__name__)
        raise WireError(ErrorCode.NOT_HOLDER, f"{holder!r} may not {op}: only {sorted(control_holders)} may")

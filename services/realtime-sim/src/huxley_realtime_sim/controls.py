"""The simulator's controls, for tests and for `huxley up` scenarios: drop
every socket, a fault for the next response, an error for the next
session.update, the log of what clients sent; in-process and over HTTP
(see huxley_realtime_sim.server for the endpoints)."""

from __future__ import annotations

import http
import json
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from huxley_realtime_sim.rules import Step


class SimControls:
    # The HTTP /control/* endpoints answer only when this is on (tests enable
    # it): inside a deployment anyone on the network could drop the model.
    http_controls: bool
    connections: dict[str, Any]
    received: list[dict[str, Any]]
    _fault: dict[str, Any]
    _rejection: tuple[str, str] | None

    def drop_all(self) -> int:
        """Abort every live socket without a close frame (a network loss)."""
        dropped = 0
        for conn in list(self.connections.values()):
            if conn.ws.transport is not None:
                conn.ws.transport.abort()
                dropped += 1
        return dropped

    def set_fault(self, **fields: Any) -> None:
        """Faults for the next response on any connection (Step fields)."""
        step = Step.model_validate(fields)  # refuse unknown or bad fields now
        self._fault = step.model_dump(include=set(fields))  # typed: HTTP gives strings

    def _take_fault(self) -> dict[str, Any]:
        fault, self._fault = self._fault, {}
        return fault

    def reject_next_update(
        self, code: str = "invalid_value", message: str = "Rejected by the simulator."
    ) -> None:
        """Answer the next session.update (any connection) with an error naming it."""
        self._rejection = (code, message)

    def _take_rejection(self) -> tuple[str, str] | None:
        rejection, self._rejection = self._rejection, None
        return rejection

    # -- HTTP side ------------------------------------------------------------------
    def control_http(self, connection: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        path = url.path.rstrip("/")
        if path == "/health":
            return connection.respond(http.HTTPStatus.OK, "ok\n")
        if path.startswith("/control") and not self.http_controls:
            return connection.respond(
                http.HTTPStatus.FORBIDDEN, "controls are off (HUXLEY_SIM_CONTROLS=1 enables them)\n"
            )
        if path == "/control/drop":
            return self._json(connection, {"dropped": self.drop_all()})
        if path == "/control/fault":
            fields: dict[str, Any] = {}
            for key, value in parse_qsl(url.query):
                fields[key] = (
                    value.lower() in ("1", "true", "yes") if key in ("hold", "malformed_arguments") else value
                )
            try:
                self.set_fault(**fields)
            except ValueError as exc:
                return self._json(connection, {"error": str(exc)}, http.HTTPStatus.BAD_REQUEST)
            return self._json(connection, {"fault": fields})
        if path == "/control/reject_update":
            query = dict(parse_qsl(url.query))
            self.reject_next_update(query.get("code", "invalid_value"), query.get("message", "Rejected."))
            return self._json(connection, {"reject_update": query})
        if path == "/control/log":
            return self._json(connection, {"received": self.received[-500:]})
        if not path.endswith("/realtime"):
            return connection.respond(http.HTTPStatus.NOT_FOUND, f"no such path: {url.path}\n")
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or len(auth) <= len("Bearer "):
            return connection.respond(http.HTTPStatus.UNAUTHORIZED, "missing bearer token\n")
        return None

    @staticmethod
    def _json(
        connection: ServerConnection, body: Any, status: http.HTTPStatus = http.HTTPStatus.OK
    ) -> Response:
        response = connection.respond(status, json.dumps(body) + "\n")
        response.headers = Headers({**dict(response.headers), "Content-Type": "application/json"})
        return response

"""Slow-client protection for uvicorn: uvicorn closes idle keep-alive connections but waits forever for a
client that opens a connection and sends nothing, or half a request line / headers (slowloris). Each such
client holds a socket and a file descriptor until the server runs out of them.

`protocol_with_header_timeout(seconds)` returns uvicorn's HTTP protocol (httptools, its fast C parser, when
installed, which it is with nextvec; else h11) with a watchdog: a connection that
has not delivered a complete request head within `seconds` of opening (or of its previous response) is
closed. Idle keep-alive connections are left to uvicorn's own timeout_keep_alive. A stalled request BODY is handled in the app (`RequestGuard`, limits.body_timeout_s).
"""

from __future__ import annotations

import os


def base_protocol():
    """uvicorn's protocol class: httptools when importable (a nextvec dependency), else h11."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        return HttpToolsProtocol
    except ImportError:
        from uvicorn.protocols.http.h11_impl import H11Protocol

        return H11Protocol


def protocol_with_header_timeout(seconds: float):
    base = base_protocol()

    class HeaderTimeoutProtocol(base):
        header_timeout = float(seconds)

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._waiting_since: float | None = self.loop.time()
            self._watchdog = self.loop.call_later(min(1.0, self.header_timeout / 2), self._check_head)

        def _in_request(self) -> bool:
            return self.cycle is not None and not self.cycle.response_complete

        def data_received(self, data: bytes) -> None:
            if self._waiting_since is None and not self._in_request():
                self._waiting_since = self.loop.time()  # the first bytes of a request head: its clock starts
            super().data_received(data)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._waiting_since = None  # idle keep-alive from here: uvicorn's timeout_keep_alive closes it

        def _check_head(self) -> None:
            if self.transport.is_closing():
                return
            if self._in_request():
                self._waiting_since = None  # a request is being served: the app's own timeouts apply
            elif self._waiting_since is not None and self.loop.time() - self._waiting_since >= self.header_timeout:
                self.transport.close()
                return
            self._watchdog = self.loop.call_later(min(1.0, self.header_timeout / 2), self._check_head)

        def connection_lost(self, exc) -> None:
            watchdog = getattr(self, "_watchdog", None)
            if watchdog is not None:
                watchdog.cancel()
            super().connection_lost(exc)

    return HeaderTimeoutProtocol


HEADER_TIMEOUT_ENV = "NEXTVEC_HEADER_TIMEOUT_S"
# For `nextvec serve --workers N`: uvicorn starts each worker in a fresh interpreter and takes the
# protocol as an import path ("nextvec.serve.timeouts:EnvHeaderTimeoutProtocol"); the seconds come from
# the environment the parent set.
EnvHeaderTimeoutProtocol = protocol_with_header_timeout(float(os.environ.get(HEADER_TIMEOUT_ENV, "10")))

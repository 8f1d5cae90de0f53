"""A fault-injecting HTTP proxy in front of moto's server, for tests of a real daemon.

botocore's event hooks (``ec2_faults``) reach only clients built in the test process; a
daemon is another process, so its faults are injected on the wire instead: point the
provider's ``endpoint_url`` at ``Ec2Proxy.url``. Every request is forwarded to moto
unchanged, except ``RunInstances`` while ``refuse_run`` names an EC2 error code: that
call is answered with EC2's own error body (``Response/Errors/Error``) and never reaches
moto. ``calls`` counts the requests per EC2 action (refused ones included), so a test
can tell a retry storm from one refusal per cool-down. ``after_run`` (when set) is
called once moto has answered a ``RunInstances`` and before the caller hears the answer:
a test kills the caller there, between the launch and its record.
"""

from __future__ import annotations

import http.client
import threading
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

#: Headers not forwarded as they are (the connection's own, or recomputed).
_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


def ec2_error_body(code: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Response><Errors><Error><Code>{code}</Code>"
        f"<Message>injected {code}</Message></Error></Errors>"
        "<RequestID>proxy-request</RequestID></Response>"
    ).encode()


class Ec2Proxy:
    """Forwards to ``upstream`` (moto's URL) from ``url`` (127.0.0.1, a free port)."""

    def __init__(self, upstream: str, port: int = 0) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.refuse_run: str | None = None
        self.refuse_status = 400
        self.calls: Counter[str] = Counter()
        self.after_run: Callable[[], None] | None = None
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: object) -> None:  # quiet
                return

            def do_GET(self) -> None:
                proxy._forward(self, b"")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                proxy._forward(self, self.rfile.read(length))

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Ec2Proxy:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def count(self, action: str) -> int:
        with self._lock:
            return self.calls[action]

    def _forward(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        form = parse_qs(body.decode("utf-8", "replace"))
        action = (form.get("Action") or [""])[0]
        with self._lock:
            self.calls[action] += 1
            refuse = self.refuse_run if action == "RunInstances" else None
        if refuse is not None:
            self._answer(handler, self.refuse_status, ec2_error_body(refuse), "text/xml")
            return
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in _HOP}
        conn = http.client.HTTPConnection(*self.upstream, timeout=30)
        try:
            conn.request(handler.command, handler.path, body=body or None, headers=headers)
            reply = conn.getresponse()
            data = reply.read()
            ctype = reply.getheader("Content-Type") or "text/xml"
            status = reply.status
        except OSError as exc:  # moto stopped: as an unreachable endpoint answers
            self._answer(handler, 502, str(exc).encode(), "text/plain")
            return
        finally:
            conn.close()
        hook = self.after_run if action == "RunInstances" else None
        if hook is not None:
            hook()
        self._answer(handler, status, data, ctype)

    @staticmethod
    def _answer(handler: BaseHTTPRequestHandler, status: int, data: bytes, ctype: str) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", ctype)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)


def main() -> None:
    """``python tests/providers/aws/ec2_proxy.py --upstream URL --port N [--refuse CODE]``:
    the proxy on its own, for the README's failover demo (Ctrl-C stops it)."""
    import argparse
    import time

    parser = argparse.ArgumentParser(description="EC2 proxy that can refuse RunInstances")
    parser.add_argument("--upstream", required=True, help="moto's URL")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--refuse", default=None, help="EC2 error code for RunInstances")
    args = parser.parse_args()
    proxy = Ec2Proxy(args.upstream, port=args.port)
    proxy.refuse_run = args.refuse
    with proxy:
        what = f"refusing RunInstances with {args.refuse}" if args.refuse else "forwarding all"
        print(f"EC2 proxy on {proxy.url} -> {args.upstream}, {what}", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()

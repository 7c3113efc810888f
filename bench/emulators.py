"""The emulated world, in a child process: a moto server and the demo's fake Netskope API, on 127.0.0.1.

They run in their own process so that the bench's CPU time and memory are the engine's and the connectors'
alone, and so that the emulators use the second core instead of competing for the bench's GIL. The child
starts exactly as the demo does (same isolation from real AWS, same ThreadedMotoServer and FakeNetskope) and
takes a few commands over a pipe: age IAM keys in moto's backend (moto has no API for a key's age), serve a
list of Netskope violations (or a synthetic one it generates), add a fixed latency to every AWS request (AWS
answers in 20-200 ms where moto takes ~5 ms: the waiting is what worker threads overlap), report the server's
request count and CPU time, stop.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections import Counter
from collections.abc import Sequence
from multiprocessing.connection import Connection, wait
from typing import Any

STARTUP_TIMEOUT = 60.0
COMMAND_TIMEOUT = 600.0


class Emulators:
    """`with Emulators() as world:` → world.endpoint (moto), world.serve_netskope(...) → URL."""

    def __init__(self) -> None:
        self.endpoint = ""
        self._conn: Connection | None = None
        self._process: multiprocessing.process.BaseProcess | None = None

    def __enter__(self) -> Emulators:
        context = multiprocessing.get_context("spawn")  # no fork of a process that has threads
        parent, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child,), name="bench-emulators", daemon=True)
        self._process.start()
        self._conn = parent
        self.endpoint = self._wait("started", STARTUP_TIMEOUT)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._conn is not None:
            try:
                self._conn.send(("stop", None))
                if self._conn.poll(10):
                    self._conn.recv()
            except (BrokenPipeError, EOFError, OSError):
                pass
        if self._process is not None:
            self._process.join(timeout=10)
            if self._process.is_alive():
                self._process.terminate()
                self._process.join(timeout=5)

    def age_access_keys(self, keys: Sequence[tuple[str, str, str]], days: int) -> None:
        """(account, user, access key id) → created `days` ago, in moto's backend."""
        self._call("age_keys", (list(keys), days))

    def serve_netskope(self, violations: list[dict[str, Any]], token: str) -> str:
        """Serve these violations (replacing what was served before); returns the fake API's URL."""
        return self._call("netskope", (violations, token))

    def serve_synthetic_netskope(self, n: int, accounts: Sequence[str], token: str) -> str:
        """Serve n synthetic violations generated in the child (nothing large crosses the pipe)."""
        return self._call("synthetic", (n, list(accounts), token))

    def set_latency(self, seconds: float) -> None:
        """From now on every AWS request waits this long in the server before moto answers it (0: none)."""
        self._call("latency", seconds)

    def server_stats(self) -> dict[str, Any]:
        """{"requests": AWS requests served so far, "cpu_s": the emulator process's CPU time so far,
        "cpu_by_service": the request threads' CPU time so far by signing service ("sqs", "ec2", …)}."""
        stats: dict[str, Any] = self._call("stats", None)
        return stats

    def _call(self, command: str, argument: Any) -> Any:
        if self._conn is None:
            raise RuntimeError("emulators are not started")
        self._conn.send((command, argument))
        return self._wait(command, COMMAND_TIMEOUT)

    def _wait(self, what: str, timeout: float) -> Any:
        assert self._conn is not None
        if not self._conn.poll(timeout):
            raise RuntimeError(f"emulators: no answer to {what} within {timeout:.0f}s")
        status, value = self._conn.recv()
        if status != "ok":
            raise RuntimeError(f"emulators: {what} failed: {value}")
        return value


def _serve(conn: Connection) -> None:
    """The child: start like the demo, then answer commands until told to stop."""
    from demo.moto_org import isolate_from_real_aws

    isolate_from_real_aws()
    from moto.server import ThreadedMotoServer

    from demo.fake_netskope import FakeNetskope
    from demo.moto_serial import serialize_dynamodb_and_sqs

    serialize_dynamodb_and_sqs()  # the deployed phase's containers share one queue and one ledger table
    _retention_check_from_the_queue()

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    delayed = _Delayed(server._server.app)  # type: ignore[union-attr]  # werkzeug reads server.app per request
    server._server.app = delayed  # type: ignore[union-attr]
    port = server.get_host_and_port()[1]
    os.environ["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{port}"
    netskope: FakeNetskope | None = None
    parent = multiprocessing.parent_process()
    watched = [conn] + ([parent.sentinel] if parent is not None else [])
    conn.send(("ok", f"http://127.0.0.1:{port}"))
    try:
        while True:
            if conn not in wait(watched):
                return  # the bench is gone (killed): stop serving rather than linger
            command, argument = conn.recv()
            try:
                if command == "stop":
                    conn.send(("ok", None))
                    return
                if command == "age_keys":
                    _age_keys(*argument)
                    conn.send(("ok", None))
                elif command == "latency":
                    delayed.seconds = float(argument)
                    conn.send(("ok", None))
                elif command == "stats":
                    conn.send(("ok", {"requests": delayed.requests, "cpu_s": time.process_time(),
                                      "cpu_by_service": dict(delayed.cpu_by_service)}))
                elif command in ("netskope", "synthetic"):
                    if netskope is not None:
                        netskope.stop()
                    violations, token = _violations(command, argument)
                    netskope = FakeNetskope(violations, token=token).start()
                    conn.send(("ok", netskope.url))
                else:
                    conn.send(("error", f"unknown command {command!r}"))
            except Exception as error:  # report to the parent, keep serving
                conn.send(("error", f"{type(error).__name__}: {error}"))
    finally:
        if netskope is not None:
            netskope.stop()
        server.stop()


class _Delayed:
    """WSGI middleware: counts the requests, holds each one `seconds` before moto handles it, and adds up moto's CPU
    time per service (the request thread's). The server is threaded (one thread per request), so concurrent requests
    wait side by side, as they do on the network."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seconds = 0.0
        self.requests = 0
        self.cpu_by_service: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, environ: Any, start_response: Any) -> Any:
        with self._lock:
            self.requests += 1
        if self.seconds > 0:
            time.sleep(self.seconds)
        started = time.thread_time()
        try:
            return self.app(environ, start_response)  # moto answers with a list: its work is done on return
        finally:
            spent = time.thread_time() - started
            with self._lock:
                self.cpu_by_service[_signing_service(environ)] += spent


def _signing_service(environ: Any) -> str:
    """"AWS4-HMAC-SHA256 Credential=AKID/20261202/us-east-1/ec2/aws4_request, …" → "ec2"."""
    parts = str(environ.get("HTTP_AUTHORIZATION", "")).split("/")
    return parts[3] if len(parts) > 4 else "unsigned"


def _retention_check_from_the_queue() -> None:
    """moto's ReceiveMessage checks each message's retention period by computing every attribute of its queue, the
    approximate counts each a pass over all the queue's messages: a receive of 10 from a queue of 1,000 findings cost
    ~0.2 s of server CPU, under the lock that runs SQS and DynamoDB requests one at a time (demo/moto_serial.py), so
    the deployed phase measured moto's queue more than the handlers. The same check, from the queue's own setting."""
    from moto.core.utils import unix_time
    from moto.sqs.models import SQSBackend

    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
        retention = int(self.get_queue(queue_name).message_retention_period)
        return bool(retention + message.sent_timestamp / 1000 > unix_time())

    SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period


def _age_keys(keys: list[tuple[str, str, str]], days: int) -> None:
    from demo.moto_org import age_access_key

    for account, user, key_id in keys:
        age_access_key(account, user, key_id, days)


def _violations(command: str, argument: Any) -> tuple[list[dict[str, Any]], str]:
    if command == "netskope":
        violations, token = argument
        return violations, token
    from bench.synth_violations import synthetic_violations

    n, accounts, token = argument
    return synthetic_violations(n, accounts), token

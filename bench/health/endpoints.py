#!/usr/bin/env python3
"""Many EdgeX ping endpoints from one process: the health bench's fleet.

    endpoints.py --spec spec.json [--host 127.0.0.1]

spec.json: [{"service": "core-data", "hang": false}, ...]. Binds one listening socket per entry
on an ephemeral port of --host, then prints one JSON line to stdout:
{"ports": [...], "pid": N} (same order as the spec) and serves until SIGTERM/SIGINT.

Each endpoint answers GET /api/v3/ping like tests/testbed/standin/edgex_standin.py does (HTTP/1.1,
compact EdgeX ping JSON naming its service, Content-Type, Content-Length, X-Correlation-ID) and
404 with EdgeX's error JSON elsewhere. An endpoint with "hang": true accepts the connection, reads
the request and never answers its ping (STANDIN_PING_HANG=1), holding the connection until the
client gives up. One asyncio loop serves every port, so 100 endpoints cost one process.
Standard library only (it answers with tests/testbed/fleet.py's http_answer).
"""

import argparse
import asyncio
import json
import os
import signal
import socket
import sys

API_VERSION = "v3"

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

# The same answers as the simulated fleet's services.
from tests.testbed.fleet import go_unix_date, http_answer as response  # noqa: E402


def make_handler(service, hang, stats):
    prefix = "/api/%s" % API_VERSION

    async def handle(reader, writer):
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                parts = lines[0].split()
                if len(parts) < 2:
                    writer.write(response(400, {"apiVersion": API_VERSION, "statusCode": 400,
                                                "message": "bad request"}, False))
                    return
                headers = {k.strip().lower(): v.strip()
                           for k, _, v in (line.partition(":") for line in lines[1:] if line)}
                length = int(headers.get("content-length") or 0)
                if length:
                    await reader.readexactly(length)
                stats["requests"] += 1
                path = parts[1].split("?", 1)[0]
                keep_alive = headers.get("connection", "").lower() != "close" and parts[-1] == "HTTP/1.1"
                if path == prefix + "/ping":
                    if hang:
                        stats["hung"] += 1
                        await reader.read()  # until the client closes: the answer never comes
                        return
                    body = {"apiVersion": API_VERSION, "timestamp": go_unix_date(), "serviceName": service}
                    writer.write(response(200, body, keep_alive))
                else:
                    writer.write(response(404, {"apiVersion": API_VERSION, "statusCode": 404,
                                                "message": "route %s not found" % path}, keep_alive))
                await writer.drain()
                if not keep_alive:
                    return
        except ConnectionError:
            return
        finally:
            try:
                writer.close()
            except Exception:  # noqa: BLE001 - closing a dead connection
                pass

    return handle


async def serve(spec, host):
    stats = {"requests": 0, "hung": 0}
    servers, ports = [], []
    for entry in spec:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, 0))
        sock.listen(128)
        server = await asyncio.start_server(make_handler(entry["service"], bool(entry.get("hang")), stats),
                                            sock=sock)
        servers.append(server)
        ports.append(sock.getsockname()[1])
    sys.stdout.write(json.dumps({"ports": ports, "pid": os.getpid()}) + "\n")
    sys.stdout.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    for server in servers:
        server.close()
    sys.stderr.write("endpoints: %d requests, %d hung pings\n" % (stats["requests"], stats["hung"]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spec", required=True, help="JSON file: [{service, hang}, ...]")
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    with open(args.spec) as handle:
        spec = json.load(handle)
    asyncio.run(serve(spec, args.host))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""TCP echo server for the integration tests.

    echoserver.py [--host 127.0.0.1] [--port 0] [--port-file F] [--count-file F]
                  [--log F] [--banner TEXT]

Echoes every byte back on every connection (a thread each). The port is
printed on stdout and written to --port-file once listening; --count-file
is rewritten with the number of connections accepted so far, so a test can
tell whether traffic arrived at all; --log gets one line "accept IP" per
connection, so a test can tell who connected (a proxy bound to its own
source address, say). --banner is sent first on every
connection (a server-speaks-first protocol).
"""

import argparse
import os
import socket
import threading


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--count-file")
    ap.add_argument("--log")
    ap.add_argument("--banner", default="")
    a = ap.parse_args()

    fam = socket.AF_INET6 if ":" in a.host else socket.AF_INET
    srv = socket.socket(fam, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((a.host, a.port))
    # Many client threads connect at once: a short backlog turns a burst
    # into SYN retries of a second each.
    srv.listen(1024)
    port = srv.getsockname()[1]
    print(port, flush=True)
    if a.port_file:
        with open(a.port_file + ".tmp", "w") as f:
            f.write(f"{port}\n")
        os.rename(a.port_file + ".tmp", a.port_file)

    lock = threading.Lock()
    accepted = 0

    def serve(s):
        try:
            if a.banner:
                s.sendall(a.banner.encode())
            while True:
                data = s.recv(65536)
                if not data:
                    break
                s.sendall(data)
        except OSError:
            pass
        finally:
            s.close()

    while True:
        s, peer = srv.accept()
        with lock:
            accepted += 1
            if a.log:
                with open(a.log, "a") as f:
                    f.write(f"accept {peer[0]}\n")
            if a.count_file:
                with open(a.count_file + ".tmp", "w") as f:
                    f.write(f"{accepted}\n")
                os.rename(a.count_file + ".tmp", a.count_file)
        threading.Thread(target=serve, args=(s,), daemon=True).start()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass

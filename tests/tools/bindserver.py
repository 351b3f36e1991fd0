#!/usr/bin/env python3
"""The server half of tests/tools/bindclient.c: a tiny active-FTP-like
control server for the SOCKS BIND tests.

    bindserver.py --listen ADDR:PORT --token TEXT [--log F]

Per control connection, one line at a time:
  PORT HOST P   connect to HOST:P (5 s timeout), send "TEXT from ADDR:P\\n"
                where ADDR:P is the server's own end of that connection,
                close it, and answer on the control connection
                "connected HOST:P" or "connect-failed HOST:P ERROR"
  QUIT          close the control connection
Log (--log, appended, flushed): "control PEER", "port HOST P",
"connected HOST:P from ADDR:P" or "connect-failed HOST:P ERROR".
"""

import argparse
import socket
import threading

log_lock = threading.Lock()
log_file = None


def log(line):
    with log_lock:
        if log_file is not None:
            log_file.write(line + "\n")
            log_file.flush()


def fmt(addr):
    host, port = addr[0], addr[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def serve(ctrl, peer, token):
    log(f"control {fmt(peer)}")
    f = ctrl.makefile("rb")
    try:
        for raw in f:
            words = raw.decode("latin-1").split()
            if not words or words[0] == "QUIT":
                break
            if words[0] != "PORT" or len(words) != 3:
                ctrl.sendall(b"error bad command\n")
                continue
            host, port = words[1], int(words[2])
            log(f"port {host} {port}")
            target = fmt((host, port))
            try:
                d = socket.create_connection((host, port), timeout=5)
                me = fmt(d.getsockname())
                d.sendall(f"{token} from {me}\n".encode())
                d.close()
                log(f"connected {target} from {me}")
                ctrl.sendall(f"connected {target}\n".encode())
            except OSError as e:
                log(f"connect-failed {target} {e}")
                ctrl.sendall(f"connect-failed {target} {e}\n".encode())
    except OSError as e:
        log(f"error {e}")
    finally:
        ctrl.close()


def main():
    global log_file
    ap = argparse.ArgumentParser(description="active-FTP-like control server")
    ap.add_argument("--listen", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--log")
    a = ap.parse_args()
    if a.log:
        log_file = open(a.log, "a")
    host, _, port = a.listen.rpartition(":")
    host = host.strip("[]")
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    srv = socket.socket(fam, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, int(port)))
    srv.listen(64)
    while True:
        c, peer = srv.accept()
        threading.Thread(target=serve, args=(c, peer, a.token), daemon=True).start()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass

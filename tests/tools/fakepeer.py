#!/usr/bin/env python3
"""A scriptable fake SOCKS/HTTP-CONNECT proxy for the faults real servers
won't produce: short, slow, malformed, truncated or missing replies.

    fakepeer.py [--port-file F] [--log F] [--mode script|step]
                [--step-reply-at N=SEC] [--script-file F] [STEP ...]

Listens on 127.0.0.1 (port 0 unless --port given), prints the port on
stdout (and writes it to --port-file once listening), and runs the script
on every accepted connection, each in its own thread. Steps are given as
arguments and/or one per line in --script-file; an argument may also hold
several steps separated by ';'.

Steps:
  read N         read exactly N bytes
  readsocks5     read one whole SOCKS5 message: the greeting the first time,
                 then an RFC 1929 auth (first byte 1) or a request (first
                 byte 5)
  readsocks4     read one whole SOCKS4/4a request (up to the last NUL)
  readhttp       read an HTTP request head (up to the blank line)
  send HEX       send the bytes at once (spaces in HEX are ignored)
  sendtext TEXT  send TEXT with \\r \\n escapes expanded
  trickle HEX [DELAY]  one byte per send, DELAY seconds apart (0.02)
  sleep SEC      do nothing for SEC seconds
  discard        drop whatever the client already sent (logged as
                 `discarded N`): a proxy that does not pass bytes sent
                 before its reply on
  close          drain what the client already sent, then close (FIN)
  rst            close with SO_LINGER 0 (RST)
  stall          keep the connection open, doing nothing, until the client
                 closes it
  echo           from now on echo everything back until EOF
  relay HOST:PORT  connect there and relay both ways until EOF
  answer SPEC    reply to the SOCKS5 request just read by what it asked:
                 SPEC is KEY=VALUE words, KEY the name of a RESOLVE (0xF0),
                 the address of a RESOLVE_PTR (0xF1), or * for any; VALUE an
                 IPv4/IPv6 address (BND ATYP 1/4), name:HOST (ATYP 3;
                 namehex:HEX for bytes a script cannot spell), or
                 !XX to fail with reply code XX (hex), or tor!XX to fail
                 as Tor does (ATYP 0, eight zero bytes after REP). Other
                 commands, and
                 a key not in SPEC without a *, get 05 00 (BND 0.0.0.0:0)
                 resp. reply code 04.
  oncmd N        starts a section for connections whose last SOCKS request
                 (SOCKS4 or SOCKS5) had command N (1 CONNECT, 2 BIND, 3 UDP
                 ASSOCIATE, 0xF0 ...): other connections skip to the next
                 `oncmd`; a connection that ran a section stops at the next
                 `oncmd` as if the script ended there
A script that runs out of steps closes the connection like `close`.

--mode step emulates microsocks, which reads the greeting with a single
recv(), silently drops whatever else that recv() returned, replies 05 00,
then reads the request with another single recv(), replies success (BND
0.0.0.0:0) and only then runs the script (typically `echo`). A client that
pipelines greeting and request sees no reply to its request: the test of
its fallback to one message per round trip. --step-reply-at N=SEC holds
connection N's method reply until SEC seconds after connection 1 was
accepted, and logs `N method_at MS` (milliseconds after that accept,
measured here) when it goes out: a step-by-step side that completes at a
chosen moment of the client's race. With it, a connection closed before
its request logs `N eof_at MS` too: when the client gave up on it.

Log (--log, appended, one line per event, flushed at once):
  C accept
  C greeting|auth|request|socks4|http|read HEX   bytes a read step consumed
  C host NAME:PORT          destination of a request (SOCKS4a/5, HTTP)
  C resolve NAME / C resolve_ptr ADDR   a SOCKS5 RESOLVE / RESOLVE_PTR
  C answer HEX              the reply an `answer` step sent
  C recv HEX / C dropped N  (step mode) each recv() and the bytes dropped
  C ignored HEX             bytes that arrived during a stall
  C close / C eof / C error TEXT
where C is the connection number, counting from 1.
"""

import argparse
import ipaddress
import os
import select
import socket
import struct
import sys
import threading
import time

log_lock = threading.Lock()
log_file = None
reply_at = {}           # --step-reply-at: connection number -> seconds
first_accept = None     # time.monotonic() of connection 1's accept


def log(conn, what, data=None):
    line = f"{conn} {what}" + ("" if data is None else f" {data}")
    with log_lock:
        if log_file is not None:
            log_file.write(line + "\n")
            log_file.flush()


def since_first():
    """Milliseconds since connection 1 was accepted (--step-reply-at)."""
    return str(round((time.monotonic() - first_accept) * 1000))


class Eof(Exception):
    pass


class Conn:
    def __init__(self, sock, num):
        self.sock = sock
        self.num = num
        self.s5_seen_greeting = False
        self.last_cmd = None
        self.last_host = None
        self.cmd = None  # command of the last SOCKS request read

    def read_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise Eof(f"eof after {len(buf)} of {n} bytes")
            buf += chunk
        return buf

    def peek1(self):
        b = self.sock.recv(1, socket.MSG_PEEK)
        if not b:
            raise Eof("eof")
        return b[0]

    def read_until(self, end, limit):
        buf = b""
        while not buf.endswith(end):
            if len(buf) >= limit:
                raise Eof(f"no terminator within {limit} bytes")
            buf += self.read_exact(1)
        return buf

    # --- message readers: exactly one message, never the bytes after it ---

    def read_socks5(self):
        if not self.s5_seen_greeting:
            # +----+----------+----------+
            # |VER | NMETHODS | METHODS  |
            # +----+----------+----------+
            head = self.read_exact(2)
            msg = head + self.read_exact(head[1])
            self.s5_seen_greeting = True
            log(self.num, "greeting", msg.hex())
            return
        if self.peek1() == 1:
            # RFC 1929: VER=1 ULEN UNAME PLEN PASSWD
            head = self.read_exact(2)
            user = self.read_exact(head[1])
            plen = self.read_exact(1)
            pw = self.read_exact(plen[0])
            log(self.num, "auth", (head + user + plen + pw).hex())
            return
        # VER CMD RSV ATYP DST.ADDR DST.PORT
        head = self.read_exact(4)
        self.cmd = head[1]
        atyp = head[3]
        if atyp == 1:
            addr = self.read_exact(4)
            host = str(ipaddress.IPv4Address(addr))
        elif atyp == 4:
            addr = self.read_exact(16)
            host = "[" + str(ipaddress.IPv6Address(addr)) + "]"
        elif atyp == 3:
            ln = self.read_exact(1)
            name = self.read_exact(ln[0])
            addr = ln + name
            host = name.decode("latin-1")
        else:
            log(self.num, "request", head.hex())
            raise Eof(f"bad ATYP {atyp} in request")
        port = self.read_exact(2)
        log(self.num, "request", (head + addr + port).hex())
        log(self.num, "host", f"{host}:{struct.unpack('!H', port)[0]}")
        self.last_cmd = head[1]
        self.last_host = host.strip("[]")
        if head[1] == 0xF0:
            log(self.num, "resolve", self.last_host)
        elif head[1] == 0xF1:
            log(self.num, "resolve_ptr", self.last_host)

    def read_socks4(self):
        # VN CD DSTPORT(2) DSTIP(4) USERID NUL [HOSTNAME NUL if 0.0.0.x]
        head = self.read_exact(8)
        self.cmd = head[1]
        msg = head + self.read_until(b"\0", 512)
        ip = head[4:8]
        port = struct.unpack("!H", head[2:4])[0]
        if ip[:3] == b"\0\0\0" and ip[3] != 0:
            name = self.read_until(b"\0", 512)
            msg += name
            host = name[:-1].decode("latin-1")
        else:
            host = str(ipaddress.IPv4Address(ip))
        log(self.num, "socks4", msg.hex())
        log(self.num, "host", f"{host}:{port}")

    def read_http(self):
        head = self.read_until(b"\r\n\r\n", 16384)
        log(self.num, "http", head.hex())
        first = head.split(b"\r\n", 1)[0].decode("latin-1").split()
        if len(first) >= 2 and first[0] == "CONNECT":
            log(self.num, "host", first[1])

    # --- connection endings ---

    def drain(self):
        """Reads whatever already arrived so close() sends FIN, not RST."""
        self.sock.setblocking(False)
        try:
            while self.sock.recv(65536):
                pass
        except (BlockingIOError, ConnectionError):
            pass
        self.sock.setblocking(True)

    def stall(self):
        """Never answers; what the client still sends is logged, so the
        test sees e.g. a retry, and EOF ends the stall."""
        while True:
            try:
                data = self.sock.recv(65536)
            except ConnectionError:
                return
            if not data:
                return
            log(self.num, "ignored", data.hex())

    def echo(self):
        while True:
            data = self.sock.recv(65536)
            if not data:
                return
            self.sock.sendall(data)

    def relay(self, target):
        host, _, port = target.rpartition(":")
        up = socket.create_connection((host.strip("[]"), int(port)))
        socks = [self.sock, up]
        try:
            while socks:
                r, _, _ = select.select(socks, [], [])
                for s in r:
                    other = up if s is self.sock else self.sock
                    data = s.recv(65536)
                    if data:
                        other.sendall(data)
                    else:
                        socks.remove(s)
                        try:
                            other.shutdown(socket.SHUT_WR)
                        except OSError:
                            pass
        finally:
            up.close()

    # --- microsocks emulation ---

    def step_mode(self):
        data = self.sock.recv(1024)
        if not data:
            raise Eof("eof before greeting")
        log(self.num, "recv", data.hex())
        glen = 2 + data[1] if len(data) >= 2 else len(data)
        log(self.num, "greeting", data[:glen].hex())
        log(self.num, "dropped", str(max(0, len(data) - glen)))
        self.s5_seen_greeting = True
        if self.num in reply_at:
            time.sleep(max(0.0, first_accept + reply_at[self.num] - time.monotonic()))
            log(self.num, "method_at", since_first())
        self.sock.sendall(b"\x05\x00")
        data = self.sock.recv(1024)
        if not data:
            if reply_at:
                log(self.num, "eof_at", since_first())
            raise Eof("eof before request")
        log(self.num, "recv", data.hex())
        log(self.num, "request", data.hex())
        self.sock.sendall(bytes.fromhex("05000001000000000000"))


def answer(conn, spec):
    """The reply to the request just read, by what it asked (see answer)."""
    table = dict(w.split("=", 1) for w in spec.split())
    ok_empty = bytes.fromhex("05000001000000000000")
    if conn.last_cmd not in (0xF0, 0xF1):
        msg = ok_empty
    else:
        val = table.get(conn.last_host, table.get("*", "!04"))
        if val.startswith("!"):
            msg = bytes([5, int(val[1:], 16), 0, 1]) + bytes(6)
        elif val.startswith("tor!"):
            msg = bytes([5, int(val[4:], 16)]) + bytes(8)
        elif val.startswith("name:") or val.startswith("namehex:"):
            name = (bytes.fromhex(val[8:]) if val.startswith("namehex:")
                    else val[5:].encode("latin-1"))
            msg = bytes([5, 0, 0, 3, len(name)]) + name + bytes(2)
        else:
            ip = ipaddress.ip_address(val)
            msg = bytes([5, 0, 0, 1 if ip.version == 4 else 4]) + ip.packed + bytes(2)
    conn.sock.sendall(msg)
    log(conn.num, "answer", msg.hex())


def unescape(text):
    return text.encode("latin-1").decode("unicode_escape").encode("latin-1")


def run_script(conn, steps, mode):
    if mode == "step":
        conn.step_mode()
    i = 0
    in_section = False
    while i < len(steps):
        op, _, arg = steps[i].partition(" ")
        arg = arg.strip()
        i += 1
        if op == "oncmd":
            if in_section:
                break
            if conn.cmd == int(arg, 0):
                in_section = True
                continue
            while i < len(steps) and steps[i].partition(" ")[0] != "oncmd":
                i += 1
            continue
        if op == "read":
            log(conn.num, "read", conn.read_exact(int(arg)).hex())
        elif op == "readsocks5":
            conn.read_socks5()
        elif op == "readsocks4":
            conn.read_socks4()
        elif op == "readhttp":
            conn.read_http()
        elif op == "send":
            conn.sock.sendall(bytes.fromhex(arg))
        elif op == "sendtext":
            conn.sock.sendall(unescape(arg))
        elif op == "trickle":
            parts = arg.split()
            delay = 0.02
            if len(parts) > 1 and "." in parts[-1]:
                delay = float(parts.pop())
            for b in bytes.fromhex("".join(parts)):
                conn.sock.sendall(bytes([b]))
                time.sleep(delay)
        elif op == "sleep":
            time.sleep(float(arg))
        elif op == "discard":
            time.sleep(0.05)
            conn.sock.setblocking(False)
            n = 0
            try:
                while True:
                    d = conn.sock.recv(65536)
                    if not d:
                        break
                    n += len(d)
            except (BlockingIOError, ConnectionError):
                pass
            conn.sock.setblocking(True)
            log(conn.num, "discarded", str(n))
        elif op == "close":
            break
        elif op == "rst":
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                 struct.pack("ii", 1, 0))
            conn.sock.close()
            log(conn.num, "rst")
            return
        elif op == "stall":
            conn.stall()
            log(conn.num, "eof")
            break
        elif op == "echo":
            conn.echo()
            log(conn.num, "eof")
            break
        elif op == "relay":
            conn.relay(arg)
            break
        elif op == "answer":
            answer(conn, arg)
        else:
            raise ValueError(f"unknown step {op!r}")
    conn.drain()
    conn.sock.close()
    log(conn.num, "close")


def serve(conn, steps, mode):
    try:
        run_script(conn, steps, mode)
    except (Eof, OSError) as e:
        log(conn.num, "error", str(e))
        conn.sock.close()


def parse_steps(args, script_file):
    steps = []
    if script_file:
        with open(script_file) as f:
            steps += [ln.strip() for ln in f if ln.strip() and not ln.startswith("#")]
    for a in args:
        steps += [s.strip() for s in a.split(";") if s.strip()]
    known = {"read", "readsocks5", "readsocks4", "readhttp", "send", "sendtext",
             "trickle", "sleep", "discard", "close", "rst", "stall", "echo", "relay",
             "answer", "oncmd"}
    for s in steps:
        if s.split(" ", 1)[0] not in known:
            sys.exit(f"fakepeer: unknown step: {s}")
    return steps


def main():
    global log_file, first_accept
    ap = argparse.ArgumentParser(description="scriptable fake SOCKS peer")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--log")
    ap.add_argument("--mode", choices=["script", "step"], default="script")
    ap.add_argument("--step-reply-at", action="append", default=[])
    ap.add_argument("--script-file")
    ap.add_argument("steps", nargs="*")
    a = ap.parse_args()
    steps = parse_steps(a.steps, a.script_file)
    for spec in a.step_reply_at:
        n, _, sec = spec.partition("=")
        reply_at[int(n)] = float(sec)
    if a.log:
        log_file = open(a.log, "a")

    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", a.port))
    srv.listen(128)
    port = srv.getsockname()[1]
    print(port, flush=True)
    if a.port_file:
        tmp = a.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.rename(tmp, a.port_file)  # readers never see a half-written file

    num = 0
    while True:
        s, _ = srv.accept()
        num += 1
        if num == 1:
            first_accept = time.monotonic()
        log(num, "accept")
        threading.Thread(target=serve, args=(Conn(s, num), steps, a.mode),
                         daemon=True).start()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass

"""selectors with select(): N raw non-blocking connects + echo, timed.

    sel_echo.py HOST PORT N

The classic hand-written event loop: socket.setblocking(False), connect_ex
(EINPROGRESS), wait for writability with selectors.SelectSelector (select(2)),
check SO_ERROR, send, wait readable, compare. Output as aio_echo.py.
"""
import errno
import selectors
import socket
import sys
import time


def run(host, port, tags):
    sel = selectors.SelectSelector()
    left = {}
    for tag in tags:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        rc = s.connect_ex((host, port))
        if rc not in (0, errno.EINPROGRESS):
            raise SystemExit(f"connect {tag}: {errno.errorcode.get(rc, rc)}")
        msg = f"selectors {tag}\n".encode()
        left[s] = [msg, b""]
        sel.register(s, selectors.EVENT_WRITE, "connecting")
    deadline = time.monotonic() + 20
    while left:
        if time.monotonic() > deadline:
            raise SystemExit(f"timeout, {len(left)} left")
        for key, ev in sel.select(1):
            s = key.fileobj
            msg, got = left[s]
            if key.data == "connecting":
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    raise SystemExit(f"SO_ERROR {errno.errorcode.get(err, err)}")
                s.sendall(msg)
                sel.modify(s, selectors.EVENT_READ, "reading")
                continue
            d = s.recv(4096)
            if not d:
                raise SystemExit(f"EOF after {got!r}")
            got += d
            left[s][1] = got
            if len(got) >= len(msg):
                if got != msg:
                    raise SystemExit(f"echo mismatch: {got!r} != {msg!r}")
                sel.unregister(s)
                s.close()
                del left[s]
    sel.close()


host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
run(host, port, ["warm-up"])
t = time.monotonic()
run(host, port, ["single"])
one_ms = (time.monotonic() - t) * 1000
t = time.monotonic()
run(host, port, range(n))
all_ms = (time.monotonic() - t) * 1000
print(f"one_ms={one_ms:.0f} all_ms={all_ms:.0f} n={n}")
print(f"ok {n} echoes")

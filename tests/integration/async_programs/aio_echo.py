"""asyncio: N concurrent open_connection + echo, timed against one.

    aio_echo.py HOST PORT N

Prints "one_ms=A all_ms=B n=N" (one connect + echo after a warm-up, then N
at once) and "ok N echoes". Run under socksify, the N connects overlap only
if connect() really is non-blocking (EINPROGRESS, readiness later).
"""
import asyncio
import sys
import time


async def one(host, port, tag):
    r, w = await asyncio.open_connection(host, port)
    msg = f"asyncio {tag}\n".encode()
    w.write(msg)
    await w.drain()
    got = await r.readexactly(len(msg))
    w.close()
    await w.wait_closed()
    if got != msg:
        raise SystemExit(f"echo mismatch: {got!r} != {msg!r}")


async def main(host, port, n):
    await asyncio.wait_for(one(host, port, "warm-up"), 20)
    t = time.monotonic()
    await asyncio.wait_for(one(host, port, "single"), 20)
    one_ms = (time.monotonic() - t) * 1000
    t = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*(one(host, port, i) for i in range(n))), 25)
    all_ms = (time.monotonic() - t) * 1000
    print(f"one_ms={one_ms:.0f} all_ms={all_ms:.0f} n={n}")
    print(f"ok {n} echoes")


asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))

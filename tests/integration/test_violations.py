"""
test_violations.py: a client address whose sessions keep dying of seccomp
violations is refused at accept, and only that address, and only for
smtpd_violation_window.

A session killed by SIGSYS looks the same to moatd whether its filter
killed it or someone sent the signal, so the test sends SIGSYS to the
session of its own connection with os.kill.  Sending signals to processes
of other users needs root.
"""
import os
import signal
import smtplib
import socket
import time

from moat_harness import (LOOPBACK, dot_stuff, expect, make_message, skip_unless_root,
                          stays_false, wait_until)

LIMIT = 2
WINDOW_S = 6
REFUSAL = "421 4.7.0 moat.test Error: too many protocol violations from your address"


def _connect(port, source=None, timeout=10):
    """A plain socket to moatd, optionally from a given loopback address."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    if source is not None:
        s.bind((source, 0))
    s.connect((LOOPBACK, port))
    return s


def _read_all(s):
    """Everything the server sends until it closes the connection."""
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            return data
        data += chunk


def _first_line(s):
    data = b""
    while b"\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.split(b"\r\n", 1)[0].decode(errors="replace")


def _kill_session(moat, seen, n):
    """Connect, find this connection's session, kill it with SIGSYS."""
    c = moat.raw()
    code, _ = c.reply()
    assert code == 220, f"connection {n}: greeting {code}"
    p = moat.wait_role("session", exclude=seen)
    seen.add(p.pid)
    os.kill(p.pid, signal.SIGSYS)
    moat.wait_log(rf"child=smtpd-session pid={p.pid} client=127\.0\.0\.1 "
                  r"status=killed signal=SIGSYS \(seccomp violation\)", 10)
    moat.wait_log(rf"client=127\.0\.0\.1 violations={n} limit={LIMIT} window={WINDOW_S}s", 10)
    # The client sees its connection closed, without a reply.
    c.sock.settimeout(5)
    try:
        rest = c.sock.recv(4096)
    except ConnectionResetError:
        rest = b""
    assert rest == b"", f"connection {n}: {rest!r} after the session was killed"
    c.close()


def test_violation_limit(ctx):
    """SIGSYS deaths from 127.0.0.1 get it refused; 127.0.0.2 still sends mail."""
    skip_unless_root()
    sink = ctx.sink()
    moat = ctx.moat(relay_host=sink, smtpd_violation_limit=LIMIT,
                    smtpd_violation_window=f"{WINDOW_S}s")
    moat.expect_sandbox_kills = True     # SIGSYS on purpose, see above
    seen = set()
    for n in range(1, LIMIT):
        _kill_session(moat, seen, n)
        # Below the limit the address is still served.
        s = _connect(moat.port)
        line = _first_line(s)
        s.close()
        assert line.startswith("220 "), f"after {n} violation(s): {line!r}"
    _kill_session(moat, seen, LIMIT)
    blocked_at = time.monotonic()
    moat.wait_log(rf"client=127\.0\.0\.1 violations={LIMIT} limit={LIMIT} "
                  rf"window={WINDOW_S}s: further connections refused", 5)

    # 127.0.0.1: one 421 line, then the connection is closed; no session.
    s = _connect(moat.port)
    data = _read_all(s)
    s.close()
    assert data == (REFUSAL + "\r\n").encode(), f"refused client got {data!r}"
    moat.wait_log(rf"client=127\.0\.0\.1 refused=violations count={LIMIT}\b", 5)
    assert stays_false(lambda: [p for p in moat.find("session") if p.pid not in seen],
                       1.0), "a session was started for a refused address"

    # 127.0.0.2: greeted, and its mail goes through.
    s = _connect(moat.port, source="127.0.0.2")
    line = _first_line(s)
    s.close()
    assert line == "220 moat.test ESMTP moat", f"127.0.0.2 greeting {line!r}"
    smtp = smtplib.SMTP(local_hostname="client.test", timeout=15,
                        source_address=("127.0.0.2", 0))
    try:
        expect(smtp.connect(LOOPBACK, moat.port), 220, "greeting for 127.0.0.2")
        expect(smtp.ehlo("client.test"), 250, "EHLO")
        expect(smtp.docmd("MAIL FROM:<bob@company.org>"), 250, "MAIL")
        expect(smtp.docmd("RCPT TO:<alice@company.com>"), 250, "RCPT")
        expect(smtp.docmd("DATA"), 354, "DATA")
        smtp.send(dot_stuff(make_message([("Subject", "after violations")],
                                         ["from another loopback address"])))
        expect(smtp.getreply(), 250, "end of data")
        expect(smtp.docmd("QUIT"), 221, "QUIT")
    finally:
        smtp.close()
    msg = sink.wait_messages(1)[0]
    assert msg.recipients == ["alice@company.com"], f"recipients {msg.recipients!r}"
    received = msg.header("Received")
    assert received and "[127.0.0.2]" in received[0], f"Received: {received!r}"

    # Still refused while the window lasts, served again once it has passed.
    if time.monotonic() - blocked_at < WINDOW_S - 2:
        s = _connect(moat.port)
        data = _read_all(s)
        s.close()
        assert data.startswith(b"421 4.7.0 "), f"still in the window: {data!r}"

    def served():
        s = _connect(moat.port)
        try:
            return _first_line(s).startswith("220 ")
        finally:
            s.close()
    wait_until(served, WINDOW_S + 10, "127.0.0.1 to be served after the window")
    assert time.monotonic() - blocked_at >= WINDOW_S - 1, \
        "127.0.0.1 was served again before smtpd_violation_window had passed"


test_violation_limit.timeout = 90

"""How moatd starts its children (listener/spawn.c).

moatd starts every child with vfork + execve and resets, in the child, only
the signal dispositions that are not the default in moatd (found once).  A
disposition that moatd inherited as "ignored" must therefore not reach a
child: ignored signals survive execve, and a session or queue-manager that
silently ignores a signal its operator sends would be a surprise.  This
starts moatd with SIGUSR2 and SIGWINCH ignored (as a parent shell could leave
them) and checks every child's /proc status: neither is ignored, and no
signal is blocked.

Children also start with an empty environment, whatever moatd was given
(test_children_start_with_empty_environment).
"""
import signal

from moat_harness import expect, read_status

INHERITED = (signal.SIGUSR2, signal.SIGWINCH)


def _bits(status, key):
    return int(status.get(key, "0"), 16)


def _mask(sigs):
    m = 0
    for s in sigs:
        m |= 1 << (int(s) - 1)
    return m


def test_children_start_with_default_signals(ctx):
    saved = {s: signal.signal(s, signal.SIG_IGN) for s in INHERITED}
    try:
        moat = ctx.moat()
    finally:
        for s, old in saved.items():
            signal.signal(s, old)
    want = _mask(INHERITED)
    # The premise: moatd itself did inherit both as ignored.
    ign = _bits(read_status(moat.proc.pid), "SigIgn")
    assert ign & want == want, f"moatd SigIgn={ign:x}: the premise of this test failed"

    client = moat.raw()
    expect(client.reply(), 220, "greeting")
    moat.wait_role("session")
    children = [p for p in moat.processes() if p.pid != moat.proc.pid]
    roles = sorted(p.role for p in children)
    assert "session" in roles and "qmgr" in roles, roles
    for p in children:
        st = read_status(p.pid)
        if not st:
            continue    # gone meanwhile
        assert _bits(st, "SigIgn") & want == 0, \
            f"{p!r} SigIgn={st.get('SigIgn')}: an inherited ignored signal survived spawn"
        assert _bits(st, "SigBlk") == 0, f"{p!r} SigBlk={st.get('SigBlk')}"
    client.send(b"QUIT\r\n")
    expect(client.reply(), 221, "QUIT")
    ctx.note(f"checked {len(children)} children: {', '.join(roles)}")


def test_children_start_with_empty_environment(ctx):
    """moatd's environment (here with OPENSSL_CONF and GLIBC_TUNABLES set)
    reaches none of its children: each one's /proc/PID/environ is empty."""
    import os
    saved = {k: os.environ.get(k) for k in ("OPENSSL_CONF", "GLIBC_TUNABLES")}
    os.environ["OPENSSL_CONF"] = "/nonexistent/openssl.cnf"
    os.environ["GLIBC_TUNABLES"] = "glibc.malloc.check=3"
    try:
        moat = ctx.moat()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    with open(f"/proc/{moat.proc.pid}/environ", "rb") as f:
        assert b"OPENSSL_CONF=" in f.read(), "the premise failed: moatd lacks OPENSSL_CONF"
    client = moat.raw()
    expect(client.reply(), 220, "greeting")
    moat.wait_role("session")
    children = [p for p in moat.processes() if p.pid != moat.proc.pid]
    seen = []
    for p in children:
        try:
            with open(f"/proc/{p.pid}/environ", "rb") as f:
                env = f.read()
        except OSError:
            continue    # gone meanwhile
        seen.append(p.role)
        assert env == b"", f"{p!r} has an environment: {env[:200]!r}"
    assert "session" in seen and "qmgr" in seen, seen
    client.send(b"QUIT\r\n")
    expect(client.reply(), 221, "QUIT")
    ctx.note(f"checked {len(seen)} children: {', '.join(sorted(seen))}")

"""
test_sandbox.py: the sandboxes, proven from the outside and from the inside.

From the outside, on the default build (MOAT_BUILD, build/): each process's
users, no_new_privs, seccomp, capabilities, chroot and the exact set of
descriptors it holds, read from /proc while it works.

From the inside, on the hook build (MOAT_HOOKS_BUILD, build-hooks/:
configure --enable-test-hooks, seccomp tables unchanged): a live session,
delivery agent or queue-manager is made to try one forbidden thing (open a
file, make a socket, exec, fork, ptrace, make memory executable, signal
moatd), as injected code would.  Each attempt must be refused softly with
the errno its table names or kill the process with SIGSYS, as that table
says; it must never succeed, and everything else keeps working: other
clients' mail goes through, moatd restarts what died, no accepted mail is
lost.

The hook build's extra commands must not exist in the default build; that
is checked too.  Everything but that check needs root (moatd's users and
chroots).
"""
import os
import pwd
import re
import shutil
import subprocess
from pathlib import Path

import moat_harness as h
from moat_harness import (REPO, RawClient, Skip, assert_no_sandbox_kills, make_message,
                          sandbox_kills, skip_unless_root, wait_until)

# Set but empty: tests/run-suite could not build it (and counted that).
HOOKS_BUILD = os.environ.get("MOAT_HOOKS_BUILD", str(REPO / "build-hooks"))
HOOKS_BUILD = Path(HOOKS_BUILD) if HOOKS_BUILD else None
HOOK_MARKS = (b"XESCAPE", b"hooks.test", b"hook=escape")
BINARIES = ("smtpd-session/smtpd-session", "smtpd-session/smtpd-session-plain",
            "delivery-agent/delivery-agent",
            "queue-manager/queue-manager")

# Capability numbers (linux/capability.h).
CAP_KILL, CAP_SETGID, CAP_SETUID, CAP_SETPCAP, CAP_SYS_CHROOT = 5, 6, 7, 8, 18
LISTENER_CAPS = sum(1 << c for c in (CAP_KILL, CAP_SETGID, CAP_SETUID, CAP_SETPCAP,
                                     CAP_SYS_CHROOT))
CAP_SETS = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")

# role: (setting naming its user, default user, chroot under run_directory)
ROLES = {
    "session": ("smtpd_user", "moat-smtpd", "empty"),
    "qmgr": ("queue_user", "moat-queue", "queue"),
    "relay": ("relay_user", "moat-relay", "empty"),
    "local": ("local_user", "moat-local", "maildir"),
}
# moatd's name for each role in its child= log lines.
CHILD_NAME = {"session": "smtpd-session", "qmgr": "queue-manager",
              "relay": "delivery-agent", "local": "local-delivery"}

# What each escape attempt must do, as the seccomp tables say: ("soft",
# strerror) when the call is refused with an errno, ("killed", step) when
# the filter kills the process at the step named by the hook's last
# step= line (so a kill is matched to the forbidden call, not to
# something before it).
SESSION_ESCAPES = {
    "open": ("soft", "Permission denied"),          # SB_ERRNO(openat, EACCES)
    "socket": ("killed", "socket(AF_INET)"),
    "connect": ("killed", "socket(AF_UNIX)"),       # socket is already forbidden
    "exec": ("killed", "execve(/bin/sh)"),
    "fork": ("killed", "fork"),
    "ptrace": ("killed", "ptrace(PTRACE_TRACEME)"),
    "mprotect": ("killed", "mprotect(PROT_READ|PROT_EXEC)"),   # the RW mmap passes
    "kill": ("killed", "kill(MOATD, SIGTERM)"),     # moatd's pid filled in
}
RELAY_ESCAPES = {
    "open": ("soft", "Permission denied"),          # SB_ERRNO(openat, EACCES)
    "exec": ("killed", "execve(/bin/sh)"),
    "fork": ("killed", "fork"),
    "unixsock": ("killed", "socket(AF_UNIX)"),      # only TCP sockets for the relay
}
LOCAL_ESCAPES = {
    "socket": ("killed", "socket(AF_INET)"),
    "open-outside": ("soft", "No such file or directory"),   # the chroot hides both paths
    "exec": ("killed", "execve(/bin/sh)"),
}
QMGR_ESCAPES = {
    "socket": ("killed", "socket(AF_INET)"),
    "connect": ("killed", "socket(AF_UNIX)"),
    "exec": ("killed", "execve(/bin/sh)"),
    "fork": ("killed", "fork"),
    "open": ("soft", "Permission denied"),          # SB_ERRNO(openat, EACCES)
}


# ---------------------------------------------------------------- helpers

def hook_build():
    """Switch this test to the hook build; skip if it was not built."""
    for b in BINARIES + ("listener/moatd",):
        if HOOKS_BUILD is None or not (HOOKS_BUILD / b).exists():
            raise Skip(f"no hook build at {HOOKS_BUILD} (configure --enable-test-hooks; "
                       "tests/run-suite builds it and sets MOAT_HOOKS_BUILD)")
    h.use_build(HOOKS_BUILD)


def message(subject, body="sandbox test"):
    return make_message([("From", "tester@company.org"), ("Subject", subject)], [body])


def child_line(log, name, pid, rest):
    """moatd's line about child pid of the given name, matching rest."""
    return re.search(rf"moat/moatd\[\d+\]: (?:\w+: )?child={re.escape(name)} pid={pid}\b.*{rest}",
                     log)


def hook_lines(log, prog, pid):
    """The hook=escape lines process prog[pid] logged."""
    return re.findall(rf"moat/{re.escape(prog)}\[{pid}\]: .*hook=escape.*", log)


def last_step(lines):
    """The call a process logged last before making it."""
    steps = [m.group(1) for ln in lines for m in [re.search(r'step="([^"]*)"', ln)] if m]
    return steps[-1] if steps else None


def check_outcome(moat, prog, pid, what, expected, killed):
    """Compare how the attempt of process prog[pid] ended with expected."""
    log = moat.log()
    lines = hook_lines(log, prog, pid)
    assert lines, f"{prog}[{pid}] logged no hook=escape line for {what}: the hook did not run"
    assert not any("SUCCEEDED" in ln for ln in lines), \
        f"ESCAPE {what} SUCCEEDED in {prog}[{pid}]:\n" + "\n".join(lines)
    kind, detail = expected
    if kind == "soft":
        assert not killed, f"{what}: {prog}[{pid}] was killed; want a soft refusal ({detail})"
        want = f'what={what} result=failed error="{detail}"'
        assert any(want in ln for ln in lines), \
            f"{what}: want {want!r} from {prog}[{pid}], got:\n" + "\n".join(lines)
        return f"{prog} {what}: refused softly ({detail})"
    assert killed, f"{what}: {prog}[{pid}] survived; want a SIGSYS kill at {detail}:\n" + \
        "\n".join(lines)
    if detail is not None:
        assert last_step(lines) == detail, \
            f"{what}: {prog}[{pid}] died after step {last_step(lines)!r}, want {detail!r}:\n" + \
            "\n".join(lines)
    return f"{prog} {what}: killed by SIGSYS at {last_step(lines)}"


def wait_killed(moat, role, pid, timeout=15):
    """Wait for moatd's line saying child pid died of SIGSYS."""
    return wait_until(lambda: child_line(moat.log(), CHILD_NAME[role], pid,
                                         r"status=killed signal=SIGSYS"),
                      timeout, f"moatd to log {CHILD_NAME[role]} pid={pid} killed by SIGSYS")


def wait_hook_result(moat, prog, what, timeout=20):
    """(pid, killed) of the process of prog that attempted what."""
    m = moat.wait_log(rf"moat/{re.escape(prog)}\[(\d+)\]: .*hook=escape what={re.escape(what)} "
                      r"attempt", timeout)
    pid = int(m.group(1))

    def ended():
        log = moat.log()
        if re.search(rf"moat/{re.escape(prog)}\[{pid}\]: .*hook=escape what={re.escape(what)} "
                     r"result=", log):
            return "returned"
        if re.search(rf"child=\S+ pid={pid}\b.*status=", log):
            return "died"
        return None
    how = wait_until(ended, timeout, f"{prog}[{pid}] to finish its {what} attempt")
    killed = False
    if how == "died":
        role = {"delivery-agent": "relay", "local-delivery": "local",
                "queue-manager": "qmgr"}[prog]
        wait_killed(moat, role, pid, 5)
        killed = True
    return pid, killed


def expect_only_kills(moat, pids):
    """The log's sandbox kills are exactly those of pids, and no others."""
    kills = sandbox_kills(moat)
    other = [k for k in kills if not any(re.search(rf"pid={p}\b", k) for p in pids)]
    assert not other, "unexpected sandbox kills:\n  " + "\n  ".join(other)
    assert len(kills) == len(pids), \
        f"{len(pids)} kills expected ({pids}), the log has {len(kills)}:\n  " + "\n  ".join(kills)


# ---------------------------------------------------------------- the hooks are test-only

def test_hooks_absent_from_default_build(ctx):
    """The default build's binaries contain none of the hook build's commands."""
    default = h.BUILD
    for b in BINARIES:
        h.require(default / b, b)
        data = (default / b).read_bytes()
        found = [m.decode() for m in HOOK_MARKS if m in data]
        assert not found, f"default build {default / b} contains hook strings {found}"
    # ... and the marks do exist in a hook build, so the check above can fail.
    if HOOKS_BUILD is not None and all((HOOKS_BUILD / b).exists() for b in BINARIES):
        for b in BINARIES:
            data = (HOOKS_BUILD / b).read_bytes()
            assert b"hook=escape" in data, f"hook build {HOOKS_BUILD / b} lacks its hooks"
    r = subprocess.run(["strings", str(default / BINARIES[0])], capture_output=True, text=True,
                       timeout=30) if shutil.which("strings") else None
    if r is not None:
        assert "XESCAPE" not in r.stdout, "strings of the default smtpd-session shows XESCAPE"


def test_default_build_refuses_xescape(ctx):
    """In the default build XESCAPE is just an unknown command (500)."""
    sink = ctx.sink()
    moat = ctx.moat(relay_host=sink)
    c = moat.raw()
    assert c.reply()[0] == 220
    c.send("EHLO client.test\r\nXESCAPE open\r\n")
    assert c.reply()[0] == 250
    code, texts = c.reply()
    assert code == 500, f"XESCAPE in the default build: {code} {texts}"
    c.send("QUIT\r\n")
    assert c.reply()[0] == 221
    assert "hook=escape" not in moat.log()
    assert_no_sandbox_kills(moat)


# ---------------------------------------------------------------- escapes: the session

def _start_transaction(moat, tag):
    """A client in the middle of DATA, half its message sent; (client, rest)."""
    b = RawClient(moat.port)
    moat.ctx.add_cleanup(b.close)
    assert b.reply()[0] == 220
    for cmd, code in ((f"EHLO bystander-{tag}.test", 250), ("MAIL FROM:<bob@company.org>", 250),
                      (f"RCPT TO:<bystander-{tag}@company.com>", 250), ("DATA", 354)):
        b.send(cmd + "\r\n")
        got = b.reply()
        assert got[0] == code, f"bystander {cmd}: {got}"
    data = message(f"bystander {tag}")
    half = len(data) // 2
    b.send(data[:half])
    return b, data[half:]


def test_escape_session(ctx):
    """XESCAPE from a live session: refused or killed, other clients unharmed."""
    skip_unless_root()
    hook_build()
    sink = ctx.sink()
    # Every kill here comes from 127.0.0.1: do not let moatd block it.
    moat = ctx.moat(relay_host=sink, smtpd_violation_limit=1000)
    moat.expect_sandbox_kills = True
    moatd_pid = moat.proc.pid
    killed_pids, notes = [], []
    for n, (what, expected) in enumerate(SESSION_ESCAPES.items()):
        old = {p.pid for p in moat.find("session")}
        bystander, rest = _start_transaction(moat, what)
        b_pid = moat.wait_role("session", exclude=old).pid
        a = RawClient(moat.port)
        ctx.add_cleanup(a.close)
        assert a.reply()[0] == 220
        a.send("EHLO attacker.test\r\n")
        assert a.reply()[0] == 250
        a_pid = moat.wait_role("session", exclude=old | {b_pid}).pid
        if what == "kill":
            expected = ("killed", f"kill({moatd_pid}, SIGTERM)")
        a.send(f"XESCAPE {what}\r\n")
        try:
            code, texts = a.reply()
            killed = False
        except ConnectionError:
            killed = True
        if not killed:
            assert code != 250 and "SUCCEEDED" not in texts[-1], \
                f"ESCAPE {what} SUCCEEDED from a session: {code} {texts}"
            assert code == 550 and texts[-1].startswith(f"escape {what} failed: "), \
                f"XESCAPE {what}: {code} {texts}"
            a.send("QUIT\r\n")
            assert a.reply()[0] == 221
        else:
            wait_killed(moat, "session", a_pid)
            killed_pids.append(a_pid)
        notes.append(check_outcome(moat, "smtpd-session", a_pid, what, expected, killed))
        if what == "kill":
            assert moat.proc.poll() is None and h.pid_alive(moatd_pid), \
                "moatd died after a session's kill(getppid(), SIGTERM)"
        # The bystander, mid-DATA all along, finishes its message.
        bystander.send(rest + b".\r\n")
        code, texts = bystander.reply()
        assert code == 250 and "queued as" in texts[-1], \
            f"bystander of {what}: end of data got {code} {texts}"
        bystander.send("QUIT\r\n")
        assert bystander.reply()[0] == 221
        msgs = sink.wait_messages(n + 1)
        assert any(m.header("Subject") == [f"bystander {what}"] for m in msgs), \
            f"the bystander's message of {what} did not reach the next hop"
    # moatd is still accepting and serving after all of it.
    moat.send("bob@company.org", ["after@company.com"], message("after the escapes"))
    sink.wait_messages(len(SESSION_ESCAPES) + 1)
    expect_only_kills(moat, killed_pids)
    ctx.note("\n".join(notes))


test_escape_session.timeout = 120


# ---------------------------------------------------------------- escapes: delivery agents

def _agent_escapes(ctx, transport, escapes):
    skip_unless_root()
    hook_build()
    prog = "delivery-agent" if transport == "relay" else "local-delivery"
    notes = []
    for what, expected in escapes.items():
        sink = ctx.sink(name=f"sink-{what}")
        moat = ctx.moat(name=f"moat-{what}", relay_host=sink)
        moat.expect_sandbox_kills = True
        before = {p.pid for p in moat.wait_agents()[transport]}
        rcpt = "postmaster@localhost" if transport == "local" else f"victim-{what}@company.com"
        qid = moat.send(f"escape-{what}@hooks.test", [rcpt], message(f"escape {what}"))
        pid, killed = wait_hook_result(moat, prog, what)
        assert pid in before, f"{prog}[{pid}] that ran the hook is not one of moatd's {before}"
        notes.append(check_outcome(moat, prog, pid, what, expected, killed))
        if killed:
            # moatd starts a new agent; the job stays queued (it is retried
            # later), and a normal message is delivered meanwhile.
            wait_until(lambda: [p for p in moat.find(transport) if p.pid not in before]
                       and len(moat.find(transport)) == len(before), 15,
                       f"moatd to restart the killed {prog}")
            assert qid in moat.queue_ids(), \
                f"{qid}, whose agent was killed, is no longer queued: lost"
            moat.send("bob@company.org", [rcpt if transport == "local" else "after@company.com"],
                      message(f"after {what}"))
        if transport == "local":
            got = moat.wait_maildir("postmaster", 1)
            assert any(f"Subject: {'after' if killed else 'escape'} {what}" in p.read_text()
                       for p in got), f"local delivery after {what}: not in the maildir"
        else:
            msgs = sink.wait_messages(1)
            subj = f"after {what}" if killed else f"escape {what}"
            assert any(m.header("Subject") == [subj] for m in msgs), \
                f"relay after {what}: {subj!r} did not reach the next hop"
        expect_only_kills(moat, [pid] if killed else [])
        moat.stop()
        sink.stop()
    ctx.note("\n".join(notes))


def test_escape_relay_agent(ctx):
    """A relay agent cannot open files, exec, fork or make a Unix socket."""
    _agent_escapes(ctx, "relay", RELAY_ESCAPES)


test_escape_relay_agent.timeout = 120


def test_escape_local_agent(ctx):
    """The local agent has no sockets, no exec, and sees only its maildirs."""
    _agent_escapes(ctx, "local", LOCAL_ESCAPES)


test_escape_local_agent.timeout = 120


# ---------------------------------------------------------------- escapes: the queue-manager

def test_escape_queue_manager(ctx):
    """The queue-manager has no network, no exec or fork, nothing outside its chroot;
    when it is killed, moatd restarts it and no accepted message is lost."""
    skip_unless_root()
    hook_build()
    notes = []
    for what, expected in QMGR_ESCAPES.items():
        # Messages accepted before the attempt wait in the queue (450 at RCPT).
        sink = ctx.sink("-r", "RCPT", name=f"sink-{what}")
        moat = ctx.moat(name=f"moat-{what}", relay_host=sink)
        moat.expect_sandbox_kills = True
        old = moat.find("qmgr")[0].pid
        accepted = [moat.send("bob@company.org", [f"kept{i}@company.com"],
                              message(f"kept {what} {i}")) for i in range(3)]
        c = moat.smtp()
        h.expect(c.ehlo(f"escape-{what}.hooks.test"), 250, "EHLO")
        h.expect(c.docmd("MAIL FROM:<bob@company.org>"), 250, "MAIL")
        h.expect(c.docmd(f"RCPT TO:<victim-{what}@company.com>"), 250, "RCPT")
        code, text = c.docmd("DATA")
        pid, killed = wait_hook_result(moat, "queue-manager", what)
        assert pid == old, f"queue-manager[{pid}] ran the hook, moatd's is {old}"
        notes.append(check_outcome(moat, "queue-manager", pid, what, expected, killed))
        if killed:
            assert 400 <= code < 500, f"DATA while the queue-manager died: {code} {text!r}, want 4xx"
            c.close()
            wait_until(lambda: [p for p in moat.find("qmgr") if p.pid != old], 15,
                       "moatd to restart the queue-manager")
        else:
            assert code == 354, f"DATA after a refused {what}: {code} {text!r}"
            c.send(h.dot_stuff(message(f"escape {what}")))
            h.expect(c.getreply(), 250, "end of data")
            c.quit()
            accepted.append("escape")
        moat.send("bob@company.org", ["after@company.com"], message(f"after {what}"))
        sink.restart()
        msgs = sink.wait_messages(len(accepted) + 1, timeout=30)
        subjects = {m.header("Subject")[0] for m in msgs if m.header("Subject")}
        want = {f"kept {what} {i}" for i in range(3)} | {f"after {what}"}
        if not killed:
            want.add(f"escape {what}")
        assert want <= subjects, f"{what}: lost {sorted(want - subjects)}"
        expect_only_kills(moat, [pid] if killed else [])
        moat.stop()
        sink.stop()
    ctx.note("\n".join(notes))


test_escape_queue_manager.timeout = 150


# ---------------------------------------------------------------- /proc, default build

def _status_problems(where, st, uid, gid, caps):
    out = []
    for k, want in (("Uid", uid), ("Gid", gid)):
        ids = [int(x) for x in st.get(k, "").split()]
        if ids != [want] * 4:
            out.append(f"{where}: {k} {ids}, want {want} four times (real, effective, saved, fs)")
    if st.get("Groups", "") != "":
        out.append(f"{where}: supplementary groups {st.get('Groups')!r}, want none")
    if st.get("NoNewPrivs") != "1":
        out.append(f"{where}: NoNewPrivs {st.get('NoNewPrivs')!r}, want 1")
    if st.get("Seccomp") != "2":
        out.append(f"{where}: Seccomp {st.get('Seccomp')!r}, want 2 (filter)")
    for k, want in zip(CAP_SETS, caps):
        have = int(st.get(k, "f" * 16), 16)
        if have != want:
            out.append(f"{where}: {k} {have:016x}, want {want:016x}")
    return out


def _fds(pid):
    """{fd number: readlink target}."""
    out = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            out[int(fd)] = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            pass
    return out


def _inode(target):
    m = re.fullmatch(r"socket:\[(\d+)\]", target)
    return int(m.group(1)) if m else None


def _tcp_sockets():
    """{inode: (local port, remote port, state)} from /proc/net/tcp."""
    out = {}
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            x = line.split()
            out[int(x[9])] = (int(x[1].split(":")[1], 16), int(x[2].split(":")[1], 16), x[3])
    return out


def _unix_sockets():
    """{inode: (type, state, path)} from /proc/net/unix, and {inode: peer} from ss."""
    socks = {}
    with open("/proc/net/unix") as f:
        next(f)
        for line in f:
            x = line.split()
            socks[int(x[6])] = (int(x[4], 16), int(x[5], 16), x[7] if len(x) > 7 else "")
    peers = {}
    r = subprocess.run(["ss", "-xa"], capture_output=True, text=True, timeout=10)
    for line in r.stdout.splitlines()[1:]:
        x = line.split()
        # Netid State Recv-Q Send-Q Local-Address Port Peer-Address Port
        if len(x) >= 8 and x[5].isdigit() and x[7].isdigit():
            peers[int(x[5])] = int(x[7])
    return socks, peers


def _holders(pids):
    """{socket inode: pid} for every socket the given processes hold."""
    out = {}
    for pid in pids:
        for t in _fds(pid).values():
            if _inode(t) is not None:
                out[_inode(t)] = pid
    return out


SOCK_SEQPACKET, UNIX_LISTENING = 5, 1


def test_proc_privileges_and_descriptors(ctx):
    """Per role: users, no_new_privs, seccomp, capabilities, chroot, exact descriptors."""
    skip_unless_root()
    if not shutil.which("ss"):
        raise Skip("ss (iproute2) is needed to find the peers of Unix sockets")
    sink = ctx.sink()
    moat = ctx.moat(relay_host=sink)
    # A normal day first: relayed and local mail (the check at the end).
    moat.send("bob@company.org", ["alice@company.com"], message("normal relay"))
    moat.send("bob@company.org", ["postmaster@localhost"], message("normal local"))
    sink.wait_messages(1)
    moat.wait_maildir("postmaster", 1)
    # Two live sessions, one in the middle of a transaction.
    clients = []
    for tag in ("one", "two"):
        c = moat.raw()
        assert c.reply()[0] == 220
        c.send(f"EHLO {tag}.test\r\nMAIL FROM:<bob@company.org>\r\n")
        assert c.reply()[0] == 250 and c.reply()[0] == 250
        clients.append(c)
    wait_until(lambda: len(moat.find("session")) == 2, 10, "two sessions")
    for role in ("qmgr", "relay", "local"):
        moat.wait_role(role)
    moat.wait_settled(["qmgr", "relay", "local", "session"])
    procs = moat.processes()
    listener = moat.proc.pid
    pids = [listener] + [p.pid for p in procs]
    tcp = _tcp_sockets()
    unix, peers = _unix_sockets()
    held = _holders(pids)
    problems = []
    conf = moat.settings
    run = moat.run_dir
    lfds = _fds(listener)
    log_target = lfds.get(2)
    qmgr = [p.pid for p in procs if p.role == "qmgr"]
    sessions = {p.pid for p in procs if p.role == "session"}
    agents = {p.pid for p in procs if p.role in ("relay", "local")}
    client_ports = [c.sock.getsockname()[1] for c in clients]
    seen_clients = []

    def peer_holder(target):
        ino = _inode(target)
        return held.get(peers.get(ino)) if ino is not None else None

    def seqpacket(target):
        ino = _inode(target)
        return ino in unix and unix[ino][0] == SOCK_SEQPACKET

    # The listener: root with exactly its five capabilities, no chroot.
    st = h.read_status(listener)
    problems += _status_problems("listener", st, 0, 0,
                                 (0, LISTENER_CAPS, LISTENER_CAPS, LISTENER_CAPS, 0))
    if os.readlink(f"/proc/{listener}/root") != "/":
        problems.append(f"listener: root {os.readlink(f'/proc/{listener}/root')}, want /")
    kinds = []
    for fd, t in sorted(lfds.items()):
        ino = _inode(t)
        if fd in (1, 2) and t == log_target:
            kinds.append("log")
        elif t == "/dev/null":
            kinds.append("/dev/null")
        elif t.startswith("/memfd:moat.conf"):
            kinds.append("config")
        elif t.startswith("/memfd:moat-filter"):
            kinds.append("session filter")
        elif t == "anon_inode:[signalfd]":
            kinds.append("signalfd")
        elif ino in tcp and tcp[ino][2] == "0A" and tcp[ino][0] == moat.port:
            kinds.append("listen")
        elif ino in unix and unix[ino][2] == str(run / "control.sock") and \
                unix[ino][1] == UNIX_LISTENING:
            kinds.append("control.sock")
        elif seqpacket(t) and peer_holder(t) in qmgr:
            kinds.append("qmgr channel")
        else:
            kinds.append(f"UNEXPECTED fd {fd} -> {t}")
    # Two configuration memfds: with the lookup tables, and the text alone
    # for sessions; and the sessions' seccomp program, built once.
    want = sorted(["/dev/null", "/dev/null", "log", "log", "config", "config", "signalfd",
                   "listen", "control.sock", "qmgr channel", "session filter"])
    if sorted(kinds) != want:
        problems.append(f"listener descriptors {sorted(kinds)}, want {want}")

    for p in procs:
        if p.role not in ROLES:
            problems.append(f"unexpected process under moatd: {p}")
            continue
        setting, default, chroot = ROLES[p.role]
        pw = pwd.getpwnam(conf.get(setting, default))
        where = f"{p.role} pid {p.pid}"
        problems += _status_problems(where, p.status, pw.pw_uid, pw.pw_gid, (0,) * 5)
        # Two filters: moatd's, inherited, and the process's own.
        if p.status.get("Seccomp_filters", "2") != "2":
            problems.append(f"{where}: Seccomp_filters {p.status.get('Seccomp_filters')}, want 2")
        root = os.readlink(f"/proc/{p.pid}/root")
        if root != str(run / chroot):
            problems.append(f"{where}: root {root}, want {run / chroot}")
        fds = _fds(p.pid)
        std = {0: "/dev/null", 1: "/dev/null", 2: log_target}
        for fd, t in std.items():
            if fds.get(fd) != t:
                problems.append(f"{where}: fd {fd} -> {fds.get(fd)}, want {t}")
        rest = {fd: t for fd, t in fds.items() if fd not in std}
        if p.role == "session":
            conn = tcp.get(_inode(rest.get(4, "")))
            if set(rest) != {4, 5}:
                problems.append(f"{where}: descriptors {sorted(fds)}, want exactly 0 1 2 4 5: "
                                f"{rest}")
            if conn is None or conn[0] != moat.port or conn[1] not in client_ports:
                problems.append(f"{where}: fd 4 -> {rest.get(4)} {conn} is not the TCP "
                                f"connection of one of the clients {sorted(client_ports)}")
            else:
                seen_clients.append(conn[1])
            if not (seqpacket(rest.get(5, "")) and peer_holder(rest.get(5, "")) in qmgr):
                problems.append(f"{where}: fd 5 -> {rest.get(5)} is not a channel to the "
                                f"queue-manager")
        elif p.role in ("relay", "local"):
            # A relay agent may keep its last connection to the sink open for
            # reuse (relay_connection_idle_time): that TCP socket and no other.
            extra = {fd: t for fd, t in rest.items() if fd != 4}
            cached = [fd for fd, t in extra.items() if p.role == "relay" and
                      _inode(t) in tcp and tcp[_inode(t)][1] == sink.port]
            if 4 not in rest or len(cached) > 1 or set(extra) != set(cached):
                problems.append(f"{where}: descriptors {sorted(fds)}, want exactly 0 1 2 4 "
                                f"(and a relay's one cached connection to the sink): {rest}")
            if not (seqpacket(rest.get(4, "")) and peer_holder(rest.get(4, "")) in qmgr):
                problems.append(f"{where}: fd 4 -> {rest.get(4)} is not a channel to the "
                                f"queue-manager")
        elif p.role == "qmgr":
            qkinds = []
            pipes = {}
            for fd, t in sorted(rest.items()):
                ino = _inode(t)
                if fd == 3 and t.startswith("/memfd:moat.conf"):
                    qkinds.append("config")
                elif fd == 4 and seqpacket(t) and peer_holder(t) == listener:
                    qkinds.append("moatd channel")
                elif fd == 5 and ino in unix and unix[ino][2] == str(run / "control.sock"):
                    qkinds.append("control.sock")
                elif t in (str(run / "queue"), str(run / "queue" / "queue.db"),
                           str(run / "queue" / "queue.db-wal")):
                    qkinds.append(t[len(str(run)) + 1:])
                elif t == "anon_inode:[eventpoll]":
                    qkinds.append("epoll")
                elif t == "anon_inode:[eventfd]":
                    qkinds.append("eventfd")
                elif t.startswith("pipe:"):
                    pipes[t] = pipes.get(t, 0) + 1
                elif seqpacket(t) and peer_holder(t) in sessions:
                    qkinds.append("session channel")
                elif seqpacket(t) and peer_holder(t) in agents:
                    qkinds.append("agent channel")
                else:
                    qkinds.append(f"UNEXPECTED fd {fd} -> {t}")
            # libevent's wake-up pipe: both ends of one pipe.
            if list(pipes.values()) != [2]:
                problems.append(f"{where}: pipes {pipes}, want both ends of one")
            # The WAL twice: SQLite's descriptor and the one whose
            # fdatasync goes through native AIO, which signals the eventfd.
            want = sorted(["config", "moatd channel", "control.sock", "queue", "queue/queue.db",
                           "queue/queue.db-wal", "queue/queue.db-wal", "eventfd", "epoll"]
                          + ["session channel"] * len(sessions)
                          + ["agent channel"] * len(agents))
            if sorted(qkinds) != want:
                problems.append(f"{where}: descriptors {sorted(qkinds)}, want {want}")
    if sorted(seen_clients) != sorted(client_ports):
        problems.append(f"sessions serve clients {sorted(seen_clients)}, want each of "
                        f"{sorted(client_ports)} once")
    # No TCP connection or listening socket anywhere but where it belongs.
    for p in procs:
        for fd, t in _fds(p.pid).items():
            ino = _inode(t)
            if ino in tcp and not (p.role == "session" and fd == 4) and \
                    not (p.role == "relay" and tcp[ino][1] == sink.port):
                problems.append(f"{p.role} pid {p.pid}: fd {fd} is a TCP socket {tcp[ino]}")
            if ino in unix and unix[ino][1] == UNIX_LISTENING and p.role != "qmgr":
                problems.append(f"{p.role} pid {p.pid}: fd {fd} is a listening socket")
    # Each session installed the program moatd built once (util/sandbox.h).
    log = moat.log()
    for pid in sorted(sessions):
        if f"smtpd-session[{pid}]: debug: sandbox=moatd" not in log:
            problems.append(f"session pid {pid} did not install moatd's filter program")
    for c in clients:
        c.send("QUIT\r\n")
    assert not problems, "\n  ".join(["sandbox problems:"] + problems)
    assert_no_sandbox_kills(moat)
    ctx.note(f"checked listener and {len(procs)} children: "
             + ", ".join(sorted(p.role for p in procs)))


test_proc_privileges_and_descriptors.timeout = 60

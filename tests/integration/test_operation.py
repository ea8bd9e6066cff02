"""
test_operation.py: what an operator relies on: each process under its own
user in its sandbox, moatctl, and moatd -n.
"""
import os
import re
import subprocess

from moat_harness import MOATD, REPO, make_message, skip_unless_root, wait_until

# CAP_KILL (5), CAP_SETGID (6), CAP_SETUID (7), CAP_SETPCAP (8), CAP_SYS_CHROOT (18)
LISTENER_CAPS = (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 18)
EXPECTED = {
    # role: (user, chroot under run_directory)
    "session": ("moat-smtpd", "empty"),
    "qmgr": ("moat-queue", "queue"),
    "relay": ("moat-relay", "empty"),
    "local": ("moat-local", "maildir"),
}


def ps_users(pids):
    """{pid: user name} from ps -o user,pid,cmd."""
    r = subprocess.run(["ps", "-o", "user:24,pid,cmd", "-p", ",".join(map(str, pids))],
                       capture_output=True, text=True, timeout=10)
    users = {}
    for line in r.stdout.splitlines()[1:]:
        f = line.split(None, 2)
        users[int(f[1])] = f[0]
    return users, r.stdout


def test_privileges(ctx):
    """ps and /proc: own user, seccomp, no_new_privs, no capabilities, chroot."""
    skip_unless_root()
    sink = ctx.sink()
    moat = ctx.moat(relay_host=sink)
    c = moat.raw()                      # keep a live session during the checks
    assert c.reply()[0] == 220
    c.send("EHLO priv.company.org\r\n")
    assert c.reply()[0] == 250
    procs = {}
    for role in EXPECTED:
        moat.wait_role(role)
    moat.wait_agents()                  # every agent, not only the first
    moat.wait_settled(list(EXPECTED))
    for role in EXPECTED:
        procs[role] = moat.find(role)
    listener = moat.proc.pid
    users, ps_text = ps_users([listener] + [p.pid for ps in procs.values() for p in ps])
    problems = []
    for role, ps in procs.items():
        user, root = EXPECTED[role]
        for p in ps:
            st = p.status
            where = f"{role} pid {p.pid}"
            if users.get(p.pid) != user:
                problems.append(f"{where}: ps user {users.get(p.pid)!r}, want {user}")
            if st.get("Seccomp") != "2":
                problems.append(f"{where}: Seccomp {st.get('Seccomp')!r}, want 2 (filter)")
            if st.get("NoNewPrivs") != "1":
                problems.append(f"{where}: NoNewPrivs {st.get('NoNewPrivs')!r}, want 1")
            for cap in ("CapEff", "CapPrm"):
                if st.get(cap) != "0000000000000000":
                    problems.append(f"{where}: {cap} {st.get(cap)}, want none")
            try:
                proot = os.readlink(f"/proc/{p.pid}/root")
            except OSError as e:
                proot = f"({e.strerror})"
            if proot != str(moat.run_dir / root):
                problems.append(f"{where}: root {proot}, want {moat.run_dir / root}")
    with open(f"/proc/{listener}/status") as f:
        lst = f.read()
    capeff = int(re.search(r"^CapEff:\s*([0-9a-f]+)", lst, re.M).group(1), 16)
    if capeff != LISTENER_CAPS:
        problems.append(f"listener: CapEff {capeff:016x}, want {LISTENER_CAPS:016x} "
                        "(CAP_SETUID|CAP_SETGID|CAP_SETPCAP|CAP_SYS_CHROOT|CAP_KILL)")
    c.send("QUIT\r\n")
    assert not problems, "\n  ".join(["privilege problems:"] + problems) + "\n" + ps_text
    ctx.note(ps_text.rstrip())


def _deferred_message(ctx, rcpts):
    sink = ctx.sink("-r", "RCPT")
    moat = ctx.moat(relay_host=sink)
    qid = moat.send("bob@company.org", rcpts,
                    make_message([("Subject", "for moatctl")], ["kept deferred"]))
    wait_until(lambda: qid in moat.queue_text() and "4.3.0" in moat.queue_text(), 20,
               f"moatctl queue to list {qid} with its 4.3.0 error")
    return moat, qid


def test_moatctl_queue_and_show(ctx):
    """moatctl queue lists a deferred message with its error; show lists recipients."""
    rcpts = ["alice@company.com", "carol@company.com"]
    moat, qid = _deferred_message(ctx, rcpts)
    r = moat.moatctl("show", qid)
    assert r.returncode == 0, f"moatctl show {qid}: exit {r.returncode}: {r.stdout}{r.stderr}"
    for rcpt in rcpts:
        assert rcpt in r.stdout, f"moatctl show {qid} does not list {rcpt}:\n{r.stdout}"
    assert "bob@company.org" in r.stdout, f"moatctl show lacks the sender:\n{r.stdout}"
    r = moat.moatctl("show", "0123456789ABCDEF")
    assert r.returncode != 0, f"moatctl show of an unknown id succeeded:\n{r.stdout}"


def test_moatctl_refuses_unprivileged(ctx):
    """Only root and the admin group may use moatctl; user nobody is refused."""
    skip_unless_root()
    moat, qid = _deferred_message(ctx, ["alice@company.com"])
    r = moat.moatctl("queue", user="nobody")
    assert r.returncode != 0 and qid not in r.stdout, \
        f"moatctl as nobody: exit {r.returncode}\n{r.stdout}{r.stderr}"
    # As an operator would be: moat-admin as a supplementary group only.
    r = moat.moatctl("queue", user="nobody", groups=["moat-admin"])
    assert r.returncode == 0 and qid in r.stdout, \
        f"moatctl as nobody in group moat-admin: exit {r.returncode}\n{r.stdout}{r.stderr}"


BAD_CONF = """\
# a configuration with one error on each numbered line
listen = 127.0.0.1:99999
smtpd_recipient_limit = 0
no_such_setting = 1
relay_networks = 10.0.0.0/33
message_size_limit = lots
run_directory = relative/path
myhostname = fine.example
smtpd_recipient_limit = 5
"""
BAD_LINES = {2, 3, 4, 5, 6, 7, 9}


def test_config_check(ctx):
    """moatd -n: file:line: message per error and exit 1; bundled config exits 0."""
    bad = ctx.dir / "bad.conf"
    bad.write_text(BAD_CONF)
    r = subprocess.run([str(MOATD), "-n", "-f", str(bad)], capture_output=True, text=True,
                       timeout=15)
    out = r.stdout + r.stderr
    assert r.returncode == 1, f"moatd -n on a bad config: exit {r.returncode}\n{out}"
    lines = {int(m.group(1)) for m in re.finditer(rf"^{re.escape(str(bad))}:(\d+): \S", out, re.M)}
    assert lines == BAD_LINES, f"error lines {sorted(lines)}, want {sorted(BAD_LINES)}:\n{out}"

    for conf in (REPO / "etc" / "moat.conf",):
        r = subprocess.run([str(MOATD), "-n", "-f", str(conf)], capture_output=True, text=True,
                           timeout=15)
        assert r.returncode == 0, f"moatd -n {conf}: exit {r.returncode}\n{r.stdout}{r.stderr}"
        assert re.search(r"^listen\s*=\s*127\.0\.0\.1:2525", r.stdout, re.M), \
            f"moatd -n {conf} does not print listen = 127.0.0.1:2525:\n{r.stdout}"
        assert re.search(r"^smtpd_recipient_limit\s*=", r.stdout, re.M), \
            f"moatd -n does not print the defaults too:\n{r.stdout}"

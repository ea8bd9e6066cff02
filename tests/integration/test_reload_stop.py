"""
test_reload_stop.py: configuration reload (SIGHUP, moatctl reload) and the
graceful stop (SIGTERM, moatctl stop), under load.

- reload under load: while clients send 500 messages, one invalid and one
  valid configuration are loaded; every message gets 250 and is delivered,
  the invalid one is refused with file:line messages, the valid one moves
  relay_host to a second sink.
- stop under load: SIGTERM while clients send; moatd drains in order and
  exits 0; every message that got 250 is delivered after a restart on the
  same run_directory.  An idle session gets 421 4.3.2, one in DATA finishes
  its message first.
- moatctl reload/stop: refused to a non-admin, signal sent for root, pid
  file written and removed.
"""
import os
import re
import signal
import smtplib
import socket
import stat
import threading
import time

import moat_harness as h

LOOPBACK = h.LOOPBACK


def _conf_text(moat, **changes):
    """The moat's configuration with some settings changed."""
    conf = dict(moat.settings)
    conf.update({k: str(v) for k, v in changes.items()})
    return "".join(f"{k} = {v}\n" for k, v in conf.items())


def _write_conf(moat, text):
    tmp = moat.conf_path.with_suffix(".new")
    tmp.write_text(text)
    os.replace(tmp, moat.conf_path)


class _Senders:
    """Threads sending numbered messages; records which got 250 and which did not."""

    def __init__(self, moat, total, nthreads, stop_on_error=False):
        self.moat = moat
        self.total = total
        self.nthreads = nthreads
        self.stop_on_error = stop_on_error
        self.lock = threading.Lock()
        self.next = 0
        self.accepted = {}     # subject -> queue id
        self.failed = {}       # subject -> why
        self.threads = []

    def _take(self):
        with self.lock:
            if self.next >= self.total:
                return None
            self.next += 1
            return self.next

    def _send_one(self, n):
        subject = f"load-{n:04d}"
        data = h.make_message([("Subject", subject), ("From", "<a@client.test>"),
                               ("To", "<b@example.com>")],
                              [f"message {n}", "x" * 200])
        s = smtplib.SMTP(local_hostname="client.test", timeout=30)
        try:
            code, _ = s.connect(LOOPBACK, self.moat.port)
            if code != 220:
                raise AssertionError(f"greeting {code}")
            h.expect(s.ehlo("client.test"), 250, "EHLO")
            h.expect(s.docmd("MAIL FROM:<a@client.test>"), 250, "MAIL")
            h.expect(s.docmd("RCPT TO:<b@example.com>"), 250, "RCPT")
            h.expect(s.docmd("DATA"), 354, "DATA")
            s.send(h.dot_stuff(data))
            code, text = s.getreply()
            if code != 250:
                raise AssertionError(f"end of data: {code} {text!r}")
            m = h.QID_RE.search(text.decode(errors="replace"))
            if not m:
                raise AssertionError(f"no queue id in {text!r}")
            with self.lock:
                self.accepted[subject] = m.group(1)
            try:
                s.docmd("QUIT")
            except (OSError, smtplib.SMTPException):
                pass
        finally:
            s.close()

    def _run(self):
        while True:
            n = self._take()
            if n is None:
                return
            try:
                self._send_one(n)
            except Exception as e:   # recorded: the test looks at every failure
                with self.lock:
                    self.failed[f"load-{n:04d}"] = repr(e)
                if self.stop_on_error:
                    time.sleep(0.05)

    def start(self):
        for _ in range(self.nthreads):
            t = threading.Thread(target=self._run, daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def done(self):
        with self.lock:
            return len(self.accepted) + len(self.failed)

    def join(self, timeout):
        deadline = time.time() + timeout
        for t in self.threads:
            t.join(max(0.1, deadline - time.time()))
        if any(t.is_alive() for t in self.threads):
            raise AssertionError(f"senders still running after {timeout}s")


def _subjects(sink):
    out = {}
    for m in sink.messages():
        for v in m.header("Subject"):
            out.setdefault(v.strip(), 0)
            out[v.strip()] += 1
    return out


def test_reload_under_load(ctx):
    h.skip_unless_root()
    sink1 = ctx.sink(name="sink1")
    sink2 = ctx.sink(name="sink2")
    moat = ctx.moat(relay_host=sink1)
    pid_before = moat.proc.pid
    senders = _Senders(moat, 500, 6).start()

    h.wait_until(lambda: senders.done() >= 100, 120, "100 messages sent")
    # An invalid file: a bound broken and an unknown setting.
    bad = _conf_text(moat, smtpd_recipient_limit=0) + "no_such_setting = 1\n"
    _write_conf(moat, bad)
    # moatctl checks the file first and sends nothing ...
    r = moat.moatctl("reload")
    assert r.returncode == 1 and "not signalled" in r.stderr, \
        f"moatctl reload of a bad file: {r.returncode} {r.stdout}{r.stderr}"
    assert re.search(re.escape(str(moat.conf_path)) + r":\d+: ", r.stderr), r.stderr
    # ... and moatd, signalled directly, refuses it and goes on.
    moat.proc.send_signal(signal.SIGHUP)
    moat.wait_log(r"reload=refused errors=2 ", what="reload=refused errors=2")
    log = moat.log()
    conf = re.escape(str(moat.conf_path))
    assert re.search(conf + r":\d+: .*smtpd_recipient_limit", log), \
        "file:line error for smtpd_recipient_limit"
    assert re.search(conf + r":\d+: .*no_such_setting", log), "file:line error for no_such_setting"
    assert moat.proc.poll() is None and moat.proc.pid == pid_before, "moatd kept running"

    h.wait_until(lambda: senders.done() >= 250, 120, "250 messages sent")
    _write_conf(moat, _conf_text(moat, relay_host=f"[{LOOPBACK}]:{sink2.port}",
                                 listen=f"{LOOPBACK}:{h.free_port()}"))
    r = moat.moatctl("reload")
    assert r.returncode == 0 and "signal HUP sent" in r.stdout, f"{r.stdout}{r.stderr}"
    moat.wait_log(r"reload=ok config=" + conf, what="reload=ok")
    moat.wait_log(r"setting=listen needs a restart", what="listen needs a restart")
    moat.wait_log(r"event=reload status=ok relay_host=\[127\.0\.0\.1\]:%d" % sink2.port,
                  what="queue-manager took the new relay_host")
    moat.wait_log(r"every delivery agent runs the new configuration", timeout=60)

    senders.join(240)
    assert not senders.failed, f"{len(senders.failed)} not accepted: " \
        f"{list(senders.failed.items())[:5]}"
    assert len(senders.accepted) == 500, len(senders.accepted)
    # The old listen address still serves: a listen change needs a restart.
    assert h.listening(moat.port)

    # Mail sent now goes to the second sink.
    qid = moat.send("a@client.test", ["b@example.com"],
                    h.make_message([("Subject", "after-reload")], ["after"]))
    want = set(senders.accepted) | {"after-reload"}

    def all_delivered():
        got = set(_subjects(sink1)) | set(_subjects(sink2))
        return want <= got
    h.wait_until(all_delivered, 180, "all 501 messages at the sinks", interval=1)
    assert "after-reload" in _subjects(sink2), f"{qid} did not go to the new relay_host"
    assert "after-reload" not in _subjects(sink1)
    assert moat.proc.poll() is None
    ctx.note(f"sink1={len(_subjects(sink1))} sink2={len(_subjects(sink2))}")


test_reload_under_load.timeout = 420


def _reply(sock_file):
    """One whole SMTP reply from a socket file: (code, text)."""
    lines = []
    while True:
        line = sock_file.readline()
        if not line:
            raise AssertionError(f"connection closed after {lines!r}")
        lines.append(line.decode(errors="replace").rstrip("\r\n"))
        if len(line) >= 4 and line[3:4] == b" ":
            return int(line[:3]), "\n".join(lines)


def _client(moat):
    s = socket.create_connection((LOOPBACK, moat.port), timeout=30)
    f = s.makefile("rb")
    code, _ = _reply(f)
    assert code == 220
    return s, f


def test_stop_under_load(ctx):
    h.skip_unless_root()
    sink = h.Sink(ctx, name="sink")      # down while moat accepts: mail stays queued
    moat = ctx.moat(relay_host=f"[{LOOPBACK}]:{sink.port}", shutdown_timeout="20s")

    # An idle session and one in the middle of DATA when SIGTERM comes.
    idle, idle_f = _client(moat)
    idle.sendall(b"EHLO idle.test\r\n")
    assert _reply(idle_f)[0] == 250
    busy, busy_f = _client(moat)
    busy.sendall(b"EHLO busy.test\r\nMAIL FROM:<a@client.test>\r\n"
                 b"RCPT TO:<b@example.com>\r\n")
    for _ in range(3):
        assert _reply(busy_f)[0] == 250
    busy.sendall(b"DATA\r\n")
    assert _reply(busy_f)[0] == 354
    busy.sendall(b"Subject: in-data\r\n\r\nfirst half\r\n")

    senders = _Senders(moat, 400, 6, stop_on_error=True).start()
    h.wait_until(lambda: len(senders.accepted) >= 60, 120, "60 messages accepted")
    pidfile = moat.run_dir / "moatd.pid"
    assert pidfile.read_text().strip() == str(moat.proc.pid)
    assert stat.S_IMODE(pidfile.stat().st_mode) == 0o644
    r = moat.moatctl("stop")
    assert r.returncode == 0 and "signal TERM sent" in r.stdout, f"{r.stdout}{r.stderr}"

    # The idle session is told at once; the one in DATA may finish.
    code, text = _reply(idle_f)
    assert code == 421 and "4.3.2" in text, text
    time.sleep(0.5)
    busy.sendall(b"second half\r\n.\r\n")
    code, text = _reply(busy_f)
    assert code == 250, text
    busy_qid = h.QID_RE.search(text).group(1)
    code, text = _reply(busy_f)
    assert code == 421 and "4.3.2" in text, text
    idle.close()
    busy.close()

    moat.proc.wait(90)
    assert moat.proc.returncode == 0, f"moatd exit status {moat.proc.returncode}"
    senders.join(60)
    log = moat.log()
    order = [log.find("stopping=sessions"), log.find("stopping=agents"),
             log.find("stopping=queue-manager"), log.rfind(" stopped")]
    assert all(i >= 0 for i in order) and order == sorted(order), f"stop order {order}"
    assert "event=exit" in log, "queue-manager closed its database"
    assert not pidfile.exists(), "moatd.pid removed at exit"
    assert not h.listening(moat.port)

    # Restart on the same run_directory, with the sink up: all of it arrives.
    accepted = dict(senders.accepted)
    accepted["in-data"] = busy_qid
    sink.start()
    moat.proc = None
    moat.start()
    want = set(accepted)
    h.wait_until(lambda: want <= set(_subjects(sink)), 180,
                 f"{len(want)} accepted messages at the sink", interval=1)
    ctx.note(f"accepted={len(accepted)} refused_or_cut={len(senders.failed)}")


test_stop_under_load.timeout = 420


def test_moatctl_reload_stop_admin_only(ctx):
    h.skip_unless_root()
    moat = ctx.moat()
    r = moat.moatctl("reload", user="nobody", group="nogroup")
    assert r.returncode == 1, f"non-admin reload: {r.returncode} {r.stdout}{r.stderr}"
    assert "permission denied" in r.stderr, r.stderr
    r = moat.moatctl("stop", user="nobody", group="nogroup")
    assert r.returncode == 1 and "permission denied" in r.stderr, r.stderr
    assert "signal=HUP" not in moat.log(), "a refused moatctl sent no signal"
    r = moat.moatctl("reload")
    assert r.returncode == 0, f"{r.stdout}{r.stderr}"
    moat.wait_log(r"reload=ok config=", what="reload=ok")
    assert moat.proc.poll() is None

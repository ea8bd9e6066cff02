"""Invariant 1 across a power cut, and a disk that cannot sync.

The queue directory is a crashfs mount (crashfs.py): file contents reach
the backing directory only when fsync or fdatasync says so. Clients send
until enough 250s came back; then the "disk" stops (crashfs gets SIGKILL,
so whatever was not synced is gone), every moat process gets SIGKILL, the
backing directory becomes the queue directory, and moat starts again on
it. Every queue id a client was told must be in the queue: the
queue-manager may answer a session only after the WAL's fdatasync covering
its commit has returned (docs/queue.md), and nothing else makes data
durable here.

test_sync_failure_refuses_and_restarts makes every sync fail with EIO
(crashfs's fail flag): the message in progress must not get a 250, the
queue-manager must stop, and after moatd restarted it mail is accepted
again and the queue still holds the message from before.
"""
import os
import re
import signal
import smtplib
import subprocess
import threading
import time
from pathlib import Path

import moat_harness as h
from moat_harness import Skip, make_message, skip_unless_root, wait_until

CRASHFS = Path(__file__).with_name("crashfs.py")
PYTHON = "/usr/bin/python3"     # Debian's, with python3-fusepy


def _need_fuse():
    skip_unless_root()
    if not Path("/dev/fuse").exists():
        raise Skip("no /dev/fuse (FUSE is not available here)")
    r = subprocess.run([PYTHON, "-c", "import fusepy"], capture_output=True)
    if r.returncode != 0:
        raise Skip("python3-fusepy is not installed (bootstrap installs it)")


def _mount(ctx, moat, name, sync_seconds):
    """moat's queue directory as a crashfs mount over ctx.dir/name."""
    qdir = moat.run_dir / "queue"
    qdir.mkdir(parents=True)
    disk = ctx.dir / name
    disk.mkdir()
    log = ctx.dir / f"crashfs-{name}.log"
    with open(log, "wb") as f:
        fs = subprocess.Popen([PYTHON, str(CRASHFS), str(disk), str(qdir), str(sync_seconds)],
                              stdin=subprocess.DEVNULL, stdout=f, stderr=f)

    def unmount():
        if fs.poll() is None:
            fs.kill()
            fs.wait()
        subprocess.run(["umount", "-l", str(qdir)], capture_output=True)
    ctx.add_cleanup(unmount)
    wait_until(lambda: os.path.ismount(qdir) or fs.poll() is not None, 10, "crashfs to mount")
    assert fs.poll() is None, f"crashfs exited: {log.read_text()}"
    return qdir, disk, fs


def _client(moat, k, acked, lock, stop):
    n = 0
    while not stop.is_set():
        msg = make_message([("Subject", f"cut {k}.{n}")], [f"power cut test {k}.{n}"])
        try:
            qid = moat.send(f"cut{k}@company.org", [f"r{k}.{n}@company.com"], msg)
        except (smtplib.SMTPException, OSError, AssertionError):
            return              # the cut: refused, or the session died
        with lock:
            acked.append(qid)
        n += 1


def _one_cut(ctx, n):
    """One moat on a crashfs queue, cut under load, started again; a note."""
    # Nothing listens on the relay port: deliveries defer, mail stays queued.
    moat = ctx.moat(name=f"moat{n}", relay_host=f"[{h.LOOPBACK}]:{h.free_port()}",
                    start=False)
    # Syncs of 20 ms: a cut then often falls between a write and its sync.
    qdir, disk, fs = _mount(ctx, moat, f"disk{n}", 0.02)
    moat.start(timeout=30)

    acked, lock, stop = [], threading.Lock(), threading.Event()
    threads = [threading.Thread(target=_client, args=(moat, k, acked, lock, stop), daemon=True)
               for k in range(4)]
    for t in threads:
        t.start()
    wait_until(lambda: len(acked) >= 60, 120, "60 messages answered 250")

    # The power cut: the disk first, then every process at once.
    fs.kill()
    fs.wait()
    pids = [p.pid for p in moat.processes()] + h.processes_mentioning(str(moat.dir))
    moat.proc.kill()
    for pid in pids:
        h.kill_quietly(pid, signal.SIGKILL)
    moat.proc.wait(10)
    moat.proc = None
    wait_until(lambda: not any(h.pid_alive(pid) for pid in pids), 15,
               "every moat process to be gone")
    stop.set()
    for t in threads:
        t.join(30)
    subprocess.run(["umount", "-l", str(qdir)], check=True)
    with lock:
        told = set(acked)

    # The machine comes back with what the disk held.
    qdir.rmdir()
    disk.rename(qdir)
    for side in qdir.glob("*.crashfs-sync"):     # a sync the cut interrupted
        side.unlink()
    r = subprocess.run(["sqlite3", str(qdir / "queue.db"), "PRAGMA integrity_check"],
                       capture_output=True, text=True)
    assert r.stdout.strip() == "ok", f"integrity_check after the cut: {r.stdout}{r.stderr}"
    before = len(moat.log())
    moat.start(timeout=30)
    rx = re.compile(r"queue-manager\[\d+\]: event=start incoming_deleted=(\d+)")
    line = wait_until(lambda: rx.search(moat.log()[before:]), 30,
                      "the queue-manager's recovery after the cut")
    queued = moat.queue_ids()
    lost = sorted(told - queued)
    assert not lost, f"cut {n}: {len(lost)} of {len(told)} messages answered 250 are " \
                     f"gone after the power cut: {lost[:10]}"
    moat.stop()
    return (f"cut {n}: {len(told)} messages answered 250 before it, all queued after it; "
            f"{len(queued - told)} more committed without their 250; "
            f"recovery: incoming_deleted={line.group(1)}")


def test_power_cut_keeps_every_250(ctx):
    """Cut the disk and kill -9 everything under load, three times: no 250 is lost."""
    _need_fuse()
    ctx.note("\n".join(_one_cut(ctx, n) for n in range(3)))


test_power_cut_keeps_every_250.timeout = 240


def _end_of_data(moat, subject):
    """One transaction; the reply code to the end of data (0: cut off)."""
    try:
        s = moat.smtp()
    except (OSError, AssertionError) as e:     # 421 while the queue-manager restarts
        return 0, str(e)
    try:
        s.ehlo("client.test")
        s.mail("sync@company.org")
        s.rcpt("rcpt@company.com")
        code, text = s.data(make_message([("Subject", subject)], ["sync failure test"]))
        return code, text.decode(errors="replace")
    except (smtplib.SMTPException, OSError) as e:
        return getattr(e, "smtp_code", 0), str(e)
    finally:
        try:
            s.close()
        except OSError:
            pass


def test_sync_failure_refuses_and_restarts(ctx):
    """A failed fdatasync of the WAL: 451, the queue-manager starts afresh, nothing lost."""
    _need_fuse()
    moat = ctx.moat(relay_host=f"[{h.LOOPBACK}]:{h.free_port()}", start=False)
    qdir, disk, fs = _mount(ctx, moat, "disk", 0)
    moat.start(timeout=30)
    first = moat.send("sync@company.org", ["rcpt@company.com"],
                      make_message([("Subject", "before")], ["before the failure"]))

    fail = Path(str(disk) + ".fail-syncs")
    fail.touch()
    code, text = _end_of_data(moat, "during")
    assert code != 250, f"a message was answered 250 while every sync failed: {text}"
    assert code == 0 or 400 <= code < 500, f"during the failure: {code} {text}"
    moat.wait_log(r"queue-manager\[\d+\]: fatal: queue database: fdatasync of the WAL "
                  r"failed: Input/output error", what="the queue-manager to stop on EIO")
    fail.unlink()

    # moatd starts a new queue-manager; mail is accepted again.
    got = []

    def accepted():
        c, t = _end_of_data(moat, "after")
        m = h.QID_RE.search(t) if c == 250 else None
        if m:
            got.append(m.group(1) if m.groups() else m.group(0))
        return bool(m)
    wait_until(accepted, 30, "mail to be accepted again after the failure")
    queued = moat.queue_ids()
    assert first in queued and got[0] in queued, \
        f"queue after the failure: {sorted(queued)}, want {first} and {got[0]}"
    ctx.note(f"before: {first} 250; during: {code} {text.strip()[:60]}; after: {got[0]} 250; "
             f"both queued")


test_sync_failure_refuses_and_restarts.timeout = 120


def test_session_killed_while_syncing(ctx):
    """A session that dies between its commit and the sync: the message stays."""
    _need_fuse()
    moat = ctx.moat(relay_host=f"[{h.LOOPBACK}]:{h.free_port()}", start=False)
    _mount(ctx, moat, "disk", 1.0)          # each sync takes 1 s
    moat.start(timeout=60)
    c = h.RawClient(moat.port, timeout=60)  # the file system waits during syncs
    ctx.add_cleanup(c.close)
    assert c.reply()[0] == 220
    c.send("EHLO client.test\r\n")
    assert c.reply()[0] == 250
    session = moat.wait_role("session").pid
    for cmd, want in (("MAIL FROM:<gone@company.org>", 250), ("RCPT TO:<r@company.com>", 250),
                      ("DATA", 354)):
        c.send(cmd + "\r\n")
        code, texts = c.reply()
        assert code == want, f"{cmd}: {code} {texts}"
    before = len(moat.log())
    c.send("Subject: gone\r\n\r\nthe session dies before its 250\r\n.\r\n")
    # Committed, waiting for the slow sync: the session is killed now.
    wait_until(lambda: "event=commit waiting=1" in moat.log()[before:], 30, "the group commit")
    h.kill_quietly(session, signal.SIGKILL)
    rx = re.compile(r"id=([0-9A-F]{16}) client=\S+ status=queued \(the session went away "
                    r"before its 250\)")
    line = wait_until(lambda: rx.search(moat.log()[before:]), 30,
                      "the message kept after its session died")
    qid = line.group(1)
    wait_until(lambda: qid in moat.queue_ids(), 30, f"{qid} in the queue")
    ctx.note(f"{qid}: committed, its session killed before the sync returned; kept queued")


test_session_killed_while_syncing.timeout = 120

#!/usr/bin/env python3
"""
bench.py: moat and Postfix side by side on loopback, same load, same sink.

Started by bench/run (which installs what is missing, unpacks Postfix and
builds moat); see docs/performance.md for the method and the figures.

For each scenario (message size, recipients, new connection per message or
not) and each repetition, each MTA gets Postfix's smtp-source (-s 20 -m N)
relaying to Postfix's smtp-sink, and we measure:

  accepted msg/s    N / wall time of smtp-source
  end-to-end msg/s  N / time until the sink has every message and the MTA's
                    queue is empty
  CPU s/1000 msgs   busy jiffies of the whole machine (/proc/stat) over the
                    end-to-end interval, per 1000 messages; steal (time a
                    hypervisor gave to other machines) is not CPU used
                    here and is shown on its own line
  latency p50/p99   MAIL to the final 250, from our own asyncio client
                    running a fixed number of transactions afterwards
  CPU of the MTA    utime+stime of the MTA's own processes (live ones by
                    process name, reaped ones as "exited children")
  peak RSS / PSS    sum of VmRSS (shared pages counted in every process)
                    and of PSS (shared pages divided) over the MTA's
                    process tree, sampled every 0.25 s

Every run checks that the sink got exactly the messages it was sent; a
shortfall or an excess is reported as LOSS/EXCESS and the exit status is 1.
Everything started here is stopped and every temporary directory removed,
also on Ctrl-C.
"""
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def env_int(name, default):
    v = os.environ.get(name, "")
    try:
        return int(v) if v else default
    except ValueError:
        sys.exit(f"bench: {name}={v!r} is not a number")


BUILD = Path(os.environ.get("BENCH_BUILD", REPO / "build-bench"))
PF_ROOT = Path(os.environ.get("BENCH_POSTFIX_ROOT", REPO / ".tools" / "postfix"))
PF_SBIN = PF_ROOT / "usr" / "sbin"
PF_DAEMONS = PF_ROOT / "usr" / "lib" / "postfix" / "sbin"
PF_LIBS = PF_ROOT / "usr" / "lib" / "postfix"
TMPBASE = os.environ.get("BENCH_TMPDIR", "/var/tmp")   # on disk, not tmpfs

MESSAGES = env_int("BENCH_MESSAGES", 5000)
REPS = env_int("BENCH_REPS", 3)
SESSIONS = env_int("BENCH_SESSIONS", 20)
LAT_TX = env_int("BENCH_LATENCY_TX", 200)
LAT_CLIENTS = env_int("BENCH_LATENCY_CLIENTS", 4)
# Relay agents for moat: Postfix's default_destination_concurrency_limit is
# 20, so Postfix opens at most 20 connections to the one relayhost; moat
# gets as many delivery agents, and 20 matches the 20 incoming sessions.
DELIVERY_AGENTS = env_int("BENCH_DELIVERY_AGENTS", 20)
STALL_SECONDS = env_int("BENCH_STALL_SECONDS", 60)
MTAS = [m for m in os.environ.get("BENCH_MTAS", "moat,postfix").split(",") if m]
DEFAULT_SCENARIOS = ("1k/1/new,1k/1/reuse,1k/10/new,1k/10/reuse,"
                     "100k/1/new,100k/1/reuse,100k/10/new,100k/10/reuse")
SCENARIOS = os.environ.get("BENCH_SCENARIOS", DEFAULT_SCENARIOS)
# BENCH_TLS=1: both MTAs offer STARTTLS with one generated RSA certificate
# (smtp-source never uses it): what a server with TLS configured costs
# for clients in clear; moat then runs smtpd-session, with OpenSSL, and
# its keyholder, instead of smtpd-session-plain.
TLS = os.environ.get("BENCH_TLS", "") not in ("", "0")
TLS_FILES = {}      # "cert", "key": paths, made by make_certificate()

LOOPBACK = "127.0.0.1"
SENDER = "sender@example.test"
RCPT = "rcpt@example.test"
PF_USER = "moat-bench-pf"
PF_GROUP = "postdrop"
HZ = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def say(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- scenarios

class Scenario:
    def __init__(self, text):
        try:
            size, rcpts, conn = text.strip().lower().split("/")
            self.size = int(size[:-1]) * 1024 if size.endswith("k") else int(size)
            self.rcpts = int(rcpts)
            if conn not in ("new", "reuse"):
                raise ValueError
            self.reuse = conn == "reuse"
        except ValueError:
            sys.exit(f"bench: bad scenario {text!r} (want SIZE/RCPTS/new|reuse, e.g. 1k/1/new)")
        self.key = text.strip().lower()

    def title(self):
        size = f"{self.size // 1024} KB" if self.size % 1024 == 0 else f"{self.size} B"
        conn = "one connection per session (-d)" if self.reuse else "new connection per message"
        r = "recipient" if self.rcpts == 1 else "recipients"
        return f"{size}, {self.rcpts} {r}, {conn}"


# ---------------------------------------------------------------- cleanup

class Cleanup:
    """Callables run last-in first-out, whatever happened."""

    def __init__(self):
        self.items = []

    def add(self, fn):
        self.items.append(fn)
        return fn

    def remove(self, fn):
        if fn in self.items:
            self.items.remove(fn)

    def run(self):
        while self.items:
            fn = self.items.pop()
            try:
                fn()
            except Exception as e:          # keep cleaning up
                say(f"cleanup: {e}")


CLEANUP = Cleanup()


def on_signal(signum, frame):
    raise KeyboardInterrupt


# ---------------------------------------------------------------- /proc

def children(pid):
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out.extend(int(x) for x in f.read().split())
    except OSError:
        pass
    return out


def tree(root):
    """root and every descendant (pids)."""
    out, pending = [], [root]
    while pending:
        pid = pending.pop()
        out.append(pid)
        pending.extend(children(pid))
    return out


def proc_stat(pid):
    """(comm, utime+stime, cutime+cstime) in ticks, or None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    comm = s[s.index("(") + 1:s.rindex(")")]
    f = s[s.rindex(")") + 2:].split()
    # fields after comm start at index 3 (state); utime is field 14
    return comm, int(f[11]) + int(f[12]), int(f[13]) + int(f[14])


def rss_bytes(pid):
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


def pss_bytes(pid):
    """Proportional set size: shared pages divided among their users."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, IndexError, ValueError):
        pass
    return 0


def machine_ticks():
    """(busy, steal) jiffies of the whole machine since boot."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal: idle and iowait are
    # idle; steal is time the hypervisor gave to someone else while this
    # machine wanted to run, so it is no CPU that anything here used.
    return v[0] + v[1] + v[2] + v[5] + v[6], (v[7] if len(v) > 7 else 0)


def listening(port):
    want = "0100007F:%04X" % port
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            return any(l.split()[1] == want and l.split()[3] == "0A" for l in f)
    except OSError:
        return False


def offers_starttls(port):
    """Does the server on port list STARTTLS in its EHLO reply?"""
    import smtplib
    with smtplib.SMTP(LOOPBACK, port, local_hostname="bench.test", timeout=10) as c:
        c.ehlo()
        return c.has_extn("starttls")


def free_port():
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def wait_until(pred, timeout, what, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def stop_process(p, timeout=10, tree_too=True):
    """SIGTERM a Popen (and, after, SIGKILL whatever of its tree is left)."""
    if p is None or p.poll() is not None:
        return
    pids = tree(p.pid) if tree_too else [p.pid]
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(5)
    for pid in pids[1:]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# ---------------------------------------------------------------- sampler

class Sampler(threading.Thread):
    """Peak summed RSS and PSS of a process tree, sampled every 0.25 s."""

    def __init__(self, root):
        super().__init__(daemon=True)
        self.root = root
        self.peak_rss = self.peak_pss = 0
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            pids = tree(self.root)
            self.peak_rss = max(self.peak_rss, sum(rss_bytes(p) for p in pids))
            self.peak_pss = max(self.peak_pss, sum(pss_bytes(p) for p in pids))
            self.halt.wait(0.25)

    def stop(self):
        self.halt.set()
        self.join(5)
        return self.peak_rss, self.peak_pss


def cpu_snapshot(root):
    """{pid: (comm, ticks)} for the tree, and root's reaped-children ticks."""
    snap, reaped = {}, 0
    for pid in tree(root):
        st = proc_stat(pid)
        if st is None:
            continue
        snap[pid] = (st[0], st[1])
        if pid == root:
            reaped = st[2]
    return snap, reaped


def cpu_split(before, after, nmsgs):
    """CPU seconds per 1000 messages by command name over an interval."""
    b, b_reaped = before
    a, a_reaped = after
    split = {}
    for pid, (comm, ticks) in a.items():
        prev = b.get(pid)
        d = ticks - (prev[1] if prev and prev[0] == comm else 0)
        split[comm] = split.get(comm, 0) + d
    # A reaped child's whole life is in its parent's cutime: take off what
    # the ones already alive at the start had used before it.
    gone = sum(ticks for pid, (comm, ticks) in b.items() if pid not in a)
    split["(exited children)"] = a_reaped - b_reaped - gone
    return {k: v / HZ / nmsgs * 1000 for k, v in split.items() if v > 0}


# ---------------------------------------------------------------- sink

class Sink:
    """Postfix's smtp-sink with running counters (-c) on a fixed port."""

    def __init__(self, workdir, port, env):
        self.workdir, self.port, self.env = workdir, port, env
        self.proc = None
        self.out = workdir / f"sink-{port}.out"

    def start(self):
        cmd = [str(PF_SBIN / "smtp-sink"), "-c"]
        if os.geteuid() == 0:
            cmd += ["-u", "nobody"]
        cmd += [f"{LOOPBACK}:{self.port}", "256"]
        with open(self.out, "wb") as out:
            self.proc = subprocess.Popen(cmd, env=self.env, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        CLEANUP.add(self.stop)
        wait_until(lambda: self.proc.poll() is not None or listening(self.port), 10,
                   f"smtp-sink on port {self.port}")
        if self.proc.poll() is not None:
            raise RuntimeError(f"smtp-sink exited: {self.out.read_bytes()[-500:]!r}")

    def count(self):
        """Messages completed so far (the last 'mesg=N' counter)."""
        try:
            with open(self.out, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 200))
                tailb = f.read()
        except OSError:
            return 0
        i = tailb.rfind(b"mesg=")
        if i < 0:
            return 0
        digits = tailb[i + 5:].split(b"\r")[0].split()[0] if tailb[i + 5:].strip() else b""
        return int(digits) if digits.isdigit() else 0

    def stop(self):
        CLEANUP.remove(self.stop)
        stop_process(self.proc, tree_too=False)
        try:
            self.out.unlink()
        except OSError:
            pass


# ---------------------------------------------------------------- the MTAs

class Moat:
    name = "moat"

    def __init__(self, workdir, pfenv, generation=0):
        self.dir = workdir / f"moat.{generation}"
        self.dir.mkdir()
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.sink_port = free_port()
        self.run_dir = self.dir / "run"
        self.conf = self.dir / "moat.conf"
        self.log = self.dir / "moatd.log"
        self.proc = self.logger = None
        self.has_count = None       # does moatctl know queue --count?
        self.conf.write_text(
            f"run_directory = {self.run_dir}\n"
            f"listen = {LOOPBACK}:{self.port}\n"
            "myhostname = moat.bench.test\n"
            "relay_domains = example.test\n"
            "relay_networks = 127.0.0.0/8\n"
            f"relay_host = [{LOOPBACK}]:{self.sink_port}\n"
            f"delivery_agents = {DELIVERY_AGENTS}\n"
            "smtpd_max_sessions = 200\n"
            "smtpd_client_limit = 200\n")
        if TLS:
            with open(self.conf, "a") as f:
                f.write(f"smtpd_tls_cert_files = {TLS_FILES['cert']}\n"
                        f"smtpd_tls_key_files = {TLS_FILES['key']}\n")

    def start(self):
        libexec = self.dir / "libexec"
        libexec.mkdir()
        for prog, target in (("smtpd-session", BUILD / "smtpd-session" / "smtpd-session"),
                             ("smtpd-session-plain",
                              BUILD / "smtpd-session" / "smtpd-session-plain"),
                             ("queue-manager", BUILD / "queue-manager" / "queue-manager"),
                             ("delivery-agent", BUILD / "delivery-agent" / "delivery-agent"),
                             ("keyholder", BUILD / "keyholder" / "keyholder")):
            if not target.exists():
                raise RuntimeError(f"{target} missing: build moat first (bench/run does)")
            (libexec / prog).symlink_to(target)
        # Log through a pipe: children may have RLIMIT_FSIZE 0.
        with open(self.log, "ab") as log:
            self.logger = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=log,
                                           start_new_session=True)
        self.proc = subprocess.Popen(
            [str(BUILD / "listener" / "moatd"), "-f", str(self.conf), "-L", str(libexec)],
            stdin=subprocess.DEVNULL, stdout=self.logger.stdin, stderr=self.logger.stdin,
            cwd=self.dir, start_new_session=True)
        self.logger.stdin.close()
        CLEANUP.add(self.stop)

        def up():
            if self.proc.poll() is not None:
                raise RuntimeError(f"moatd exited ({self.proc.returncode}):\n"
                                   + self.log.read_text(errors="replace")[-2000:])
            return listening(self.port) and self.queue_empty()
        wait_until(up, 20, "moatd to listen and answer moatctl")

    def moatctl_queue(self, *args):
        try:
            return subprocess.run([str(BUILD / "moatctl" / "moatctl"), "-S",
                                   str(self.run_dir / "control.sock"), "queue", *args],
                                  stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  timeout=10)
        except subprocess.TimeoutExpired:
            return None

    def queue_empty(self):
        """moatctl queue --count says 0 (older moatctl: "Queue is empty")."""
        if self.has_count is not False:
            r = self.moatctl_queue("--count")
            if r is not None and r.returncode == 0 and r.stdout.strip().isdigit():
                self.has_count = True
                return r.stdout.strip() == "0"
            if self.has_count:
                return False
            self.has_count = False
        r = self.moatctl_queue()
        return r is not None and r.returncode == 0 and "Queue is empty" in r.stdout

    def root_pid(self):
        return self.proc.pid

    def stop(self):
        CLEANUP.remove(self.stop)
        stop_process(self.proc)
        if self.logger is not None:
            try:
                self.logger.wait(5)
            except subprocess.TimeoutExpired:
                self.logger.kill()


class Postfix:
    name = "postfix"

    def __init__(self, workdir, pfenv, generation=0):
        self.dir = workdir / f"postfix.{generation}"
        self.conf_dir = self.dir / "conf"
        self.queue = self.dir / "queue"
        self.data = self.dir / "data"
        for d in (self.dir, self.conf_dir):
            d.mkdir()
            os.chmod(d, 0o755)
        self.env = pfenv
        self.port = free_port()
        self.sink_port = free_port()
        self.proc = None
        self.make_dirs()
        (self.conf_dir / "dynamicmaps.cf").write_text("")
        (self.conf_dir / "main.cf").write_text(f"""\
compatibility_level = 3.6
daemon_directory = {PF_DAEMONS}
shlib_directory = {PF_LIBS}
command_directory = {PF_SBIN}
meta_directory = {self.conf_dir}
queue_directory = {self.queue}
data_directory = {self.data}
mail_owner = {PF_USER}
setgid_group = {PF_GROUP}
import_environment = MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C LD_LIBRARY_PATH POSTLOG_SERVICE POSTLOG_HOSTNAME
maillog_file = {self.dir}/maillog
myhostname = postfix.bench.test
mydomain = bench.test
myorigin = $myhostname
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = {LOOPBACK}
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains = example.test
relayhost = [{LOOPBACK}]:{self.sink_port}
smtp_dns_support_level = disabled
biff = no
""")
        if TLS:
            with open(self.conf_dir / "main.cf", "a") as f:
                f.write(f"smtpd_tls_security_level = may\n"
                        f"smtpd_tls_cert_file = {TLS_FILES['cert']}\n"
                        f"smtpd_tls_key_file = {TLS_FILES['key']}\n")
        (self.conf_dir / "master.cf").write_text(f"""\
{LOOPBACK}:{self.port} inet n - n - - smtpd
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
tlsmgr    unix  - - n 1000? 1 tlsmgr
""")

    def make_dirs(self):
        """The queue layout of Postfix's postfix-files, owned as it wants."""
        import grp
        import pwd
        uid = pwd.getpwnam(PF_USER).pw_uid
        gid = pwd.getpwnam(PF_USER).pw_gid
        pd = grp.getgrnam(PF_GROUP).gr_gid
        self.queue.mkdir(mode=0o755)
        os.chmod(self.queue, 0o755)
        (self.queue / "pid").mkdir(mode=0o755)
        for d in ("active", "bounce", "corrupt", "defer", "deferred", "flush", "hold",
                  "incoming", "private", "saved", "trace"):
            p = self.queue / d
            p.mkdir(mode=0o700)
            os.chown(p, uid, gid)
        p = self.queue / "public"
        p.mkdir()
        os.chown(p, uid, pd)
        os.chmod(p, 0o710)
        p = self.queue / "maildrop"
        p.mkdir()
        os.chown(p, uid, pd)
        os.chmod(p, 0o1730)
        self.data.mkdir(mode=0o700)
        os.chown(self.data, uid, gid)

    def start(self):
        self.proc = subprocess.Popen(
            [str(PF_DAEMONS / "master"), "-c", str(self.conf_dir), "-d"],
            env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(self.dir / "master.err", "wb"), start_new_session=True)
        CLEANUP.add(self.stop)

        def up():
            if self.proc.poll() is not None:
                raise RuntimeError(f"postfix master exited ({self.proc.returncode}):\n"
                                   + (self.dir / "master.err").read_text(errors="replace")
                                   + self.maillog_tail())
            return listening(self.port)
        wait_until(up, 20, "postfix to listen")

    def maillog_tail(self):
        try:
            return (self.dir / "maillog").read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def queue_empty(self):
        for d in ("incoming", "active", "deferred", "hold", "maildrop"):
            for _, _, files in os.walk(self.queue / d):
                if files:
                    return False
        return True

    def root_pid(self):
        return self.proc.pid

    def stop(self):
        CLEANUP.remove(self.stop)
        stop_process(self.proc, timeout=15)


# ---------------------------------------------------------------- latency

def message_body(size, tag):
    """Headers plus about size bytes of 76-column text, dot-terminated."""
    head = (f"From: <{SENDER}>\r\nTo: <{RCPT}>\r\nSubject: bench {tag}\r\n"
            f"Message-ID: <{tag}@bench.test>\r\n\r\n").encode()
    line = b"x" * 76 + b"\r\n"
    body = line * (size // len(line)) + b"y" * (size % len(line)) + b"\r\n"
    return head + body + b".\r\n"


async def read_reply(r):
    while True:
        line = await r.readline()
        if not line:
            raise ConnectionError("server closed the connection")
        if len(line) < 4 or line[3:4] != b"-":
            return int(line[:3]), line.decode(errors="replace").strip()


async def expect(r, code, what):
    got, text = await read_reply(r)
    if got != code:
        raise RuntimeError(f"{what}: expected {code}, got {text!r}")


async def lat_worker(port, count, sc, wid, samples):
    r = w = None
    for i in range(count):
        if w is None:
            r, w = await asyncio.open_connection(LOOPBACK, port)
            await expect(r, 220, "greeting")
            w.write(b"EHLO latency.bench.test\r\n")
            await expect(r, 250, "EHLO")
        data = message_body(sc.size, f"lat{wid}.{i}")
        t0 = time.perf_counter()
        w.write(f"MAIL FROM:<{SENDER}>\r\n".encode())
        await expect(r, 250, "MAIL")
        for k in range(sc.rcpts):
            w.write(f"RCPT TO:<{k}{RCPT}>\r\n".encode())
            await expect(r, 250, "RCPT")
        w.write(b"DATA\r\n")
        await expect(r, 354, "DATA")
        w.write(data)
        await expect(r, 250, "end of data")
        samples.append(time.perf_counter() - t0)
        if not sc.reuse:
            w.write(b"QUIT\r\n")
            await expect(r, 221, "QUIT")
            w.close()
            await w.wait_closed()
            r = w = None
    if w is not None:
        w.write(b"QUIT\r\n")
        await expect(r, 221, "QUIT")
        w.close()
        await w.wait_closed()


def latency(port, sc):
    samples = []
    per = [LAT_TX // LAT_CLIENTS + (1 if i < LAT_TX % LAT_CLIENTS else 0)
           for i in range(LAT_CLIENTS)]

    async def main():
        await asyncio.wait_for(
            asyncio.gather(*(lat_worker(port, n, sc, i, samples) for i, n in enumerate(per))),
            timeout=300)
    asyncio.run(main())
    samples.sort()

    def pct(p):
        return samples[min(len(samples) - 1, int(round(p / 100 * (len(samples) - 1))))]
    return pct(50) * 1000, pct(99) * 1000


# ---------------------------------------------------------------- one run

class Loss(Exception):
    pass


def wait_delivered(mta, sink, expected, what):
    """Block until the sink has expected messages and the queue is empty.

    Returns the monotonic time it happened; raises Loss when nothing moves
    for STALL_SECONDS."""
    last, last_change = -1, time.monotonic()
    while True:
        n = sink.count()
        now = time.monotonic()
        if n != last:
            last, last_change = n, now
        if n >= expected and mta.queue_empty():
            return now
        if now - last_change > STALL_SECONDS:
            raise Loss(f"{mta.name}: {what}: sink has {n} of {expected} messages and "
                       f"nothing moved for {STALL_SECONDS} s (queue empty: {mta.queue_empty()})")
        time.sleep(0.02 if n < expected else 0.05)


def one_run(mta, sc, workdir, pfenv):
    sink = Sink(workdir, mta.sink_port, pfenv)
    sink.start()
    sampler = None
    try:
        cmd = [str(PF_SBIN / "smtp-source"), "-s", str(SESSIONS), "-m", str(MESSAGES),
               "-l", str(sc.size), "-r", str(sc.rcpts), "-f", SENDER, "-t", RCPT,
               "-M", "source.bench.test"]
        if sc.reuse:
            cmd.append("-d")
        cmd.append(f"{LOOPBACK}:{mta.port}")
        sampler = Sampler(mta.root_pid())
        sampler.start()
        CLEANUP.add(sampler.stop)
        cpu_before = cpu_snapshot(mta.root_pid())
        busy0, steal0 = machine_ticks()
        t0 = time.monotonic()
        src = subprocess.run(cmd, env=pfenv, stdin=subprocess.DEVNULL, capture_output=True,
                             timeout=3600)
        t_acc = time.monotonic()
        if src.returncode != 0:
            raise Loss(f"{mta.name}: smtp-source failed ({src.returncode}): "
                       f"{src.stderr.decode(errors='replace')[-500:]}")
        t_e2e = wait_delivered(mta, sink, MESSAGES, "throughput phase")
        busy1, steal1 = machine_ticks()
        cpu_after = cpu_snapshot(mta.root_pid())
        split = cpu_split(cpu_before, cpu_after, MESSAGES)
        try:
            p50, p99 = latency(mta.port, sc)
        except (OSError, RuntimeError, asyncio.TimeoutError) as e:
            raise Loss(f"{mta.name}: latency client: {e}") from None
        expected = MESSAGES + LAT_TX
        wait_delivered(mta, sink, expected, "latency phase")
        CLEANUP.remove(sampler.stop)
        peak_rss, peak_pss = sampler.stop()
        time.sleep(0.5)             # a late duplicate would show up now
        got = sink.count()
        if got != expected:
            raise Loss(f"{mta.name}: sink received {got} messages, expected {expected}"
                       + (" (EXCESS: duplicates or split transactions)" if got > expected
                          else " (LOSS)"))
        return {
            "accepted": MESSAGES / (t_acc - t0),
            "e2e": MESSAGES / (t_e2e - t0),
            "cpu": (busy1 - busy0) / HZ / MESSAGES * 1000,
            "busy": (busy1 - busy0) / HZ / (t_e2e - t0) / os.cpu_count() * 100,
            "steal": (steal1 - steal0) / HZ / (t_e2e - t0) / os.cpu_count() * 100,
            "p50": p50,
            "p99": p99,
            "rss": peak_rss / (1024 * 1024),
            "pss": peak_pss / (1024 * 1024),
            "own_cpu": sum(split.values()),
            "split": split,
        }
    finally:
        if sampler is not None and sampler.is_alive():
            CLEANUP.remove(sampler.stop)
            sampler.stop()
        sink.stop()


# ---------------------------------------------------------------- report

METRICS = [
    ("accepted", "accepted msg/s", "{:.0f}"),
    ("e2e", "end-to-end msg/s", "{:.0f}"),
    ("cpu", "CPU s per 1000 msgs (whole machine)", "{:.2f}"),
    ("own_cpu", "CPU s per 1000 msgs (MTA's processes)", "{:.2f}"),
    ("busy", "machine busy % (all CPUs, end-to-end interval)", "{:.0f}"),
    ("steal", "hypervisor steal % (all CPUs, same interval; in no CPU figure)", "{:.0f}"),
    ("p50", "latency p50 ms (MAIL..250)", "{:.1f}"),
    ("p99", "latency p99 ms (MAIL..250)", "{:.1f}"),
    ("rss", "peak RSS MiB (sum over process tree)", "{:.1f}"),
    ("pss", "peak PSS MiB (sum over process tree)", "{:.1f}"),
]


def summarize(vals, fmt):
    if not vals:
        return "—"
    med = statistics.median(vals)
    if len(vals) == 1:
        return fmt.format(med)
    return f"{fmt.format(med)} ({fmt.format(min(vals))}–{fmt.format(max(vals))})"


def report(results, scenarios, machine):
    out = [machine + "\n"]
    out.append(f"{MESSAGES} messages per run, smtp-source -s {SESSIONS}, {REPS} repetition(s): "
               "median (min–max); latency from "
               f"{LAT_TX} transactions over {LAT_CLIENTS} connections\n")
    for sc in scenarios:
        out.append(f"### {sc.title()}  (`{sc.key}`)\n")
        out.append("| figure | moat | Postfix | moat/Postfix |")
        out.append("|---|---|---|---|")
        for key, label, fmt in METRICS:
            m = [r[key] for r in results.get(("moat", sc.key), [])]
            p = [r[key] for r in results.get(("postfix", sc.key), [])]
            ratio = (f"{statistics.median(m) / statistics.median(p):.2f}"
                     if m and p and statistics.median(p) else "—")
            out.append(f"| {label} | {summarize(m, fmt)} | {summarize(p, fmt)} | {ratio} |")
        for mta in ("moat", "postfix"):
            runs = results.get((mta, sc.key), [])
            if not runs:
                continue
            split = runs[len(runs) // 2]["split"]
            parts = ", ".join(f"{k} {v:.2f}" for k, v in
                              sorted(split.items(), key=lambda kv: -kv[1]))
            out.append(f"\nCPU split, {mta} (s per 1000 msgs, its own processes, "
                       f"one run): {parts}")
        out.append("")
    return "\n".join(out)


# ---------------------------------------------------------------- machine

def first_line(path, prefix):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(prefix):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def machine_description(pfenv):
    """What the figures were measured on, and how busy it was already."""
    (b0, s0), t0 = machine_ticks(), time.monotonic()
    time.sleep(2)
    (b1, s1), dt = machine_ticks(), time.monotonic() - t0
    busy = (b1 - b0) / HZ / dt / os.cpu_count()
    steal = (s1 - s0) / HZ / dt / os.cpu_count()
    disk = subprocess.run(["df", "--output=source,fstype", TMPBASE], capture_output=True,
                          text=True).stdout.split("\n")[1:2]
    disk = " ".join(" ".join(disk).split()) or "?"
    try:
        version = subprocess.run([str(PF_SBIN / "postconf"), "-d", "-h", "mail_version"],
                                 env=pfenv, capture_output=True, text=True,
                                 timeout=10).stdout.strip() or "?"
    except (OSError, subprocess.TimeoutExpired):
        version = "?"
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, timeout=10).stdout.strip()
    except OSError:
        commit = "?"
    return (f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {os.cpu_count()} CPUs "
            f"({first_line('/proc/cpuinfo', 'model name')}); kernel {os.uname().release}; "
            f"queues on {disk} ({TMPBASE}); Postfix {version}; "
            f"moat {commit or '?'} ({BUILD}); machine {busy * 100:.0f}% busy and "
            f"{steal * 100:.0f}% stolen by the hypervisor before the run")


def make_certificate(workdir):
    """A self-signed RSA certificate and key for BENCH_TLS, readable by root."""
    d = workdir / "tls"
    d.mkdir()
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "2",
                    "-subj", "/CN=bench.test", "-addext", "subjectAltName=DNS:bench.test"],
                   check=True, capture_output=True, timeout=60)
    os.chmod(key, 0o600)
    TLS_FILES.update(cert=cert, key=key)


# ---------------------------------------------------------------- main

def main():
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    scenarios = [Scenario(s) for s in SCENARIOS.split(",") if s.strip()]
    for m in MTAS:
        if m not in ("moat", "postfix"):
            sys.exit(f"bench: BENCH_MTAS: unknown MTA {m!r}")
    if MESSAGES < 1 or REPS < 1 or SESSIONS < 1 or LAT_TX < 1 or LAT_CLIENTS < 1:
        sys.exit("bench: counts must be at least 1")
    pfenv = dict(os.environ, LD_LIBRARY_PATH=str(PF_LIBS))
    results, losses = {}, []
    workdir = Path(tempfile.mkdtemp(prefix="moat-bench-", dir=TMPBASE))
    os.chmod(workdir, 0o755)
    if os.environ.get("BENCH_KEEP"):
        CLEANUP.add(lambda: say(f"kept {workdir} (logs, queues); remove it yourself"))
    else:
        CLEANUP.add(lambda: shutil.rmtree(workdir, ignore_errors=True))
    try:
        machine = machine_description(pfenv)
        if TLS:
            make_certificate(workdir)
            machine += "; both MTAs offer STARTTLS (BENCH_TLS), unused by the clients"
        say(machine)
        mtas, generation = [], 0
        for m in MTAS:
            mta = (Moat if m == "moat" else Postfix)(workdir, pfenv)
            mta.start()
            mtas.append(mta)
            say(f"{m} listening on {LOOPBACK}:{mta.port}, relaying to sink port {mta.sink_port}")
            # The two MTAs must be configured alike: both with STARTTLS or neither.
            if offers_starttls(mta.port) != TLS:
                raise RuntimeError(f"{m} {'does not offer' if TLS else 'offers'} STARTTLS")
        for rep in range(REPS):
            for sc in scenarios:
                # Alternate the order so neither MTA always runs second.
                for i in (range(len(mtas)) if rep % 2 == 0 else reversed(range(len(mtas)))):
                    mta = mtas[i]
                    label = f"rep {rep + 1}/{REPS} {sc.key} {mta.name}"
                    try:
                        r = one_run(mta, sc, workdir, pfenv)
                    except Loss as e:
                        losses.append(f"{label}: {e}")
                        say(f"!!! {label}: {e}")
                        # What is left in its queue would reach the next
                        # run's sink: go on with a fresh instance.
                        say(f"restarting {mta.name} with an empty queue")
                        mta.stop()
                        generation += 1
                        mtas[i] = type(mta)(workdir, pfenv, generation)
                        mtas[i].start()
                        continue
                    results.setdefault((mta.name, sc.key), []).append(r)
                    say(f"{label}: accepted {r['accepted']:.0f}/s e2e {r['e2e']:.0f}/s "
                        f"cpu {r['cpu']:.2f} s/1000 p50 {r['p50']:.1f} ms "
                        f"own {r['own_cpu']:.2f} p99 {r['p99']:.1f} ms rss {r['rss']:.1f} MiB "
                        f"pss {r['pss']:.1f} MiB")
        text = report(results, scenarios, machine)
        print(text, flush=True)
        if os.environ.get("BENCH_JSON"):
            with open(os.environ["BENCH_JSON"], "w") as f:
                json.dump({f"{k[0]} {k[1]}": v for k, v in results.items()}, f, indent=1)
    except KeyboardInterrupt:
        say("interrupted: cleaning up")
        return 130
    finally:
        # A second Ctrl-C must not cut the cleanup short.
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        CLEANUP.run()
    if losses:
        print("\n" + "!" * 72, file=sys.stderr)
        print("bench: MESSAGES WENT MISSING OR WERE DUPLICATED; those runs are not in "
              "the table:", file=sys.stderr)
        for line in losses:
            print(f"  {line}", file=sys.stderr)
        print("!" * 72, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

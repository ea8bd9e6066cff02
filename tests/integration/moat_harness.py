"""
moat_harness.py: run the real moat daemons and real SMTP peers on loopback
for the integration tests, and always clean up after them.

A test is a function test_x(ctx) in a test_*.py module; ctx is a Context:

    sink = ctx.sink()                    # Postfix smtp-sink on 127.0.0.1
    moat = ctx.moat(relay_host=sink, smtpd_recipient_limit=3)
    with moat.smtp() as s: ...           # smtplib against moatd
    sink.wait_messages(1)                # bounded wait for the dumps

Everything a test starts is registered with its Context and stopped when
the test ends, whatever happened.  Every wait has a deadline.  Nothing
listens on or connects to anything but 127.0.0.1.
"""
import grp
import os
import pwd
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("MOAT_BUILD", REPO / "build"))
POSTFIX_ROOT = Path(os.environ.get("MOAT_POSTFIX_ROOT", REPO / ".tools" / "postfix"))

MOATD = BUILD / "listener" / "moatd"
MOATCTL = BUILD / "moatctl" / "moatctl"
LIBEXEC = {
    "smtpd-session": BUILD / "smtpd-session" / "smtpd-session",
    "smtpd-session-plain": BUILD / "smtpd-session" / "smtpd-session-plain",
    "queue-manager": BUILD / "queue-manager" / "queue-manager",
    "delivery-agent": BUILD / "delivery-agent" / "delivery-agent",
    "keyholder": BUILD / "keyholder" / "keyholder",
}
SMTP_SINK = POSTFIX_ROOT / "usr" / "sbin" / "smtp-sink"
SMTP_SOURCE = POSTFIX_ROOT / "usr" / "sbin" / "smtp-source"
POSTFIX_LIBS = POSTFIX_ROOT / "usr" / "lib" / "postfix"

IS_ROOT = os.geteuid() == 0
LOOPBACK = "127.0.0.1"
QID_RE = re.compile(r"queued as ([0-9A-F]{16})\b")


class Skip(Exception):
    """Raised by a test that cannot run here (not root, tool missing)."""


def skip_unless_root():
    if not IS_ROOT:
        raise Skip("needs root (moatd's privilege separation)")


def require(path, what):
    if not Path(path).exists():
        raise Skip(f"{what} not found at {path}")


# ---------------------------------------------------------------- waiting

def wait_until(pred, timeout, what, interval=0.1):
    """Poll pred() until it returns something true; its value, or fail."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def stays_false(pred, duration, interval=0.2):
    """True if pred() stays false for the whole duration."""
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        if pred():
            return False
        time.sleep(interval)
    return not pred()


# ---------------------------------------------------------------- ports

def free_port():
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def listening(port):
    """True if something listens on 127.0.0.1:port (from /proc/net/tcp)."""
    want = "0100007F:%04X" % port
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[1] == want and fields[3] == "0A":
                    return True
    except OSError:
        pass
    return False


# ---------------------------------------------------------------- processes

class Proc:
    """A snapshot of one process from /proc."""

    def __init__(self, pid):
        self.pid = pid
        base = f"/proc/{pid}"
        with open(f"{base}/cmdline", "rb") as f:
            self.argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
        self.status = read_status(pid)
        self.ppid = int(self.status.get("PPid", "0"))
        self.uid = int(self.status.get("Uid", "-1").split()[0])
        self.gid = int(self.status.get("Gid", "-1").split()[0])
        self.name = os.path.basename(self.argv[0]) if self.argv else ""
        self.role = classify(self)

    def __repr__(self):
        return f"<{self.role} pid={self.pid} uid={self.uid} argv={' '.join(self.argv)}>"


def read_status(pid):
    """/proc/PID/status as a dict of stripped strings ({} if gone)."""
    d = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                d[k] = v.strip()
    except OSError:
        pass
    return d


def _arg(argv, flag):
    """The value after flag in argv, or ""."""
    for i, a in enumerate(argv[:-1]):
        if a == flag:
            return argv[i + 1]
    return ""


def _uid_of(user):
    try:
        return pwd.getpwnam(user).pw_uid
    except KeyError:
        return None


def classify(p):
    """listener, session, qmgr, relay, local, or other."""
    if p.name == "moatd":
        return "listener"
    if p.name == "smtpd-session":
        return "session"
    if p.name == "queue-manager":
        return "qmgr"
    if p.name == "local-delivery":
        return "local"
    if p.name == "delivery-agent":
        transport = _arg(p.argv, "-T")
        if transport in ("local", "relay"):
            return transport
        root = _arg(p.argv, "-t").rstrip("/")
        if root.endswith("/maildir"):
            return "local"
        if root.endswith("/empty"):
            return "relay"
        if IS_ROOT and p.uid == _uid_of("moat-local"):
            return "local"
        return "relay"
    return "other"


def all_pids():
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def descendants(root_pid):
    """Every live process below root_pid, as Proc snapshots."""
    children = {}
    for pid in all_pids():
        st = read_status(pid)
        if "PPid" in st:
            children.setdefault(int(st["PPid"]), []).append(pid)
    out, pending = [], list(children.get(root_pid, []))
    while pending:
        pid = pending.pop()
        try:
            out.append(Proc(pid))
        except OSError:
            continue
        pending.extend(children.get(pid, []))
    return out


def pid_alive(pid):
    st = read_status(pid)
    return bool(st) and not st.get("State", "").startswith("Z")


def kill_quietly(pid, sig):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def processes_mentioning(text):
    """Pids whose command line contains text (to sweep up stragglers)."""
    found = []
    for pid in all_pids():
        if pid == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if text.encode() in f.read():
                    found.append(pid)
        except OSError:
            pass
    return found


def tail(path, n=40):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError as e:
        return f"({path}: {e.strerror})\n"


# ---------------------------------------------------------------- messages

def expect(reply, code, what):
    """Check an smtplib (code, bytes) reply; returns its text."""
    text = reply[1].decode(errors="replace") if isinstance(reply[1], bytes) else str(reply[1])
    if reply[0] != code:
        raise AssertionError(f"{what}: expected {code}, got {reply[0]} {text!r}")
    return text


def make_message(headers, body_lines):
    """RFC 5322 text with CRLF line ends; headers is a list of (name, value)."""
    lines = [f"{k}: {v}" for k, v in headers] + [""] + list(body_lines)
    return ("\r\n".join(lines) + "\r\n").encode()


def dot_stuff(data):
    """SMTP transparency (RFC 5321 4.5.2) for CRLF text, plus the final dot."""
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    lines = data[:-2].split(b"\r\n")
    return b"".join((b"." + ln if ln.startswith(b".") else ln) + b"\r\n"
                    for ln in lines) + b".\r\n"


def split_message(lines):
    """(header lines, body lines) of a message given as lines without ends."""
    if "" in lines:
        i = lines.index("")
        return lines[:i], lines[i + 1:]
    return lines, []


def header_values(header_lines, name):
    """Unfolded values of every header called name."""
    vals, cur = [], None
    for line in header_lines:
        if line[:1] in (" ", "\t") and cur is not None:
            vals[cur] += " " + line.strip()
            continue
        k, sep, v = line.partition(":")
        if sep and k.strip().lower() == name.lower():
            vals.append(v.strip())
            cur = len(vals) - 1
        else:
            cur = None
    return vals


class RawClient:
    """A plain socket SMTP client that shows exactly what the server sends."""

    def __init__(self, port, timeout=15):
        self.sock = socket.create_connection((LOOPBACK, port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def recv_some(self):
        """One recv() (blocking up to the socket timeout)."""
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("server closed the connection")
        self.buf += data
        return data

    def reply(self):
        """One complete (possibly multi-line) reply: (code, [texts])."""
        texts = []
        while True:
            while b"\r\n" not in self.buf:
                self.recv_some()
            line, self.buf = self.buf.split(b"\r\n", 1)
            s = line.decode(errors="replace")
            if len(s) < 3 or not s[:3].isdigit():
                raise AssertionError(f"malformed reply line {s!r}")
            texts.append(s[4:])
            if s[3:4] != "-":
                return int(s[:3]), texts

    def reply_line(self):
        code, texts = self.reply()
        return f"{code} {texts[-1]}"

    def pending_replies(self, wait=1.0):
        """Every further reply that arrives within wait seconds."""
        out = []
        self.sock.settimeout(wait)
        try:
            while True:
                out.append(self.reply())
        except (socket.timeout, ConnectionError):
            pass
        finally:
            self.sock.settimeout(15)
        return out

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# ---------------------------------------------------------------- moatd

class Moat:
    """One moatd with its own configuration and run_directory."""

    def __init__(self, ctx, name="moat", relay_host=None, **settings):
        self.ctx = ctx
        self.dir = ctx.dir / name
        self.dir.mkdir(mode=0o755)
        os.chmod(self.dir, 0o755)
        self.run_dir = self.dir / "run"
        self.port = free_port()
        self.conf_path = self.dir / "moat.conf"
        self.log_path = self.dir / "moatd.log"
        self.proc = None
        # A test that trips a seccomp filter on purpose sets this; for every
        # other test, a sandbox kill in the log fails the test at stop().
        self.expect_sandbox_kills = False
        conf = {
            "run_directory": str(self.run_dir),
            "listen": f"{LOOPBACK}:{self.port}",
            "myhostname": "moat.test",
            "local_domains": "localhost",
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "2s",
            "delivery_agents": "2",
            "relay_connect_timeout": "5s",
            "relay_timeout": "30s",
            "queue_min_free": "0",
        }
        if relay_host is not None:
            conf["relay_host"] = (relay_host if isinstance(relay_host, str)
                                  else f"[{LOOPBACK}]:{relay_host.port}")
        for k, v in settings.items():
            if v is None:
                conf.pop(k, None)
            else:
                conf[k] = str(v)
        self.settings = conf
        self.conf_path.write_text("".join(f"{k} = {v}\n" for k, v in conf.items()))
        ctx.add_log(f"{name} moatd.log", self.log_path)

    def start(self, timeout=15):
        libexec = self.dir / "libexec"
        libexec.mkdir(mode=0o755, exist_ok=True)
        for name, target in LIBEXEC.items():
            require(target, name)
            link = libexec / name
            if not link.exists():
                link.symlink_to(target)
        require(MOATD, "moatd")
        # The log is appended to a regular file, as `moatd 2>>moat.log`
        # would: priv_drop() must then leave RLIMIT_FSIZE alone.
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [str(MOATD), "-d", "-f", str(self.conf_path), "-L", str(libexec)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=self.dir)
        self.ctx.add_cleanup(self.stop)

        def up():
            if self.proc.poll() is not None:
                raise AssertionError(f"moatd exited with status {self.proc.returncode} "
                                     f"while starting:\n{tail(self.log_path)}")
            return listening(self.port) and self.find("qmgr")
        wait_until(up, timeout, f"moatd to listen on port {self.port} and start its queue-manager")
        return self

    def stop(self, timeout=10):
        """SIGTERM, then SIGKILL; children that outlive moatd are killed too."""
        if self.proc is None:
            return
        procs = descendants(self.proc.pid) if self.proc.poll() is None else []
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for p in procs:
            if pid_alive(p.pid):
                kill_quietly(p.pid, signal.SIGKILL)
        for pid in processes_mentioning(str(self.dir)):
            kill_quietly(pid, signal.SIGKILL)
        self.proc = None
        if not self.expect_sandbox_kills:
            assert_no_sandbox_kills(self)

    # processes
    def processes(self):
        if self.proc is None or self.proc.poll() is not None:
            return []
        return descendants(self.proc.pid)

    def find(self, role):
        """Processes of one role (session, qmgr, relay, local) under moatd."""
        return [p for p in self.processes() if p.role == role]

    def wait_role(self, role, timeout=15, exclude=()):
        """The first process of role (not in exclude) to appear."""
        return wait_until(lambda: [p for p in self.find(role) if p.pid not in exclude],
                          timeout, f"a {role} process under moatd")[0]

    def wait_settled(self, roles, timeout=15):
        """Wait until every process of roles has finished starting: its own
        seccomp filter is on top of moatd's (Seccomp_filters 2), so its
        privileges are dropped.  A process caught earlier would show the
        root and capabilities it starts with."""
        def settled():
            ps = [p for p in self.processes() if p.role in roles]
            return all(p.status.get("Seccomp_filters") == "2" for p in ps) and ps
        return wait_until(settled, timeout, f"{', '.join(roles)} to finish starting")

    def wait_agents(self, timeout=15):
        """Wait until moatd has started all its delivery agents (the
        configured number of relay agents and the one local agent) and
        return them by role.  start() returns once the queue-manager is up;
        the agents may still be on their way then."""
        want = {"relay": int(self.settings.get("delivery_agents", "20")), "local": 1}

        def started():
            got = {role: self.find(role) for role in want}
            return got if all(len(got[r]) == n for r, n in want.items()) else None
        return wait_until(started, timeout, f"moatd to start its agents {want}")

    def log(self):
        return self.log_path.read_text(errors="replace")

    # clients
    def smtp(self, timeout=15):
        """A connected smtplib client; its greeting is in .greeting."""
        # local_hostname: without it smtplib asks DNS for this host's name,
        # which stalls for seconds on hosts that cannot resolve themselves.
        s = smtplib.SMTP(local_hostname="client.test", timeout=timeout)
        s.greeting = s.connect(LOOPBACK, self.port)
        if s.greeting[0] != 220:
            s.close()
            raise AssertionError(f"greeting {s.greeting}")
        return s

    def send(self, sender, rcpts, data, helo="client.test"):
        """One whole transaction with smtplib; returns the queue id."""
        s = self.smtp()
        try:
            expect(s.ehlo(helo), 250, f"EHLO {helo}")
            expect(s.docmd(f"MAIL FROM:<{sender}>"), 250, "MAIL")
            for r in rcpts:
                expect(s.docmd(f"RCPT TO:<{r}>"), 250, f"RCPT TO:<{r}>")
            expect(s.docmd("DATA"), 354, "DATA")
            s.send(dot_stuff(data))
            reply = expect(s.getreply(), 250, "end of data")
            m = QID_RE.search(reply)
            if not m:
                raise AssertionError(f"final reply has no queue id: {reply!r}")
            expect(s.docmd("QUIT"), 221, "QUIT")
            return m.group(1)
        finally:
            s.close()

    def raw(self):
        c = RawClient(self.port)
        self.ctx.add_cleanup(c.close)
        return c

    def moatctl(self, *args, user=None, group=None, groups=None, timeout=15):
        """Run moatctl -f conf ARGS, optionally as another user (root only)."""
        cmd = [str(MOATCTL), "-f", str(self.conf_path), *args]
        if user is not None:
            pw = pwd.getpwnam(user)
            gid = grp.getgrnam(group).gr_gid if group else pw.pw_gid
            extra = ",".join(str(grp.getgrnam(g).gr_gid) for g in (groups or []))
            cmd = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={gid}",
                   f"--groups={extra}" if extra else "--clear-groups", "--", *cmd]
        return subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=timeout)

    def queue_text(self):
        r = self.moatctl("queue")
        if r.returncode != 0:
            raise AssertionError(f"moatctl queue failed ({r.returncode}): {r.stdout}{r.stderr}")
        return r.stdout

    def queue_ids(self):
        """Queue ids that moatctl queue lists."""
        return set(re.findall(r"\b[0-9A-F]{16}\b", self.queue_text()))

    def wait_log(self, pattern, timeout=30, what=None):
        """Wait for a regular expression to match the moatd log; the match."""
        rx = re.compile(pattern, re.M)
        return wait_until(lambda: rx.search(self.log()), timeout, what or f"log line /{pattern}/")

    def maildir_new(self, user):
        d = self.run_dir / "maildir" / user / "new"
        try:
            return sorted(d.iterdir())
        except FileNotFoundError:
            return []

    def wait_maildir(self, user, n, timeout=30):
        return wait_until(lambda: len(self.maildir_new(user)) >= n and self.maildir_new(user),
                          timeout, f"{n} message(s) in maildir/{user}/new")


# ---------------------------------------------------------------- smtp-sink

class SinkMessage:
    """One transaction dumped by smtp-sink (-d)."""

    def __init__(self, path, text):
        self.path = path
        lines = text.split("\n")
        self.helo, self.mail_args, self.rcpt_args = None, None, []
        i = 0
        while i < len(lines) and lines[i].startswith("X-"):
            k, _, v = lines[i].partition(": ")
            if k == "X-Helo-Args":
                self.helo = v
            elif k == "X-Mail-Args":
                self.mail_args = v
            elif k == "X-Rcpt-Args":
                self.rcpt_args.append(v)
            i += 1
        if i < len(lines) and lines[i].startswith("Received:"):
            i += 1
            while i < len(lines) and lines[i][:1] in (" ", "\t"):
                i += 1
        # The dump ends with the message's last line end plus one empty line.
        body = lines[i:]
        if body[-2:] == ["", ""]:
            body = body[:-2]
        self.lines = body
        self.headers, self.body = split_message(body)

    @property
    def sender(self):
        m = re.match(r"<([^>]*)>", self.mail_args or "")
        return m.group(1) if m else None

    @property
    def recipients(self):
        out = []
        for a in self.rcpt_args:
            m = re.match(r"<([^>]*)>", a)
            out.append(m.group(1) if m else a)
        return out

    def header(self, name):
        return header_values(self.headers, name)


class Sink:
    """Postfix's smtp-sink on loopback, dumping each message to a file."""

    def __init__(self, ctx, name="sink"):
        require(SMTP_SINK, "smtp-sink (run ./bootstrap test to unpack Postfix's tools)")
        self.ctx = ctx
        self.dir = ctx.dir / name
        self.dump = self.dir / "dump"
        self.dump.mkdir(parents=True)
        os.chmod(self.dir, 0o755)
        os.chmod(self.dump, 0o777)   # smtp-sink -u nobody writes here
        self.port = free_port()
        self.log_path = self.dir / "smtp-sink.log"
        self.proc = None
        self.options = ()
        self._cache = {}
        ctx.add_log(f"{name} smtp-sink.log", self.log_path)
        ctx.add_cleanup(self.stop)

    def start(self, *options, timeout=10):
        """Start with extra smtp-sink options, e.g. ("-r", "RCPT")."""
        self.options = options
        cmd = [str(SMTP_SINK), *options]
        if IS_ROOT:
            cmd += ["-u", "nobody"]
        cmd += ["-d", f"{self.dump}/%M.", f"{LOOPBACK}:{self.port}", "100"]
        env = dict(os.environ, LD_LIBRARY_PATH=str(POSTFIX_LIBS))
        with open(self.log_path, "ab") as log:
            log.write(f"--- {' '.join(cmd)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT)

        def up():
            if self.proc.poll() is not None:
                raise AssertionError(f"smtp-sink exited ({self.proc.returncode}):\n"
                                     f"{tail(self.log_path)}")
            return listening(self.port)
        wait_until(up, timeout, f"smtp-sink on port {self.port}")
        return self

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
        wait_until(lambda: not listening(self.port), 10, f"port {self.port} to close")

    def restart(self, *options):
        """Stop and start again on the same port with other options."""
        self.stop()
        return self.start(*options)

    def messages(self):
        """Every completely written dump, oldest first."""
        out = []
        now = time.time()
        for f in sorted(self.dump.iterdir(), key=lambda p: (p.stat().st_mtime, p.name)):
            if f in self._cache:
                out.append(self._cache[f])
                continue
            st = f.stat()
            if now - st.st_mtime < 0.5:
                continue   # smtp-sink may still be writing it
            text = f.read_text(errors="replace")
            if not text.endswith("\n\n"):
                continue
            self._cache[f] = SinkMessage(f, text)
            out.append(self._cache[f])
        return out

    def count(self):
        return len(list(self.dump.iterdir()))

    def wait_messages(self, n, timeout=30):
        """Wait until at least n complete messages were dumped; returns them."""
        return wait_until(lambda: len(self.messages()) >= n and self.messages(),
                          timeout, f"{n} message(s) at smtp-sink (have {len(self.messages())})",
                          interval=0.2)


# ---------------------------------------------------------------- raw sink

class RawSink:
    """A minimal SMTP server that keeps the exact bytes of each DATA."""

    def __init__(self, ctx, name="rawsink"):
        self.ctx = ctx
        self.port = free_port()
        self.messages = []    # dicts: mail, rcpts, raw (bytes up to and with CRLF.CRLF)
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((LOOPBACK, self.port))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        ctx.add_cleanup(self.stop)

    def _serve(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn):
        conn.settimeout(30)
        buf = b""
        mail, rcpts = None, []

        def line():
            nonlocal buf
            while b"\r\n" not in buf:
                d = conn.recv(65536)
                if not d:
                    raise ConnectionError
                buf += d
            ln, buf = buf.split(b"\r\n", 1)
            return ln

        try:
            conn.sendall(b"220 rawsink ESMTP\r\n")
            while True:
                cmd = line()
                verb = cmd[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    conn.sendall(b"250-rawsink\r\n250 8BITMIME\r\n")
                elif verb == b"MAIL":
                    mail, rcpts = cmd, []
                    conn.sendall(b"250 2.1.0 Ok\r\n")
                elif verb == b"RCPT":
                    rcpts.append(cmd)
                    conn.sendall(b"250 2.1.5 Ok\r\n")
                elif verb == b"DATA":
                    conn.sendall(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    while b"\r\n.\r\n" not in b"\r\n" + buf:
                        d = conn.recv(65536)
                        if not d:
                            raise ConnectionError
                        buf += d
                    full = b"\r\n" + buf
                    end = full.index(b"\r\n.\r\n")
                    raw, buf = full[2:end + 5], full[end + 5:]
                    with self.lock:
                        self.messages.append({"mail": mail, "rcpts": rcpts, "raw": raw})
                    conn.sendall(b"250 2.0.0 Ok: stored\r\n")
                elif verb == b"QUIT":
                    conn.sendall(b"221 2.0.0 Bye\r\n")
                    break
                elif verb in (b"RSET", b"NOOP"):
                    conn.sendall(b"250 2.0.0 Ok\r\n")
                else:
                    conn.sendall(b"502 5.5.2 Not implemented\r\n")
        except (ConnectionError, OSError):
            pass
        finally:
            conn.close()

    def wait_messages(self, n, timeout=30):
        def got():
            with self.lock:
                return len(self.messages) >= n and list(self.messages)
        return wait_until(got, timeout, f"{n} message(s) at the raw sink")

    def stop(self):
        self.stopping = True
        try:
            self.sock.close()
        except OSError:
            pass
        self.thread.join(2)


# ---------------------------------------------------------------- context

class Context:
    """What one test started, its directory, and the logs to show on failure."""

    def __init__(self, name, workdir, logdir):
        self.name = name
        self.dir = Path(workdir)
        self.logdir = Path(logdir)
        self._cleanups = []
        self._logs = []

    def add_cleanup(self, fn):
        self._cleanups.append(fn)

    def add_log(self, label, path):
        self._logs.append((label, Path(path)))

    def moat(self, name="moat", start=True, **settings):
        m = Moat(self, name=name, **settings)
        return m.start() if start else m

    def sink(self, *options, name="sink"):
        return Sink(self, name=name).start(*options)

    def rawsink(self, name="rawsink"):
        return RawSink(self, name=name)

    def note(self, text):
        """A line shown under the test's ok line."""
        for line in str(text).splitlines():
            print(f"NOTE: {line}", flush=True)

    def cleanup(self):
        errors = []
        while self._cleanups:
            fn = self._cleanups.pop()
            try:
                fn()
            except Exception as e:   # keep cleaning up
                errors.append(f"cleanup {getattr(fn, '__qualname__', fn)}: {e}")
        return errors

    def log_tails(self, n=40):
        out = []
        for label, path in self._logs:
            out.append(f"--- last {n} lines of {label} ({path})\n{tail(path, n)}")
        return "".join(out)

    def save_logs(self):
        """Copy every log to the per-test log directory."""
        if self.logdir.exists():
            shutil.rmtree(self.logdir, ignore_errors=True)
        self.logdir.mkdir(parents=True, exist_ok=True)
        for label, path in self._logs:
            if path.exists():
                shutil.copy(path, self.logdir / label.replace(" ", "-"))
        for conf in self.dir.glob("*/moat.conf"):
            shutil.copy(conf, self.logdir / f"{conf.parent.name}-moat.conf")


# ---------------------------------------------------------------- sandbox

# What moatd logs when a child dies by its seccomp filter, and what a
# --enable-sandbox-debug build logs instead of dying.
SANDBOX_KILL_RE = re.compile(r"^.*(?:signal=SIGSYS|sandbox=violation).*$", re.M)


def sandbox_kills(moat):
    """Every line of moat's log that reports a seccomp kill or violation."""
    return SANDBOX_KILL_RE.findall(moat.log()) if moat.log_path.exists() else []


def assert_no_sandbox_kills(moat):
    """For teardown: normal traffic must never trip a seccomp filter."""
    kills = sandbox_kills(moat)
    if kills:
        raise AssertionError("sandbox kills during normal traffic:\n  " + "\n  ".join(kills))


def use_build(build):
    """Run this test's moatd and children from another build directory
    (each test runs in a process of its own, so this lasts one test)."""
    global BUILD, MOATD, MOATCTL
    BUILD = Path(build)
    MOATD = BUILD / "listener" / "moatd"
    MOATCTL = BUILD / "moatctl" / "moatctl"
    LIBEXEC.update({
        "smtpd-session": BUILD / "smtpd-session" / "smtpd-session",
        "smtpd-session-plain": BUILD / "smtpd-session" / "smtpd-session-plain",
        "queue-manager": BUILD / "queue-manager" / "queue-manager",
        "delivery-agent": BUILD / "delivery-agent" / "delivery-agent",
        "keyholder": BUILD / "keyholder" / "keyholder",
    })

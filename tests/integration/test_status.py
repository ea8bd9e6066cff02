"""
test_status.py: moatctl status and run_directory/status.

- every role (listener, queue-manager, relay agents, local agent) is listed
  with the pids /proc shows under moatd, the session count follows live
  sessions, the table and --json agree, the file is 0644 and any user may
  run status;
- kill -9 of the queue-manager: a new pid, restarts goes to 1;
- a valid reload (moatctl reload, then SIGHUP) moves the config load time
  and counts reloads; an invalid one changes nothing;
- after moatd stops the file is gone and status exits 1; a stale file
  (pid not a moatd) is not believed;
- control.sock: 0660 without readonly_group, 0666 with one, and the
  queue-manager still refuses an outsider.
"""
import json
import os
import signal
import stat
import time

import moat_harness as h

ROLES = {"listener": "listener", "queue-manager": "qmgr", "relay": "relay",
         "local": "local"}


def _status(moat, **kw):
    r = moat.moatctl("status", "--json", **kw)
    assert r.returncode == 0, f"moatctl status --json: exit {r.returncode}\n{r.stdout}{r.stderr}"
    try:
        return json.loads(r.stdout)
    except ValueError as e:
        raise AssertionError(f"moatctl status --json is not JSON ({e}):\n{r.stdout}")


def _pids(doc, role):
    return sorted(p["pid"] for p in doc["processes"] if p["role"] == role)


def _proc_pids(moat, role):
    if role == "listener":
        return [moat.proc.pid]
    return sorted(p.pid for p in moat.find(ROLES[role]))


def _matches_proc(moat):
    """The status document, once every role's pids match /proc (False
    while moatd has not written its first status file)."""
    if moat.moatctl("status", "--json").returncode != 0:
        return False
    doc = _status(moat)
    for role in ROLES:
        if _pids(doc, role) != _proc_pids(moat, role):
            return False
    return doc


def test_status_processes(ctx):
    """Every role with the pids /proc shows; sessions; table and JSON."""
    moat = ctx.moat(delivery_agents=2)
    doc = h.wait_until(lambda: _matches_proc(moat), 15, "status pids to match /proc")
    assert doc["moatd"]["pid"] == moat.proc.pid, doc
    assert len(_pids(doc, "relay")) == 2 and len(_pids(doc, "local")) == 1, doc
    assert all(p["state"] == "running" and p["restarts"] == 0 and p["uptime"] >= 0
               for p in doc["processes"]), doc
    assert doc["config"]["path"] == str(moat.conf_path.resolve()), doc
    assert doc["config"]["reloads"] == 0, doc
    assert abs(doc["config"]["loaded"] - time.time()) < 60, doc
    assert doc["sessions"] == 0, doc

    path = moat.run_dir / "status"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644, oct(path.stat().st_mode)
    assert not (moat.run_dir / "status.tmp").exists()

    # Live sessions are counted (written at most once a second).
    clients = [moat.smtp() for _ in range(3)]
    try:
        h.wait_until(lambda: _status(moat)["sessions"] == 3, 10, "sessions=3 in status")
    finally:
        for c in clients:
            c.close()
    h.wait_until(lambda: _status(moat)["sessions"] == 0, 15, "sessions=0 in status")

    # The table: one line per process with its pid, then sessions and config.
    r = moat.moatctl("status")
    assert r.returncode == 0, r
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["PROCESS", "PID", "STATE", "UPTIME", "RESTARTS"], r.stdout
    for role in ROLES:
        for pid in _proc_pids(moat, role):
            assert any(ln.split()[:2] == [role, str(pid)] for ln in lines), (role, pid, r.stdout)
    assert "sessions: 0" in r.stdout and str(moat.conf_path.resolve()) in r.stdout, r.stdout

    # Any user may read it.
    if h.IS_ROOT:
        doc = _status(moat, user="nobody")
        assert doc["moatd"]["pid"] == moat.proc.pid, doc
test_status_processes.timeout = 90


def test_status_restart_counted(ctx):
    """kill -9 of the queue-manager: a new pid, restarts 1."""
    moat = ctx.moat()
    doc = h.wait_until(lambda: _matches_proc(moat), 15, "status pids to match /proc")
    old = _pids(doc, "queue-manager")[0]
    os.kill(old, signal.SIGKILL)

    def restarted():
        d = _status(moat)
        q = [p for p in d["processes"] if p["role"] == "queue-manager"][0]
        return q["pid"] not in (0, old) and q["restarts"] == 1 and d
    doc = h.wait_until(restarted, 20, "a new queue-manager with restarts=1 in status")
    doc = h.wait_until(lambda: _matches_proc(moat), 20, "status pids to match /proc again")
    qm = [p for p in doc["processes"] if p["role"] == "queue-manager"][0]
    assert qm["restarts"] == 1 and qm["state"] == "running", doc
    assert [p for p in doc["processes"] if p["role"] == "listener"][0]["restarts"] == 0
    # A restart is not a reload.
    assert doc["config"]["reloads"] == 0, doc
test_status_restart_counted.timeout = 90


def test_status_reload_time(ctx):
    """A valid reload moves the load time; an invalid one does not."""
    moat = ctx.moat()
    first = h.wait_until(lambda: _matches_proc(moat), 15, "status pids to match /proc")
    time.sleep(1.2)     # the times are in whole seconds

    r = moat.moatctl("reload")
    assert r.returncode == 0, r
    doc = h.wait_until(lambda: (lambda d: d["config"]["reloads"] == 1 and d)(_status(moat)),
                       15, "reloads=1 in status")
    assert doc["config"]["loaded"] > first["config"]["loaded"], (first, doc)
    loaded = doc["config"]["loaded"]

    # An invalid file is refused: nothing changes in status.
    good = moat.conf_path.read_text()
    moat.conf_path.write_text(good + "no_such_setting = 1\n")
    os.kill(moat.proc.pid, signal.SIGHUP)
    moat.wait_log(r"reload=refused", what="reload=refused")
    # (moatctl reads run_directory from the file too: put the good one back first.)
    moat.conf_path.write_text(good)
    doc = _status(moat)
    assert doc["config"]["reloads"] == 1 and doc["config"]["loaded"] == loaded, doc

    # SIGHUP with a valid file.
    time.sleep(1.2)
    os.kill(moat.proc.pid, signal.SIGHUP)
    doc = h.wait_until(lambda: (lambda d: d["config"]["reloads"] == 2 and d)(_status(moat)),
                       15, "reloads=2 in status")
    assert doc["config"]["loaded"] > loaded, doc
    # The rolling restart of agents shows as restarts, with pids from /proc.
    h.wait_until(lambda: _matches_proc(moat), 30, "status pids to match /proc after reload")
test_status_reload_time.timeout = 90


def test_status_not_running(ctx):
    """No moatd: exit 1 and a clear message; a stale file is not believed."""
    moat = ctx.moat()
    h.wait_until(lambda: _matches_proc(moat), 15, "status pids to match /proc")
    path = moat.run_dir / "status"
    text = path.read_text()
    moat.stop()
    assert not path.exists(), "status file left behind after moatd stopped"
    r = moat.moatctl("status")
    assert r.returncode == 1 and "moatd is not running" in r.stderr, r

    # A file left by a moatd that was killed: its pid is not a moatd now.
    path.write_text(text.replace(f"moatd_pid={moat_pid(text)}\n", f"moatd_pid={os.getpid()}\n"))
    r = moat.moatctl("status", "--json")
    assert r.returncode == 1 and "moatd is not running" in r.stderr and r.stdout == "", r
    path.unlink()
test_status_not_running.timeout = 60


def moat_pid(text):
    for line in text.splitlines():
        if line.startswith("moatd_pid="):
            return int(line.split("=", 1)[1])
    raise AssertionError(f"no moatd_pid in status:\n{text}")


def test_control_socket_mode(ctx):
    """Without readonly_group control.sock is 0660 root:admin_group and an
    outsider cannot connect; with one it is 0666 (the queue-manager decides)."""
    h.skip_unless_root()
    moat = ctx.moat()
    sock = moat.run_dir / "control.sock"
    st = sock.stat()
    assert stat.S_IMODE(st.st_mode) == 0o660 and st.st_uid == 0, oct(st.st_mode)
    r = moat.moatctl("queue", user="nobody", group="nogroup")
    assert r.returncode == 1 and "Queue is empty" not in r.stdout, r
    moat.wait_log(r"control=\S+ mode=0660 group=")
    moat.stop()

    ro = ctx.moat(name="moat-ro", readonly_group="users")
    st = (ro.run_dir / "control.sock").stat()
    assert stat.S_IMODE(st.st_mode) == 0o666 and st.st_uid == 0, oct(st.st_mode)
    ro.wait_log(r"control=\S+ mode=0666 group=")
    r = ro.moatctl("queue", user="nobody", groups=["users"])
    assert r.returncode == 0 and "Queue is empty" in r.stdout, r
    r = ro.moatctl("queue", user="nobody", group="nogroup")
    assert r.returncode == 1 and "permission denied" in r.stderr, r
    ro.wait_log(r"control=refused uid=65534 cmd=list\b")
test_control_socket_mode.timeout = 60

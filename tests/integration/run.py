#!/usr/bin/env python3
"""
run.py: moat's integration test runner.

    python3 tests/integration/run.py              every test
    python3 tests/integration/run.py NAME ...     tests by function (test_pipelining),
                                                  module (test_smtp) or module.function
    python3 tests/integration/run.py --list       names only

Finds every test_*.py next to this file and every test_* function in it, in
the order written, and runs each in a child process of its own with a
deadline (the function's .timeout attribute, default 90 s).  Prints one line
per test:

    ok - NAME           not ok - NAME           skip - NAME # reason

A failure is followed by its traceback and the tail of the daemons' logs as
"# " lines.  Every test's logs are copied to build/test-logs/integration/NAME/.
Exit status: 0 if no test failed.
"""
import importlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import moat_harness as h   # noqa: E402

DEFAULT_TIMEOUT = 90
MODULE_ORDER = ["test_smtp", "test_delivery", "test_operation"]   # the rest follow, sorted
SKIP_STATUS = 77
LOG_ROOT = h.REPO / "build" / "test-logs" / "integration"


class TestTimeout(Exception):
    pass


def discover():
    """[(module name, function name, function)] in file and definition order."""
    tests = []
    paths = sorted(HERE.glob("test_*.py"),
                   key=lambda p: (MODULE_ORDER.index(p.stem) if p.stem in MODULE_ORDER
                                  else len(MODULE_ORDER), p.stem))
    for path in paths:
        mod = importlib.import_module(path.stem)
        for name, fn in vars(mod).items():
            if name.startswith("test_") and callable(fn) and fn.__module__ == mod.__name__:
                tests.append((mod.__name__, name, fn))
    return tests


def selected(tests, names):
    if not names:
        return tests
    out = []
    for mod, name, fn in tests:
        if name in names or mod in names or f"{mod}.{name}" in names:
            out.append((mod, name, fn))
    unknown = [n for n in names
               if not any(n in (m, f, f"{m}.{f}") for m, f, _ in tests)]
    if unknown:
        sys.exit(f"run.py: no such test: {' '.join(unknown)}")
    return out


def child(mod, name, workdir, logdir):
    """Run one test in this process; exit 0, 1 or SKIP_STATUS."""
    fn = getattr(importlib.import_module(mod), name)
    timeout = getattr(fn, "timeout", DEFAULT_TIMEOUT)

    def on_alarm(signum, frame):
        raise TestTimeout(f"test ran longer than its {timeout} s deadline")
    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_alarm)
    ctx = h.Context(name, workdir, logdir)
    status = 1
    try:
        signal.alarm(timeout)
        fn(ctx)
        status = 0
    except h.Skip as e:
        print(f"SKIP: {e}")
        status = SKIP_STATUS
    except BaseException:
        traceback.print_exc(file=sys.stdout)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        for err in ctx.cleanup():
            print(err)
            status = 1 if status == 0 else status
        if status == 1:
            print(ctx.log_tails())
        ctx.save_logs()
    sys.stdout.flush()
    os._exit(status)


def run_one(mod, name, fn):
    """Run one test in a child process; returns 'ok', 'not ok' or 'skip'."""
    timeout = getattr(fn, "timeout", DEFAULT_TIMEOUT)
    workdir = tempfile.mkdtemp(prefix=f"moat-{name}-")
    os.chmod(workdir, 0o755)   # moat's users must reach run_directory
    logdir = LOG_ROOT / name
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", mod, name, workdir, str(logdir)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout + 30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        out += b"\nkilled: the test did not finish within its deadline plus 30 s\n"
    # Whatever the test left behind (it should have stopped everything).
    for pid in h.processes_mentioning(workdir):
        h.kill_quietly(pid, signal.SIGKILL)
    if os.environ.get("MOAT_KEEP_TEST_DIRS"):
        out += f"\nkept {workdir}\n".encode()
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    text = out.decode(errors="replace").rstrip("\n")
    secs = time.monotonic() - started
    if proc.returncode == 0:
        print(f"ok - {name} # {secs:.1f} s")
        for line in text.splitlines():
            if line.startswith("NOTE: "):
                print(f"#   {line[6:]}")
        sys.stdout.flush()
        return "ok"
    if proc.returncode == SKIP_STATUS:
        reason = text.splitlines()[-1].replace("SKIP: ", "", 1) if text else ""
        print(f"skip - {name} # {reason}", flush=True)
        return "skip"
    print(f"not ok - {name} # {secs:.1f} s, exit {proc.returncode}", flush=True)
    for line in text.splitlines():
        print(f"#   {line}")
    sys.stdout.flush()
    return "not ok"


def main(argv):
    if argv[:1] == ["--child"]:
        child(*argv[1:5])
    tests = discover()
    if argv[:1] in (["--list"], ["-l"]):
        for mod, name, _ in tests:
            print(f"{mod}.{name}")
        return 0
    if argv[:1] in (["--help"], ["-h"]):
        print(__doc__.strip())
        return 0
    results = [run_one(*t) for t in selected(tests, argv)]
    print(f"# integration: {results.count('ok')} passed, {results.count('not ok')} failed, "
          f"{results.count('skip')} skipped")
    return 1 if "not ok" in results else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

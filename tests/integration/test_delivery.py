"""
test_delivery.py: the queue and the delivery agents against a next hop
that says no, and against processes killed with SIGKILL.
"""
import random
import re
import signal
import smtplib
import threading
import time
import os

from moat_harness import make_message, stays_false, wait_until


def test_downstream_4xx_then_delivered(ctx):
    """Next hop answers RCPT with 450: deferred with the reply, then delivered."""
    sink = ctx.sink("-r", "RCPT")
    moat = ctx.moat(relay_host=sink)
    qid = moat.send("bob@company.org", ["alice@company.com"],
                    make_message([("Subject", "retry me"), ("X-Test-Id", "retry-1")],
                                 ["delivered on a later attempt"]))
    moat.wait_log(rf"id={qid}\b.*status=deferred", what=f"a status=deferred log line for {qid}")

    def listed_deferred():
        text = moat.queue_text()
        return qid in text and "4.3.0" in text and "defer" in text.lower() and text
    wait_until(listed_deferred, 20,
               f"moatctl queue to list {qid} as deferred with the 450 4.3.0 reply")
    assert sink.count() == 0, "a message reached the sink while it refused RCPT"

    sink.restart()
    msg = sink.wait_messages(1, timeout=30)[0]
    assert msg.header("X-Test-Id") == ["retry-1"], msg.headers
    assert msg.body == ["delivered on a later attempt"], msg.body
    moat.wait_log(rf"id={qid}\b.*status=sent", what=f"a status=sent log line for {qid}")
    wait_until(lambda: qid not in moat.queue_ids(), 15, f"{qid} to leave the queue")


def test_downstream_5xx_bounces(ctx):
    """Next hop answers RCPT with 550: a bounce to the sender; none for <>."""
    reply = "550 5.1.1 <alice@company.com>: Recipient address rejected: User unknown"
    sink = ctx.sink("-f", "RCPT", "-B", reply)
    moat = ctx.moat(relay_host=sink)
    qid = moat.send("postmaster@localhost", ["alice@company.com"],
                    make_message([("Subject", "will bounce"), ("X-Test-Id", "bounce-1")],
                                 ["this message is refused by the next hop"]))
    files = moat.wait_maildir("postmaster", 1, timeout=30)
    bounce = files[0].read_bytes().decode(errors="replace")
    for want in ("alice@company.com", "5.1.1", "User unknown"):
        assert want in bounce, f"bounce does not mention {want!r}:\n{bounce[:3000]}"
    assert re.search(r"(?im)^content-type:\s*multipart/report", bounce), \
        f"bounce is not an RFC 3464 multipart/report:\n{bounce[:2000]}"
    moat.wait_log(rf"id={qid}\b.*status=bounced", what=f"a status=bounced log line for {qid}")
    wait_until(lambda: not moat.queue_ids(), 20, "the queue to be empty after the bounce")

    # The null sender never gets a bounce.
    qid2 = moat.send("", ["carol@company.com"],
                     make_message([("Subject", "null sender"), ("X-Test-Id", "bounce-2")],
                                  ["a bounce of a bounce must not happen"]))
    moat.wait_log(rf"id={qid2}\b.*status=bounced", what=f"a status=bounced log line for {qid2}")
    wait_until(lambda: qid2 not in moat.queue_ids(), 20, f"{qid2} to leave the queue")
    assert stays_false(lambda: len(moat.maildir_new("postmaster")) > 1 or moat.queue_ids(), 3), \
        f"something was queued or delivered for the null sender: queue {moat.queue_ids()}, " \
        f"maildir {moat.maildir_new('postmaster')}"
    assert sink.count() == 0


def _load_worker(moat, ids, accepted, lock, stop_at):
    """Send each test id (retrying while processes restart); record the 250s."""
    for tid in ids:
        msg = make_message([("Subject", f"load {tid}"), ("Message-ID", f"<{tid}@load.test>"),
                            ("X-Test-Id", tid)],
                           [f"load message {tid}", "x" * random.randint(10, 3000)])
        while time.monotonic() < stop_at:
            try:
                qid = moat.send("load@company.org", ["alice@company.com"], msg)
            except (smtplib.SMTPException, OSError, AssertionError):
                time.sleep(0.3)
                continue
            with lock:
                accepted[tid] = qid
            break


def test_kill9_during_load(ctx):
    """200 messages while the queue-manager and agents get SIGKILL: none lost."""
    sink = ctx.sink()
    moat = ctx.moat(relay_host=sink, delivery_agents=3)
    total, nthreads = 200, 4
    accepted, lock = {}, threading.Lock()
    stop_at = time.monotonic() + 150
    tids = [f"load-{n:03d}" for n in range(total)]
    threads = [threading.Thread(target=_load_worker,
                                args=(moat, tids[k::nthreads], accepted, lock, stop_at),
                                daemon=True) for k in range(nthreads)]
    for t in threads:
        t.start()

    def n_accepted():
        with lock:
            return len(accepted)

    killed = []
    wait_until(lambda: n_accepted() >= 40, 60, "40 accepted messages")
    q = moat.wait_role("qmgr")
    os.kill(q.pid, signal.SIGKILL)
    killed.append(f"queue-manager {q.pid} after {n_accepted()} accepted")
    moat.wait_role("qmgr", timeout=30, exclude={q.pid})

    wait_until(lambda: n_accepted() >= 120, 90, "120 accepted messages")
    agents = moat.find("relay")
    assert agents, "no relay delivery agent to kill"
    for a in agents:
        os.kill(a.pid, signal.SIGKILL)
    killed.append(f"delivery agents {[a.pid for a in agents]} after {n_accepted()} accepted")
    moat.wait_role("relay", timeout=30, exclude={a.pid for a in agents})

    for t in threads:
        t.join(max(0.0, stop_at - time.monotonic()) + 5)
    with lock:
        want = dict(accepted)
    assert len(want) >= total * 0.9, f"only {len(want)} of {total} messages were accepted"

    def arrived():
        counts = {}
        for m in sink.messages():
            for v in m.header("X-Test-Id"):
                counts[v] = counts.get(v, 0) + 1
        return counts
    try:
        wait_until(lambda: all(t in arrived() for t in want), 120,
                   "every accepted message at the sink", interval=1.0)
    except AssertionError:
        counts = arrived()
        lost = sorted(f"{t} (id={want[t]})" for t in want if t not in counts)
        raise AssertionError(f"{len(lost)} accepted message(s) never arrived: {lost[:20]}")
    counts = arrived()
    dups = {t: c for t, c in counts.items() if c > 1}
    ctx.note(f"{len(want)} of {total} accepted, all delivered; killed {'; '.join(killed)}; "
             f"{sum(c - 1 for c in dups.values())} duplicate deliveries")


test_kill9_during_load.timeout = 330

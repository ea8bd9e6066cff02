"""
test_moatctl_ops.py: operating the queue with moatctl: listing with
filters, hold/release/delete/retry/bounce (and --dry-run), pause/resume of
a destination, stats (also as Prometheus text), shape, who may do what,
and the audit trail of every change and refusal.
"""
import json
import re
import stat
import time

from moat_harness import make_message, skip_unless_root, stays_false, wait_until


def _ctl(moat, *args, ok=True, **kw):
    r = moat.moatctl(*args, **kw)
    if ok:
        assert r.returncode == 0, \
            f"moatctl {' '.join(args)}: exit {r.returncode}\n{r.stdout}{r.stderr}"
    return r


def _json(moat, *args, **kw):
    r = _ctl(moat, *args, "--json", **kw)
    try:
        return json.loads(r.stdout)
    except ValueError as e:
        raise AssertionError(f"moatctl {' '.join(args)} --json is not JSON ({e}):\n{r.stdout}")


def _ids(moat, *filters):
    return {m["id"] for m in _json(moat, "queue", *filters)["messages"]}


def _until_result(moat, cmd, qid, want, timeout=20):
    """Run a change until it reports want (a message may be in delivery)."""
    def done():
        doc = _json(moat, cmd, qid)
        return doc["results"][0]["result"] == want and doc
    return wait_until(done, timeout, f"moatctl {cmd} {qid} to report {want!r}")


def _two_deferred(ctx, **settings):
    """A next hop that answers 450 to RCPT, and two messages deferred by it."""
    sink = ctx.sink("-r", "RCPT")
    moat = ctx.moat(relay_host=sink, **settings)
    m1 = moat.send("bob@company.org", ["alice@deferred.example"],
                   make_message([("Subject", "first"), ("X-Test-Id", "ops-1")],
                                ["the body of the first message"]))
    m2 = moat.send("carol@other.org", ["dave@hold.example"],
                   make_message([("Subject", "second")], ["second body"]))
    wait_until(lambda: _ids(moat, "--state", "deferred") >= {m1, m2}, 30,
               "both messages to be listed as deferred")
    return sink, moat, m1, m2


def test_moatctl_ops_filters_and_changes(ctx):
    """queue filters, hold/release/retry/bounce/delete, --dry-run, show parts, audit."""
    sink, moat, m1, m2 = _two_deferred(ctx)

    # Table and JSON listings agree; the JSON schema is the documented one.
    doc = _json(moat, "queue")
    assert doc["count"] == 2 and {m["id"] for m in doc["messages"]} == {m1, m2}, doc
    one = [m for m in doc["messages"] if m["id"] == m1][0]
    for key in ("arrival", "age", "size", "sender", "state", "held", "paused", "nrcpt",
                "recipients", "last_error"):
        assert key in one, f"queue --json message lacks {key}: {one}"
    assert one["sender"] == "bob@company.org" and one["recipients"] == ["alice@deferred.example"]
    assert "4.3.0" in one["last_error"] and one["held"] is False, one
    text = _ctl(moat, "queue").stdout
    assert re.search(r"^ID\s+AGE\s+SIZE\s+SENDER\s+RCPTS\s+STATE\s+LAST ERROR", text, re.M), text

    # hold: the held message is never scheduled again.
    doc = _until_result(moat, "hold", m2, "held")
    assert doc == {"command": "hold", "dry_run": False, "changed": 1,
                   "results": [{"id": m2, "result": "held"}]}, doc
    assert _ids(moat, "--state", "held") == {m2}
    assert m2 not in _ids(moat, "--state", "deferred")
    assert re.search(rf"^{m2}\s.*\sheld\s", _ctl(moat, "queue").stdout, re.M)
    # An attempt under way when the hold came finishes first.
    wait_until(lambda: _json(moat, "show", m2)["recipients"][0]["state"] != "active", 15,
               f"the attempt in progress for {m2} to end")
    attempts = _json(moat, "show", m2)["recipients"][0]["attempts"]
    time.sleep(4)      # backoff is 1-2 s: a scheduled message would be tried again
    assert _json(moat, "show", m2)["recipients"][0]["attempts"] == attempts, \
        "a held message was tried again"

    # Filters.
    assert _ids(moat, "--from", "carol@other.org") == {m2}
    assert _ids(moat, "--from", "<bob@company.org>") == {m1}
    assert _ids(moat, "--to", "alice@deferred.example") == {m1}
    assert _ids(moat, "--domain", "HOLD.example") == {m2}
    assert _ids(moat, "--reason", "4.3.0") == {m1, m2}
    assert _ids(moat, "--reason", "no such text anywhere") == set()
    assert _ids(moat, "--older-than", "2h") == set()
    assert _ids(moat, "--older-than", "0s", "--state", "held") == {m2}
    assert _ctl(moat, "queue", "--count").stdout.strip() == "2"
    assert _json(moat, "queue", "--count", "--state", "held") == {"count": 1}
    r = _ctl(moat, "queue", "--older-than", "2 hours", ok=False)
    assert r.returncode == 2, f"a bad duration: exit {r.returncode}\n{r.stderr}"
    r = _ctl(moat, "queue", "--state", "sleeping", ok=False)
    assert r.returncode == 2, f"a bad state: exit {r.returncode}\n{r.stderr}"

    # --dry-run lists and changes nothing.
    doc = _json(moat, "delete", "--all", "--state", "held", "--dry-run")
    assert doc["dry_run"] is True and doc["results"] == [{"id": m2, "result": "would delete"}]
    r = _ctl(moat, "delete", "--all", "--dry-run")
    assert "would delete" in r.stdout and "nothing changed" in r.stdout, r.stdout
    assert _ids(moat) == {m1, m2}, "--dry-run changed the queue"
    r = _ctl(moat, "delete", ok=False)
    assert r.returncode == 2, "delete without ids or --all must be a usage error"

    # show: envelope and recipients; --headers / --body stream the message.
    doc = _json(moat, "show", m1)
    assert doc["id"] == m1 and doc["sender"] == "bob@company.org", doc
    rc = doc["recipients"][0]
    assert rc["recipient"] == "alice@deferred.example" and rc["state"] in ("deferred", "active")
    assert rc["attempts"] >= 1 and "4.3.0" in rc["last_reply"], rc
    hdr = _ctl(moat, "show", m1, "--headers").stdout
    body = _ctl(moat, "show", m1, "--body").stdout
    assert "Subject: first" in hdr and "X-Test-Id: ops-1" in hdr, hdr
    assert "the body of the first message" not in hdr, hdr
    assert "the body of the first message" in body and "Subject:" not in body, body
    doc = _json(moat, "show", m1, "--body")
    assert doc["part"] == "body" and "the body of the first message" in doc["data"], doc
    r = _ctl(moat, "show", "0123456789ABCDEF", ok=False)
    assert r.returncode == 3, f"show of an unknown id: exit {r.returncode}"

    # retry: due now.
    r = _ctl(moat, "retry", m1, "0123456789ABCDEF", "--json", ok=False)
    assert r.returncode == 3, f"an unknown id among others: exit {r.returncode}"
    doc = json.loads(r.stdout)
    results = {x["id"]: x["result"] for x in doc["results"]}
    assert results["0123456789ABCDEF"] == "no such message", doc
    assert results[m1] in ("retried", "nothing waiting"), doc

    # release, and hold again so that bounce and delete find them idle.
    _until_result(moat, "release", m2, "released")
    assert _ids(moat, "--state", "held") == set()
    _until_result(moat, "hold", m2, "held")
    _until_result(moat, "hold", m1, "held")

    # bounce: the DSN is queued (to the deferring next hop) as m1 leaves.
    _until_result(moat, "bounce", m1, "bounced")
    moat.wait_log(rf"id={m1} bounce_id=[0-9A-F]{{16}} status=bounce-queued")
    bounces = _json(moat, "queue", "--state", "bounce")["messages"]
    assert len(bounces) == 1 and bounces[0]["sender"] == "" and \
        bounces[0]["recipients"] == ["bob@company.org"], bounces
    assert m1 not in _ids(moat)
    dsn = _ctl(moat, "show", bounces[0]["id"], "--body").stdout
    assert "returned by the administrator" in dsn, dsn[:2000]

    # delete.
    _until_result(moat, "delete", m2, "deleted")
    assert m2 not in _ids(moat)
    moat.wait_log(rf"id={m2} status=deleted by=0\b")

    # The audit trail: table, log and moatctl audit.
    entries = _json(moat, "audit")["entries"]
    seen = {(e["command"], tuple(e["ids"])) for e in entries if e["result"] == "ok"}
    for want in (("hold", (m2,)), ("release", (m2,)), ("bounce", (m1,)), ("delete", (m2,))):
        assert want in seen, f"audit lacks {want}: {entries}"
    assert all(e["uid"] == 0 for e in entries), entries
    moat.wait_log(rf"control=audit uid=0 cmd=hold ids={m2}\b")
    moat.wait_log(rf"control=audit uid=0 cmd=delete ids={m2}\b")
    text = _ctl(moat, "audit").stdout
    assert re.search(r"^TIME\s+UID\s+COMMAND\s+RESULT\s+IDS", text, re.M), text
    assert re.search(rf"\sbounce\s+ok\s+{m1}\b", text), text
    # Dry runs change nothing and are not audited: one delete entry only.
    assert [e["ids"] for e in entries if e["command"] == "delete"] == [[m2]], entries

    # shape and stats, table and JSON.
    shape = _json(moat, "shape")
    assert shape["columns"][:2] == ["T", "5m"] and shape["columns"][-1] == "1280m+", shape
    total = shape["rows"][0]
    assert total["domain"] == "TOTAL" and total["T"] == 1 and total["5m"] == 1, shape
    assert re.search(r"^DOMAIN\s+T\s+5m\s+10m.*1280m\+$", _ctl(moat, "shape").stdout, re.M)
    st = _json(moat, "stats")
    assert st["queue"]["total"] == 1 and st["queue"]["deferred"] + st["queue"]["queued"] \
        + st["queue"]["active"] == 1, st
    assert st["total"]["messages_in"] == 3, st       # two messages and the DSN
    assert st["total"]["messages_out"] == 2 and st["total"]["bounced"] == 1, st
    assert st["total"]["deferred"] >= 2 and st["last_hour"]["messages_in"] == 3, st
    assert any("4.3.0" in t["reason"] for t in st["top_deferral_reasons"]), st
    assert st["top_destinations"] == [{"domain": "company.org", "count": 1}], st
    assert "TOP DEFERRAL REASONS" in _ctl(moat, "stats").stdout
test_moatctl_ops_filters_and_changes.timeout = 150


def test_moatctl_ops_permissions(ctx):
    """A caller outside admin_group is refused changes, logged and audited;
    readonly_group may look but not change or read message contents."""
    skip_unless_root()
    sink, moat, m1, m2 = _two_deferred(ctx, readonly_group="users")
    # With a readonly_group moatd makes the socket 0666 root:admin_group:
    # the queue-manager's SO_PEERCRED/SO_PEERGROUPS check, not the file
    # mode, is what refuses.
    st = (moat.run_dir / "control.sock").stat()
    assert stat.S_IMODE(st.st_mode) == 0o666 and st.st_uid == 0, oct(st.st_mode)

    r = _ctl(moat, "hold", m1, user="nobody", ok=False)
    assert r.returncode == 1 and "permission denied" in r.stderr, r
    r = _ctl(moat, "queue", user="nobody", ok=False)
    assert r.returncode == 1 and m1 not in r.stdout, r
    moat.wait_log(r"control=refused uid=65534 cmd=hold\b")
    moat.wait_log(r"control=refused uid=65534 cmd=list\b")

    ro = dict(user="nobody", groups=["users"])
    assert {m1, m2} <= {m["id"] for m in _json(moat, "queue", **ro)["messages"]}
    assert _json(moat, "show", m1, **ro)["id"] == m1
    _json(moat, "stats", **ro)
    _json(moat, "shape", **ro)
    for args in (("show", m1, "--headers"), ("show", m1, "--body"), ("delete", m1),
                 ("pause", "deferred.example"), ("audit",)):
        r = _ctl(moat, *args, ok=False, **ro)
        assert r.returncode == 1 and "permission denied" in r.stderr, (args, r)
    moat.wait_log(r"control=refused uid=65534 cmd=delete\b")
    assert _ids(moat) >= {m1, m2}, "a refused delete removed a message"

    # The admin group may change.
    adm = dict(user="nobody", groups=["moat-admin"])
    assert _json(moat, "hold", m1, **adm)["results"][0]["result"] in ("held",)
    moat.wait_log(rf"control=audit uid=65534 cmd=hold ids={m1}\b")

    entries = _json(moat, "audit")["entries"]
    refused = [(e["command"], e["uid"]) for e in entries if e["result"] == "refused"]
    for cmd in ("hold", "delete", "pause"):
        assert (cmd, 65534) in refused, f"refused {cmd} not audited: {entries}"
    assert ("hold", 65534) in [(e["command"], e["uid"]) for e in entries
                               if e["result"] == "ok"], entries
test_moatctl_ops_permissions.timeout = 120


def test_moatctl_ops_pause_resume(ctx):
    """Mail to a paused domain waits while other mail flows; resume sends it."""
    sink = ctx.sink()
    moat = ctx.moat(relay_host=sink)
    doc = _json(moat, "pause", "Paused.Example")
    assert doc == {"command": "pause", "domain": "paused.example", "result": "paused"}, doc
    assert "already paused" in _ctl(moat, "pause", "paused.example").stdout
    held = moat.send("bob@company.org", ["x@paused.example"],
                     make_message([("X-Test-Id", "paused")], ["waits"]))
    moat.send("bob@company.org", ["y@other.example"],
              make_message([("X-Test-Id", "flows")], ["goes"]))
    msgs = sink.wait_messages(1, timeout=30)
    assert msgs[0].header("X-Test-Id") == ["flows"], msgs[0].headers
    assert stays_false(lambda: sink.count() > 1, 4), "mail to a paused domain was delivered"
    doc = _json(moat, "queue")
    assert [m["id"] for m in doc["messages"]] == [held] and doc["messages"][0]["paused"], doc
    assert re.search(rf"^{held}\s.*\squeued\*", _ctl(moat, "queue").stdout, re.M)
    st = _json(moat, "stats")
    assert [p["domain"] for p in st["paused_domains"]] == ["paused.example"], st
    assert "paused.example" in _ctl(moat, "stats").stdout

    # A restart keeps the pause (it lives in the database).
    moat.stop()
    moat.start()
    assert stays_false(lambda: sink.count() > 1, 3), "the pause did not survive a restart"

    assert _json(moat, "resume", "paused.example")["result"] == "resumed"
    msgs = sink.wait_messages(2, timeout=30)
    assert sorted(m.header("X-Test-Id")[0] for m in msgs) == ["flows", "paused"]
    wait_until(lambda: not _ids(moat), 15, "the queue to empty after resume")
    assert "not paused" in _ctl(moat, "resume", "paused.example").stdout
    cmds = [e["command"] for e in _json(moat, "audit")["entries"]]
    assert cmds.count("pause") == 2 and cmds.count("resume") == 2, cmds
test_moatctl_ops_pause_resume.timeout = 120


def _parse_prometheus(text):
    """A small parser of the text exposition format: {(name, labels): value},
    and each family's TYPE; raises on any line it does not understand."""
    samples, types, helps = {}, {}, set()
    line_re = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*)="'
                         r'((?:[^"\\]|\\.)*)"\})? (-?[0-9]+(?:\.[0-9]+)?)$')
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helps.add(line.split(" ")[2])
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("counter", "gauge"), line
            types[name] = kind
        else:
            m = line_re.match(line)
            assert m, f"not an exposition line: {line!r}"
            name = m.group(1)
            assert name in types and name in helps, f"{name} has no # TYPE/# HELP before it"
            labels = ((m.group(3), m.group(4)),) if m.group(2) else ()
            samples[(name, labels)] = float(m.group(5))
    return samples, types


def test_moatctl_ops_prometheus(ctx):
    """stats --prometheus parses and its counters match the mail sent."""
    sink = ctx.sink()
    moat = ctx.moat(relay_host=sink)
    sizes = []
    for i in range(3):
        rcpts = ["a@one.example", "b@two.example"] if i == 0 else ["c@one.example"]
        qid = moat.send("bob@company.org", rcpts,
                        make_message([("X-N", str(i))], ["line"] * (10 * (i + 1))))
        sizes.append(int(moat.wait_log(rf"id={qid}\b.*size=(\d+)").group(1)))
    sink.wait_messages(3, timeout=30)
    wait_until(lambda: not _ids(moat), 20, "the queue to empty")
    samples, types = _parse_prometheus(_ctl(moat, "stats", "--prometheus").stdout)
    for name, kind in types.items():
        assert name.startswith("moat_"), name
        assert name.endswith("_total") == (kind == "counter"), (name, kind)

    def v(name, *labels):
        return samples[(name, tuple(labels))]
    assert v("moat_messages_in_total") == 3
    assert v("moat_messages_out_total") == 3
    assert v("moat_bytes_in_total") == sum(sizes) == v("moat_bytes_out_total")
    assert v("moat_deliveries_total", ("result", "sent")) == 4
    assert v("moat_deliveries_total", ("result", "deferred")) == 0
    assert v("moat_deliveries_total", ("result", "bounced")) == 0
    for state in ("queued", "active", "deferred", "held"):
        assert v("moat_queue_messages", ("state", state)) == 0
    assert v("moat_queue_oldest_message_age_seconds") == 0
    assert v("moat_paused_domains") == 0
    st = _json(moat, "stats")
    assert st["last_hour"]["messages_in"] == 3 and st["last_hour"]["sent"] == 4, st
test_moatctl_ops_prometheus.timeout = 90

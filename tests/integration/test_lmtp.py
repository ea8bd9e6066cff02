"""
test_lmtp.py: the relay agent as an LMTP client (RFC 2033) against a real
LMTP server (aiosmtpd's LMTP), routed there by transport_maps: LHLO, one
transaction for all recipients, and one reply per recipient after DATA,
each recorded on its own.  A recipient the server refuses bounces, and the
bounce (an RFC 3464 report, parsed with Python's email package) names it.
"""
import os

from moat_harness import wait_until
from test_routing import Downstream, bounce_for, dsn_fields, free_port_on, message


def test_lmtp_three_recipients_one_refused(ctx):
    """Three recipients over LMTP; the server refuses one after DATA."""
    port = free_port_on("127.0.0.1")
    lmtp = Downstream(ctx, "127.0.0.1", port, lmtp=True, refuse=("dave@lmtp.test",),
                      refuse_data=("bob@lmtp.test",))
    tmap = ctx.dir / "transport"
    tmap.write_text(f"lmtp.test lmtp:[127.0.0.1]:{port}\n")
    os.chmod(ctx.dir, 0o755)
    os.chmod(tmap, 0o644)
    moat = ctx.moat(transport_maps=str(tmap), relay_tls="none")
    rcpts = ["alice@lmtp.test", "bob@lmtp.test", "carol@lmtp.test"]
    qid = moat.send("postmaster@localhost", rcpts, message("lmtp"))

    msg = lmtp.wait(1)[0]
    assert sorted(msg[1]) == ["alice@lmtp.test", "carol@lmtp.test"], msg[1]
    assert lmtp.count() == 1, "the three recipients did not share one transaction"
    relay = rf"relay=127\.0\.0\.1\[127\.0\.0\.1\]:{port}"
    moat.wait_log(rf"id={qid} {relay} event=connect proto=lmtp", what="an LMTP connection")
    for r in ("alice", "carol"):
        moat.wait_log(rf"id={qid} to=<{r}@lmtp\.test> {relay} dsn=2\.0\.0 status=sent "
                      rf"\(250 2\.0\.0 <{r}@lmtp\.test> delivered\)", what=f"{r} delivered")
    moat.wait_log(rf"id={qid} to=<bob@lmtp\.test> {relay} dsn=5\.2\.2 status=bounced "
                  rf"\(host .* said: 552 5\.2\.2 <bob@lmtp\.test> mailbox full "
                  rf"\(in reply to end of DATA command\)\)", what="bob bounced after DATA")

    bounce = bounce_for(moat, 1)
    fields = dsn_fields(bounce)
    assert "bob@lmtp.test" in fields, fields
    assert "alice@lmtp.test" not in fields and "carol@lmtp.test" not in fields, fields
    assert "5.2.2" in fields and "failed" in fields.lower(), fields
    wait_until(lambda: qid not in moat.queue_ids(), 20, f"{qid} to leave the queue")

    # A recipient refused at RCPT: the others still go in one transaction.
    qid = moat.send("postmaster@localhost", ["dave@lmtp.test", "erin@lmtp.test"],
                    message("lmtp rcpt refused"))
    msg = lmtp.wait(2)[1]
    assert msg[1] == ["erin@lmtp.test"], msg[1]
    moat.wait_log(rf"id={qid} to=<dave@lmtp\.test> {relay} dsn=5\.1\.1 status=bounced",
                  what="dave refused at RCPT")
    fields = dsn_fields(bounce_for(moat, 2))
    assert "dave@lmtp.test" in fields and "erin@lmtp.test" not in fields, fields

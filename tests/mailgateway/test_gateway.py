"""The mail gateway, fed with real SMTP sessions (smtplib) to its aiosmtpd server."""

import base64
import re
import smtplib
import sqlite3
import time
from email.message import EmailMessage
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

import pytest
from django.contrib.auth.models import Group
from django.db import connections
from django.db.backends.signals import connection_created
from django.test import Client
from django.utils import timezone

from interactions.models import Interaction
from mailgateway.models import InboundEmail
from mailgateway.parsing import BODY_MAX_CHARS
from notifications.models import Notification
from tests.factories import CustomerFactory

from .conftest import DOMAIN, accepted_for, address_of, send

pytestmark = pytest.mark.django_db(transaction=True)


def message(
    subject="Quote",
    body="Here is the quote.",
    sender="rep_a@example.com",
    to="alice@customer.example",
    cc=None,
    message_id="<m1@example.com>",
):
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = sender, to, subject
    if cc:
        mail["Cc"] = cc
    if message_id:
        mail["Message-ID"] = message_id
    mail["Date"] = "Tue, 10 Mar 2026 09:30:00 +0800"
    mail.set_content(body)
    return mail.as_bytes()


def test_a_bcc_logs_an_email_interaction_on_each_customer_of_the_user(gateway, people):
    raw = message(to="alice@customer.example, bob@customer.example", cc="CAROL@customer.example")

    code, text = send(gateway, address_of(people["rep_a"]), raw)

    assert (code, text) == (250, "OK: logged on 2 customer(s)")
    logged = Interaction.objects.order_by("customer__name")
    # Bob is rep B's: rep A's mail is not logged in another book.
    assert [i.customer.name for i in logged] == ["Alice Ltd", "Carol SA"]
    first = logged[0]
    assert first.interaction_type == Interaction.Type.EMAIL
    assert first.notes == "Quote\n\nHere is the quote."
    assert first.created_by == people["rep_a"]
    assert first.occurred_at.isoformat() == "2026-03-10T01:30:00+00:00"
    assert first.history.get().history_user == people["rep_a"]
    inbound = InboundEmail.objects.get()
    assert (inbound.user, inbound.status, inbound.message_id) == (people["rep_a"], "logged", "<m1@example.com>")
    assert inbound.interactions.count() == 2


def test_the_same_message_is_logged_once(gateway, people):
    raw = message()
    assert send(gateway, address_of(people["rep_a"]), raw)[0] == 250
    assert send(gateway, address_of(people["rep_a"]), raw) == (250, "OK: already logged")
    # The manager's copy of the same mail: Alice already has it.
    assert send(gateway, address_of(people["manager"]), raw) == (250, "OK: kept for you to assign")
    assert Interaction.objects.count() == 1


def test_a_manager_logs_on_any_customer(gateway, people):
    send(gateway, address_of(people["manager"]), message(to="bob@customer.example"))
    assert Interaction.objects.get().customer == people["bob"]


@pytest.mark.parametrize(
    "rcpt",
    [
        "nobody@" + DOMAIN,
        "{token}@elsewhere.example",
        "{token}x@" + DOMAIN,
        "not-an-address",
        "@" + DOMAIN,
        # PostgreSQL refuses a NUL in a text parameter: it answered 451 (try again), for ever.
        "{token}\x00@" + DOMAIN,
    ],
)
def test_unknown_gateway_addresses_are_refused_at_rcpt(gateway, people, rcpt):
    token = address_of(people["rep_a"]).split("@")[0]
    code, text = send(gateway, rcpt.format(token=token), message())
    assert code == 550 or code == 501 or code == 553, (code, text)
    assert not InboundEmail.objects.exists()


def test_users_who_may_not_write_have_no_working_address(gateway, people):
    reader = address_of(people["reader"])
    inactive = address_of(people["rep_b"])
    people["rep_b"].is_active = False
    people["rep_b"].save()
    assert send(gateway, reader, message())[0] == 550
    assert send(gateway, inactive, message())[0] == 550


def test_a_forged_sender_picks_nobody_only_the_gateway_address_does(gateway, people):
    # Claims to come from rep B and mentions rep B's customer, sent to rep A's address.
    raw = message(sender="rep_b@example.com", to="bob@customer.example")

    assert send(gateway, address_of(people["rep_a"]), raw, sender="rep_b@example.com") == (
        250,
        "OK: kept for you to assign",
    )
    inbound = InboundEmail.objects.get()
    assert (inbound.user, inbound.status) == (people["rep_a"], "unmatched")
    assert not Interaction.objects.exists()
    notification = Notification.objects.get()
    assert notification.recipient == people["rep_a"] and notification.kind == "email.unmatched"


def test_one_message_to_two_users_is_logged_for_each(gateway, people):
    raw = message(to="alice@customer.example, bob@customer.example")
    code, text = send(gateway, [address_of(people["rep_a"]), address_of(people["rep_b"])], raw)
    assert (code, text) == (250, "OK: logged on 2 customer(s)")
    assert {(i.customer.name, i.created_by.username) for i in Interaction.objects.all()} == {
        ("Alice Ltd", "rep_a"),
        ("Bob GmbH", "rep_b"),
    }


def test_chinese_subjects_and_gb2312_gbk_utf8_bodies(gateway, people):
    # GB2312 subject in RFC 2047 base64; the body is labelled GB2312 but has a GBK-only character (镕).
    subject = "=?GB2312?B?" + __import__("base64").b64encode("报价单".encode("gb2312")).decode() + "?="
    body = "您好，附上报价。朱镕基".encode("gbk")
    raw = (
        b"From: rep_a@example.com\r\nTo: alice@customer.example\r\nSubject: " + subject.encode() + b"\r\n"
        b"Message-ID: <gb@example.com>\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=GB2312\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + body + b"\r\n"
    )
    assert send(gateway, address_of(people["rep_a"]), raw)[0] == 250
    assert Interaction.objects.get().notes == "报价单\n\n您好，附上报价。朱镕基"

    utf8 = MIMEText("合同已签署，谢谢！", "plain", "utf-8")
    utf8["Subject"], utf8["From"], utf8["To"] = "=?UTF-8?B?5ZCI5ZCM?=", "rep_a@example.com", "carol@customer.example"
    utf8["Message-ID"] = "<utf8@example.com>"
    assert send(gateway, address_of(people["rep_a"]), utf8.as_bytes())[0] == 250
    assert Interaction.objects.get(customer=people["carol"]).notes == "合同\n\n合同已签署，谢谢！"


def test_html_only_mail_is_converted_to_text(gateway, people):
    html = MIMEText(
        "<html><head><style>p{color:red}</style></head><body><p>Dear Alice,</p><p>Price: 5&nbsp;&euro;</p>"
        "<ul><li>one</li><li>two</li></ul><script>alert(1)</script></body></html>",
        "html",
        "utf-8",
    )
    html["From"], html["To"], html["Subject"], html["Message-ID"] = "x@y.z", "alice@customer.example", "H", "<h@x>"
    send(gateway, address_of(people["rep_a"]), html.as_bytes())
    assert Interaction.objects.get().notes == "H\n\nDear Alice,\n\nPrice: 5 €\n\n- one\n- two"


@pytest.mark.parametrize("unfinished", ["<!--", "</", "<?", "<a b='"])
def test_html_left_unfinished_many_times_over_is_read_in_linear_time(gateway, people, unfinished):
    # Python's HTMLParser.close() reads what is left unfinished at the end one character at a time,
    # searching to the end each time: 400 KB of "<!--" took minutes of the gateway's CPU, and 10 MB days.
    html = MIMEText("<p>Dear Alice,</p>" + unfinished * (400_000 // len(unfinished)), "html", "utf-8")
    html["From"], html["To"], html["Subject"], html["Message-ID"] = "x@y.z", "alice@customer.example", "H", "<u@x>"
    started = time.monotonic()
    assert send(gateway, address_of(people["rep_a"]), html.as_bytes())[0] == 250
    assert time.monotonic() - started < 5
    # An unfinished comment, tag or declaration at the end is dropped, as HTML5 does at the end of a file.
    assert Interaction.objects.get().notes == "H\n\nDear Alice,"


def _folded(name, value, width=900):
    """A header line of ``value`` folded into lines that SMTP carries (under 1,000 characters)."""
    return name + b": " + b"\r\n ".join(value[i : i + width] for i in range(0, len(value), width)) + b"\r\n"


@pytest.mark.parametrize(
    "header",
    [
        _folded(b"To", b'"' * 300_000),
        _folded(b"Cc", b'alice@customer.example, "' + b'"' * 300_000),
        _folded(b"Content-Type", b'text/plain; a="' + b'"' * 300_000),
    ],
    ids=["to-of-quotes", "cc-of-quotes", "content-type-of-quotes"],
)
def test_a_huge_header_is_read_in_linear_time(gateway, people, header):
    # email.policy.default parses address lists and MIME parameters with a parser whose time grows
    # with the square of some values: 300 KB of folded quotes took minutes, 10 MB hours.
    raw = b"From: alice@customer.example\r\nSubject: Big\r\nMessage-ID: <big@x>\r\n" + header + b"\r\nThe text.\r\n"
    started = time.monotonic()
    assert send(gateway, address_of(people["rep_a"]), raw)[0] == 250
    assert time.monotonic() - started < 5
    assert Interaction.objects.get().notes == "Big\n\nThe text."


def test_attachments_are_ignored(gateway, people):
    mail = MIMEMultipart()
    mail["From"], mail["To"], mail["Subject"], mail["Message-ID"] = "x@y.z", "alice@customer.example", "A", "<a@x>"
    mail.attach(MIMEText("The text.", "plain", "utf-8"))
    mail.attach(MIMEApplication(b"%PDF-1.4 binary \x00\xff", "pdf", Name="quote.pdf"))
    notes = MIMEText("attached notes, not the body", "plain", "utf-8")
    notes.add_header("Content-Disposition", "attachment", filename="notes.txt")
    mail.attach(notes)
    assert send(gateway, address_of(people["rep_a"]), mail.as_bytes())[0] == 250
    assert Interaction.objects.get().notes == "A\n\nThe text."


def test_a_message_over_10_mb_is_refused_with_552(gateway, people, settings):
    big = message(body=("x" * 76 + "\n") * (10 * 1024 * 1024 // 77 + 10))
    rcpt = address_of(people["rep_a"])
    # smtplib declares the SIZE: refused before the data is sent.
    with smtplib.SMTP("127.0.0.1", gateway.port, timeout=60) as client, pytest.raises(smtplib.SMTPSenderRefused) as e:
        client.sendmail("x@y.z", [rcpt], big)
    assert e.value.smtp_code == 552
    # Without SIZE, refused once the data has come in.
    code, text = send(gateway, rcpt, big)
    assert code == 552, text
    assert not InboundEmail.objects.exists()
    # The server is still there.
    assert send(gateway, rcpt, message())[0] == 250


@pytest.mark.parametrize(
    "raw",
    [
        b"this is not a mail at all \xff\xfe\x00",
        b"From: <<<>>>\r\nTo: alice@customer.example\r\nContent-Type: multipart/mixed\r\n\r\nno boundary at all",
        b"From: a@b.c\r\nTo: alice@customer.example\r\nSubject: =?x-klingon?B?AAAA?=\r\n"
        b"Content-Type: text/plain; charset=x-unknown-charset\r\n\r\n\xc3\xa9t\xc3\xa9 caf\xe9",
        b"From: a@b.c\r\nTo: alice@customer.example\r\nContent-Type: multipart/alternative; boundary=zz\r\n\r\n"
        b"--zz\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64"
        b"\r\n--zz",
        b"Subject: " + b"=?utf-8?q?AAAA?=\r\n " * 2000 + b"\r\nTo: " + b"a@b.c,\r\n " * 2000 + b"\r\n\r\nbody",
    ],
    ids=["garbage", "no-boundary", "unknown-charsets", "bad-base64", "huge-headers"],
)
def test_malformed_mail_gets_a_clear_answer_and_is_kept(gateway, people, raw):
    code, text = send(gateway, address_of(people["rep_a"]), raw)
    assert code == 250, text
    assert InboundEmail.objects.count() == 1
    # Without a Message-ID, the same bytes again are the same mail.
    assert send(gateway, address_of(people["rep_a"]), raw) == (250, "OK: already logged")


def test_unknown_charset_body_is_read_as_utf8(gateway, people):
    raw = (
        b"From: a@b.c\r\nTo: alice@customer.example\r\nSubject: =?x-klingon?B?AAAA?=\r\nMessage-ID: <k@x>\r\n"
        b"Content-Type: text/plain; charset=x-unknown-charset\r\n\r\n\xe4\xbd\xa0\xe5\xa5\xbd"
    )
    send(gateway, address_of(people["rep_a"]), raw)
    assert Interaction.objects.get().notes.endswith("你好")


def test_kept_mail_is_assigned_to_a_customer_in_the_admin(gateway, people):
    send(gateway, address_of(people["rep_a"]), message(to="unknown@elsewhere.example"))
    inbound = InboundEmail.objects.get()
    rep = Client()
    people["rep_a"].is_staff = True
    people["rep_a"].save()
    rep.force_login(people["rep_a"])
    url = f"/admin/mailgateway/inboundemail/{inbound.pk}/change/"

    page = rep.get(url)
    assert page.status_code == 200
    choices = [c.name for c in page.context["adminform"].form.fields["customer"].queryset]
    assert choices == ["Alice Ltd", "Carol SA"]
    # Rep B's customer is no choice of rep A's.
    assert rep.post(url, {"customer": people["bob"].pk}).status_code == 200
    assert not Interaction.objects.exists()

    assert rep.post(url, {"customer": people["carol"].pk}).status_code == 302
    logged = Interaction.objects.get()
    assert (logged.customer, logged.created_by, logged.interaction_type) == (people["carol"], people["rep_a"], "email")
    inbound.refresh_from_db()
    assert inbound.status == "assigned"


def test_a_line_over_the_smtp_limit_is_refused_clearly(gateway, people):
    code, text = send(gateway, address_of(people["rep_a"]), b"Subject: x\r\n\r\n" + b"y" * 5000)
    assert code == 500 and "Line too long" in text
    assert send(gateway, address_of(people["rep_a"]), message())[0] == 250


def test_more_than_20_recipients_are_refused_with_452(gateway, people):
    own = address_of(people["rep_a"])
    with smtplib.SMTP("127.0.0.1", gateway.port, timeout=30) as client:
        client.ehlo()
        client.mail("x@y.z")
        codes = [client.rcpt(own)[0] for _ in range(21)]
    assert codes == [250] * 20 + [452]


@pytest.fixture
def sqlite_of_999_parameters():
    """SQLite connections that take at most 999 parameters in a query, as builds before 3.32 do by default
    (later ones 32,766; this one 250,000), so that a message of a few thousand addresses goes past it."""

    def limit(sender, connection, **kwargs):
        if connection.vendor == "sqlite":
            connection.connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)

    connection_created.connect(limit)
    for connection in connections.all():  # the ones open already (the test's own, in memory)
        if connection.connection is not None:
            limit(None, connection)
    try:
        yield
    finally:
        connection_created.disconnect(limit)


def test_a_message_naming_more_addresses_than_one_query_takes_is_logged(gateway, people, sqlite_of_999_parameters):
    others = ",\r\n ".join(f"p{n}@elsewhere.example" for n in range(3_000)).encode()
    raw = (
        b"From: someone@elsewhere.example\r\nSubject: Many\r\nMessage-ID: <many@x>\r\n"
        b"To: " + others + b",\r\n alice@customer.example\r\nCc: bob@customer.example, carol@customer.example\r\n"
        b"\r\nThe text.\r\n"
    )
    assert send(gateway, address_of(people["rep_a"]), raw) == (250, "OK: logged on 2 customer(s)")
    assert sorted(i.customer.name for i in Interaction.objects.all()) == ["Alice Ltd", "Carol SA"]
    # The same mail to the manager: only Bob is left to log it on.
    assert send(gateway, address_of(people["manager"]), raw) == (250, "OK: logged on 1 customer(s)")
    assert Interaction.objects.filter(customer=people["bob"]).count() == 1


@pytest.mark.parametrize("charset", ["zlib", "base64", "hex", "rot13", "undefined"])
def test_a_charset_label_naming_no_text_encoding_is_read_as_utf8(gateway, people, charset):
    # Python knows these names, but as codecs of bytes (zlib, base64) or one that always fails (undefined).
    raw = (
        b"From: a@b.c\r\nTo: alice@customer.example\r\nMessage-ID: <c@x>\r\n"
        b"Subject: =?" + charset.encode() + b"?B?AAAA?= Offer\r\n"
        b"Content-Type: text/plain; charset=" + charset.encode() + b"\r\n\r\nCaf\xc3\xa9 au lait\r\n"
    )
    assert send(gateway, address_of(people["rep_a"]), raw) == (250, "OK: logged on 1 customer(s)")
    assert Interaction.objects.get().notes.endswith("Offer\n\nCafé au lait")


@pytest.mark.parametrize("charset", ["punycode", "idna"])
def test_a_body_labelled_with_a_domain_name_codec_is_read_in_linear_time(gateway, people, charset):
    # Python decodes punycode (and idna's "xn--" labels) in time that grows with the square of the
    # text: 400 KB on one line (base64 carries it in SMTP's short lines) took 26 s; 10 MB, hours.
    body = b"xn--x-" + b"ba" * 200_000
    raw = (
        b"From: a@b.c\r\nTo: alice@customer.example\r\nSubject: P\r\nMessage-ID: <p@x>\r\n"
        b"Content-Transfer-Encoding: base64\r\nContent-Type: text/plain; charset="
        + charset.encode()
        + b"\r\n\r\n"
        + base64.encodebytes(body)
    )
    started = time.monotonic()
    assert send(gateway, address_of(people["rep_a"]), raw)[0] == 250
    assert time.monotonic() - started < 5
    # Read as UTF-8, and cut as any long body is.
    assert Interaction.objects.get().notes == "P\n\n" + body.decode()[:BODY_MAX_CHARS]


def test_a_date_past_the_year_9999_in_utc_is_no_date(gateway, people):
    # Valid as written, but 9999-12-31 23:00 at UTC-5 is in the year 10000 in UTC, where the database keeps it.
    raw = (
        b"From: a@b.c\r\nTo: alice@customer.example\r\nSubject: D\r\nMessage-ID: <d@x>\r\n"
        b"Date: Fri, 31 Dec 9999 23:00:00 -0500\r\n\r\nThe text.\r\n"
    )
    before = timezone.now()
    assert send(gateway, address_of(people["rep_a"]), raw) == (250, "OK: logged on 1 customer(s)")
    assert InboundEmail.objects.get().sent_at is None
    assert Interaction.objects.get().occurred_at >= before


def test_an_address_with_capitals_beyond_ascii_matches_its_customer_in_any_case(gateway, people):
    # An international domain, written as the customer's address is: the database lowers both sides alike
    # (SQLite's LOWER() only lowers ASCII letters, Python's lower() every letter).
    oeko = CustomerFactory(name="Öko AG", email="Info@ÖKO.example", owner=people["rep_a"])
    raw = "From: x@y.z\r\nTo: info@ÖKO.example\r\nSubject: Öko\r\nMessage-ID: <oeko@x>\r\n\r\nHallo\r\n".encode()
    assert send(gateway, address_of(people["rep_a"]), raw) == (250, "OK: logged on 1 customer(s)")
    assert Interaction.objects.get().customer == oeko


@pytest.mark.parametrize(("charset", "body"), [("utf-7", b"Hi +2AA- there"), ("unicode-escape", b"Hi \\ud800 there")])
def test_a_body_decoding_to_half_a_surrogate_pair_is_kept_readable(gateway, people, charset, body):
    # UTF-7 and Python's escapes decode these bytes to a lone surrogate, which no database can store as
    # text: the gateway answered 451 (try again) to every retry.
    raw = (
        b"From: a@b.c\r\nTo: alice@customer.example\r\nSubject: S\r\nMessage-ID: <s@x>\r\n"
        b"Content-Type: text/plain; charset=" + charset.encode() + b"\r\n\r\n" + body + b"\r\n"
    )
    assert send(gateway, address_of(people["rep_a"]), raw) == (250, "OK: logged on 1 customer(s)")
    assert Interaction.objects.get().notes == "S\n\nHi \ufffd there"


def test_parts_nested_hundreds_deep_are_read_in_linear_time(gateway, people):
    # Python's MIME parser checks each line against the boundary of every part it is inside: 400 nested
    # parts around 100,000 lines (300 KB) took 14 s of the gateway's CPU, 10 MB would take many minutes.
    nested = b"".join(b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (n, n) for n in range(400))
    raw = (
        b"From: a@b.c\r\nTo: alice@customer.example\r\nSubject: Deep\r\nMessage-ID: <deep@x>\r\n"
        + nested
        + b"Content-Type: text/plain\r\n\r\n"
        + b"x\r\n" * 100_000
    )
    started = time.monotonic()
    assert send(gateway, address_of(people["rep_a"]), raw) == (250, "OK: logged on 1 customer(s)")
    assert time.monotonic() - started < 5
    # Its headers are read; its text, past any reason, is not.
    assert Interaction.objects.get().notes == "Deep"


@pytest.mark.parametrize("header", [b"Content-Type: text/plain", b"Content-Disposition: inline"])
def test_a_header_of_many_mime_parameters_is_read_in_linear_time(gateway, people, header):
    # email.message reads MIME parameters copying the rest of the header after each: 150,000 of them
    # (750 KB) took over 10 s of the gateway's CPU, and 10 MB would take most of an hour.
    raw = (
        b"From: a@b.c\r\nTo: alice@customer.example\r\nSubject: Params\r\nMessage-ID: <params@x>\r\n"
        b'Content-Type: multipart/mixed; boundary="zz"\r\n\r\n--zz\r\n'
        + _folded(header.split(b": ")[0], header.split(b": ")[1] + b"; a=b" * 150_000)
        + b"\r\nThe text.\r\n--zz--\r\n"
    )
    started = time.monotonic()
    assert send(gateway, address_of(people["rep_a"]), raw) == (250, "OK: logged on 1 customer(s)")
    assert time.monotonic() - started < 5
    assert Interaction.objects.get().notes == "Params\n\nThe text."


@pytest.mark.parametrize("name", [b"Subject", b"Message-ID", b"Date"])
@pytest.mark.parametrize("words", [b"=?utf-8?q?a?= ", b'"a" '], ids=["encoded-words", "quoted-words"])
def test_a_huge_one_line_header_is_read_in_linear_time(gateway, people, name, words):
    # email.policy.default reads an unstructured header in time that grows with the square of its words:
    # a Subject of 300 KB of encoded words took 31 s of the gateway's CPU, 10 MB would take hours.
    headers = {b"Subject": b"S", b"Message-ID": b"<h@x>", b"Date": b"Tue, 10 Mar 2026 09:30:00 +0800"}
    headers[name] = words * (300_000 // len(words))
    raw = (
        b"From: a@b.c\r\nTo: alice@customer.example\r\n"
        + b"".join(_folded(key, value) for key, value in headers.items())
        + b"\r\nThe text.\r\n"
    )
    started = time.monotonic()
    assert send(gateway, address_of(people["rep_a"]), raw)[0] == 250
    assert time.monotonic() - started < 5
    notes = Interaction.objects.get().notes
    assert notes.endswith("\n\nThe text.") and len(notes) <= 998 + len("\n\nThe text.")


@pytest.mark.parametrize("change", ["deactivated", "read-only"])
def test_a_user_whose_rights_end_between_rcpt_and_data_has_nothing_logged(gateway, people, change):
    # The address was accepted at RCPT; the user is deactivated (or made read-only) before the message arrives.
    rep = people["rep_a"]
    raw = re.sub(rb"(?<!\r)\n", b"\r\n", message())
    with accepted_for(gateway, rep) as client:
        if change == "deactivated":
            rep.is_active = False
            rep.save()
        else:
            rep.groups.set([Group.objects.get(name="Read-only")])
        code, text = client.data(raw)

    assert (code, text.decode()) == (550, "5.1.1 No such gateway address")
    assert not InboundEmail.objects.exists() and not Interaction.objects.exists()

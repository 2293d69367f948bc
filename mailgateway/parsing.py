"""Reading a received message, whatever state it arrives in: never an exception, at worst less text.

Headers are decoded per RFC 2047 (``=?GB2312?B?...?=`` subjects); bodies in the
charset they declare, with the common mislabels read generously (GB2312 text is
often GBK or GB18030, so GB18030, their superset, reads all three); an unknown or
wrong charset falls back to UTF-8 with replacement characters. Attachments are
skipped; a message with only HTML is converted to text.
"""

import codecs
import email
import email.policy
import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.header import decode_header
from email.parser import BytesParser
from email.policy import Compat32
from email.utils import getaddresses, parsedate_to_datetime
from html import unescape
from html.parser import HTMLParser

# Charset labels read with a wider codec than they name (a superset that decodes the same bytes the same way).
WIDER_CHARSETS = {"gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "euc-cn": "gb18030", "ascii": "utf-8"}
# Codecs of domain names, which no mail is written in, read as UTF-8: Python decodes them in time that grows
# with the square of the text (a 10 MB body labelled punycode would hold the gateway for hours).
NOT_CHARSETS = {"punycode", "idna"}
SURROGATES = re.compile("[\ud800-\udfff]")
# Python's MIME parser checks each line against the boundary of every part it is inside, in time that grows
# with lines times depth (10 MB of lines inside 500 nested parts: minutes). A message whose count of
# "boundary" (a bound on its depth) times its lines passes this is read for its headers only.
MAX_BOUNDARY_LINES = 20_000_000
# MIME parameters are read from this much of a Content-Type or Content-Disposition (real ones take a few
# hundred characters): email.message copies the rest of the header after each parameter it reads, in time
# that grows with the square of their number (10 MB of "; a=b": most of an hour).
PARAMETER_HEADER_MAX = 8_000
# A Subject, Message-ID or Date is read from this many characters of its header: a subject of 998
# characters (where it is cut) takes 11,000 written in RFC 2047 words of the longest kind (CJK, "Q").
ONE_LINE_HEADER_MAX = 20_000
# Past this, a body is cut: an interaction's notes are for reading, not for archiving whole threads.
BODY_MAX_CHARS = 100_000


@dataclass
class Parsed:
    message_id: str
    subject: str = ""
    from_address: str = ""
    addresses: list = field(default_factory=list)  # every address in From, To and Cc, as written, in order
    recipients: list = field(default_factory=list)  # To and Cc only, as written
    body: str = ""
    sent_at: datetime | None = None


def _codec_of(charset):
    name = (charset or "utf-8").strip().strip('"').lower()
    name = WIDER_CHARSETS.get(name, name)
    try:
        return "utf-8" if codecs.lookup(name).name in NOT_CHARSETS else name
    except LookupError:
        return "utf-8"


class _Policy(Compat32):
    """compat32 (headers kept as received), reading MIME parameters from ``PARAMETER_HEADER_MAX`` characters."""

    def header_fetch_parse(self, name, value):
        if name.lower() in {"content-type", "content-disposition"}:
            value = value[:PARAMETER_HEADER_MAX]
        return super().header_fetch_parse(name, value)


POLICY = _Policy()


def _decode_bytes(data, charset):
    name = _codec_of(charset)
    # A mislabelled body: UTF-8 is the likeliest truth; else keep what can be read.
    for codec, errors in ((name, "strict"), ("utf-8", "strict"), (name, "replace")):
        try:
            text = data.decode(codec, errors)
            break
        except (UnicodeError, LookupError):  # LookupError: a codec of bytes (zlib, base64), not of text
            continue
    else:
        return data.decode("utf-8", "replace")
    # UTF-7 and the escape codecs can decode to half a surrogate pair, which no database stores as text.
    return SURROGATES.sub("\ufffd", text)


def _raw_values(message, name):
    """The values of header ``name`` as received, folding and all (the compat32 message keeps them so)."""
    return [value for key, value in message.raw_items() if key.lower() == name.lower()]


def header_text(message, name):
    """The header decoded to text (RFC 2047 words in any charset), '' when absent; never raises."""
    try:
        # Read as email.policy.default reads it, from its first ONE_LINE_HEADER_MAX characters: the
        # default policy's time grows with the square of a header's words.
        values = _raw_values(message, name)
        raw = email.policy.default.header_fetch_parse(name, values[0][:ONE_LINE_HEADER_MAX]) if values else None
    except Exception:  # a header the parser cannot even represent
        raw = None
    if raw is None:
        return ""
    try:
        text = str(raw)
    except Exception:
        text = ""
    if "=?" in text or not text:
        # The default policy leaves words in an unknown charset encoded: decode them generously.
        try:
            parts = decode_header(str(raw))
            text = "".join(
                _decode_bytes(chunk, charset) if isinstance(chunk, bytes) else chunk for chunk, charset in parts
            )
        except Exception:
            text = text or ""
    # No NULs (PostgreSQL text cannot hold them) nor other control characters in a one-line header.
    return " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())


def _addresses(message, *names):
    """The addresses in the headers ``names``, read from their raw values by ``getaddresses``.

    Not through email.policy.default's address-list parser: its time grows with the
    square of some values (a To header of folded quotes, 10 MB: hours).
    """
    values = []
    for name in names:
        for value in _raw_values(message, name):
            try:
                # Unfolded; 8-bit text (SMTPUTF8) read as UTF-8, as the default policy reads it.
                text = re.sub(r"\r\n|\r|\n", "", str(value))
                values.append(text.encode("utf-8", "surrogateescape").decode("utf-8", "replace"))
            except Exception:
                continue
    try:
        pairs = getaddresses(values)
    except Exception:
        return []
    return [address.strip() for _, address in pairs if "@" in address and len(address) <= 320 and address.isprintable()]


class _TextFromHTML(HTMLParser):
    BLOCKS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol", "blockquote"}
    HIDDEN = {"script", "style", "head", "title"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts, self.hidden = [], 0

    def handle_starttag(self, tag, attrs):
        if tag in self.HIDDEN:
            self.hidden += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")
        if tag == "li":
            self.parts.append("- ")

    def handle_endtag(self, tag):
        if tag in self.HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in self.BLOCKS and tag != "li":
            self.parts.append("\n")

    def handle_data(self, data):
        if not self.hidden:
            self.parts.append(data)

    def finish(self):
        """The end of the input, in place of ``close()``, whose time grows with the square of what is left.

        ``close()`` reads an unfinished comment, tag or declaration at the end a
        character at a time, each time searching to the end again: a message of
        ``<!--`` repeated takes hours. What ``feed()`` leaves is either such an
        unfinished construct, dropped (as HTML5 does at the end of a file), or
        text whose last character reference may be incomplete, kept.
        """
        rest, self.rawdata = self.rawdata, ""
        if rest and not rest.startswith("<"):
            self.handle_data(unescape(rest))


def html_to_text(html):
    """Readable text of an HTML body: blocks on their own lines, scripts and styles dropped."""
    parser = _TextFromHTML()
    try:
        parser.feed(html)
        parser.finish()
    except Exception:  # html.parser is lenient; this is a last guard
        # Each tag stops at the next "<": one pass over the text, however many are left unclosed.
        return re.sub(r"<[^<>]*>", " ", html)
    lines = [" ".join(line.split()) for line in "".join(parser.parts).splitlines()]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _part_text(part):
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        payload = None
    if payload is None:
        return ""
    return _decode_bytes(payload, part.get_content_charset())


def body_text(message):
    """The text of the first text/plain part, else of the first text/html part converted; attachments ignored."""
    plain = html = None
    try:
        parts = list(message.walk())
    except Exception:
        parts = [message]
    for part in parts:
        try:
            if part.is_multipart():
                continue
            disposition = (part.get_content_disposition() or "").lower()
            if disposition == "attachment" or part.get_filename():
                continue
            content_type = part.get_content_type()
        except Exception:
            continue
        if content_type == "text/plain" and plain is None:
            plain = _part_text(part)
        elif content_type == "text/html" and html is None:
            html = _part_text(part)
    if plain is not None and plain.strip():
        text = plain
    elif html is not None:
        text = html_to_text(html)
    else:
        text = plain or ""
    text = text.replace("\r\n", "\n").replace("\x00", "").strip()
    return text[:BODY_MAX_CHARS]


def _sent_at(message):
    value = header_text(message, "Date")
    if not value:
        return None
    try:
        moment = parsedate_to_datetime(value)
        # In UTC, as the database keeps it: 9999-12-31 23:00 -0500 is past the last year there is.
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def message_id_of(message, raw):
    value = header_text(message, "Message-ID").strip()
    if value and len(value) <= 255 and "\x00" not in value:
        return value
    # Without a usable Message-ID, the message itself identifies it: the same bytes again are the same mail.
    return f"<sha256:{hashlib.sha256(raw).hexdigest()}>"


def parse(raw):
    """A :class:`Parsed` of the message bytes ``raw``; never raises."""
    # compat32 keeps headers as received and reads MIME structure and parameters with simple string
    # operations; email.policy.default parses them on access with a parser whose time grows with the
    # square of some values (a Content-Type or To of folded quotes: hours for a 10 MB message).
    headers_only = raw.lower().count(b"boundary") * (raw.count(b"\n") + 1) > MAX_BOUNDARY_LINES
    try:
        message = BytesParser(policy=POLICY).parsebytes(raw, headersonly=headers_only)
    except Exception:
        message = email.message_from_bytes(b"", policy=POLICY)
    senders = _addresses(message, "From")
    recipients = _addresses(message, "To", "Cc")
    addresses = list(dict.fromkeys(senders + recipients))
    return Parsed(
        message_id=message_id_of(message, raw),
        subject=header_text(message, "Subject")[:998],
        from_address=(senders[0] if senders else "")[:320],
        addresses=addresses,
        recipients=recipients,
        body=body_text(message),
        sent_at=_sent_at(message),
    )

"""Zone files (RFC 1035 §5 presentation format) in and out.

Theory of operation: dnspython's zone file `Reader` does the parsing ($ORIGIN, $TTL,
$GENERATE, default TTLs, RFC 3597 unknown types) and hands each record to a transaction.
Here that transaction is a sink that groups records into RRsets and applies, per record,
the rules of `node.zones.validate` that one record can break, so those errors point at the
record's line. Once the file is read, the rules about names and the apex run on the whole
result and point at the first line of the RRset at fault. $INCLUDE is refused: a zone file
arrives over the API and must not read the server's own files.

Two details of dnspython are worked around:

- Its tokenizer counts a newline as soon as it reads it, so its messages often name the
  line after the faulty one. The tokenizer here keeps its own count: syntax errors name
  the line of the last token read, and errors about a record name the line where the
  record starts.
- It reads one character per call. Most lines of a zone file are plain words separated
  by blanks, so such lines are split in one step; anything else (quotes, parentheses,
  comments, escapes, non-ASCII) goes through dnspython's own code.

Export writes one line per record, names relative to an $ORIGIN, every TTL explicit and
the SOA first, which BIND's named-checkzone accepts and `parse_zone_text` reads back to
the same RRsets. Types dnspython does not know are written in RFC 3597 form.
"""

from __future__ import annotations

import re
from typing import Any

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.tokenizer
import dns.transaction
import dns.zonefile

from node.zones.index import Zone
from node.zones.validate import RecordTokenizer, ValidationError, add_record, check_zone_rrsets

MAX_RECORDS = 2_000_000
"""Default cap on records per file: one $GENERATE line could otherwise ask for billions."""

_DIRECTIVES = ("$ORIGIN", "$TTL", "$GENERATE")

_FILENAME = "<zone>"
_NEAR_LENGTH = 40
_DNSPYTHON_LOCATION = re.compile(rf"^{re.escape(_FILENAME)}:\d+: ")

# Printable ASCII and blanks, without the characters that make dnspython's tokenizer do
# more than split words (" ( ) ; \), then an optional LF or CRLF line end.
_PLAIN_LINE = re.compile(r"[\t !#-'*-:<-\[\]-~]*(?:\r?\n)?")
_PIECES = re.compile(r"[ \t]+|[^ \t\r\n]+")
# dnspython returns a whitespace token for every run of blanks when asked for leading
# whitespace; the reader only reads them, so one instance serves all.
_BLANK = dns.tokenizer.Token(dns.tokenizer.WHITESPACE, " ")


class ZoneFileError(ValueError):
    """The first problem found in a zone file; ``line`` is None for the zone as a whole."""

    def __init__(self, line: int | None, reason: str) -> None:
        super().__init__(line, reason)
        self.line = line
        self.reason = reason

    def __str__(self) -> str:
        return self.reason if self.line is None else f"line {self.line}: {self.reason}"


def parse_zone_text(
    text: str, origin: dns.name.Name, *, max_records: int = MAX_RECORDS
) -> list[dns.rrset.RRset]:
    """Every RRset of a zone file, with absolute owner names, in order of first appearance.

    The result satisfies `check_zone_rrsets`: one SOA and at least one NS at the apex, no
    owner outside ``origin``, no CNAME beside other data. The error raised is the one
    with the lowest line; errors about a name point at the first record of the RRset at
    fault (for a CNAME conflict, the CNAME), and a missing apex SOA or NS has no line and
    is reported only for an otherwise valid file. Records of one RRset with differing TTLs
    take the lowest (RFC 2181 §5.2). A character-string over 255 octets is split as
    `RecordTokenizer` describes.
    """
    tokenizer = _ZoneTokenizer(text)
    sink = _RRsetSink(origin, tokenizer, max_records)
    reader = dns.zonefile.Reader(tokenizer, dns.rdataclass.IN, sink, allow_directives=_DIRECTIVES)
    # The reader silently drops records whose owner lies outside the origin its
    # transaction reports; that origin is the root, so every record reaches the sink,
    # which refuses out-of-zone owners. Relative names start from the zone's origin.
    reader.current_origin = origin
    reader.last_name = origin
    try:
        reader.read()
    except dns.exception.DNSException as e:
        stopped = ZoneFileError(tokenizer.token_line, _reason(e, tokenizer.token_text))
    except ZoneFileError as e:
        stopped = e
    else:
        error = _rule_error(origin, sink)
        if error is not None:
            raise error
        return sink.rrsets()
    # Rules about names cannot be undone by more data, so a breach among the records
    # read so far is a real error, and it may lie before the line reading stopped at.
    earlier = _rule_error(origin, sink)
    if earlier is not None and earlier.line is not None and earlier.line < (stopped.line or 0):
        raise earlier from None
    raise stopped from None


def _rule_error(origin: dns.name.Name, sink: _RRsetSink) -> ZoneFileError | None:
    try:
        check_zone_rrsets(origin, sink.rrsets())
    except ValidationError as e:
        return ZoneFileError(sink.line_of(e.owner, e.rdtype), e.message)
    return None


def export_zone_text(zone: Zone) -> str:
    """The zone as a zone file: $ORIGIN, then one record per line, SOA first."""
    lines = [f"$ORIGIN {zone.origin.to_text()}"]
    lines.extend(rrset.to_text(origin=zone.origin, relativize=True) for rrset in zone.rrsets())
    return "\n".join(lines) + "\n"


def _reason(error: dns.exception.DNSException, near: str | None) -> str:
    """dnspython's message, without its own location prefix, after the word at fault."""
    reason = _DNSPYTHON_LOCATION.sub("", str(error))
    unknown_type = re.fullmatch(r"unknown rdatatype '([0-9].*)'", reason)
    if unknown_type:
        # A word starting with a digit is never a type mnemonic: the reader tried it as a
        # TTL first, so the word may be a mistyped TTL as much as a mistyped type.
        return f"{unknown_type.group(1)!r} is neither a TTL nor a record type"
    if near is None:
        return reason
    if len(near) > _NEAR_LENGTH:
        near = near[:_NEAR_LENGTH] + "..."
    return reason if repr(near) in reason else f"near {near!r}: {reason}"


class _ZoneTokenizer(RecordTokenizer):
    """Adds line tracking and a fast path for plain lines; see the module docstring."""

    def __init__(self, text: str) -> None:
        super().__init__(text, _FILENAME)
        self._plain: list[dns.tokenizer.Token] = []  # rest of a plain line, last first
        self._at_line_start = True
        self._last: dns.tokenizer.Token | None = None
        self.token_line = 1
        """The line of the last token read: where a syntax error is."""
        self.record_line = 1
        """The line where the record or directive being read starts."""

    @property
    def token_text(self) -> str | None:
        """The last word or string read, to show next to an error."""
        last = self._last
        if last is None or last.ttype not in (
            dns.tokenizer.IDENTIFIER,
            dns.tokenizer.QUOTED_STRING,
        ):
            return None
        value: str = last.value
        return value

    def get(self, want_leading: bool = False, want_comment: bool = False) -> dns.tokenizer.Token:
        # Called for every token: the plain-line case does no bookkeeping, which was done
        # for the whole line when it was split.
        while True:
            token = self.ungotten_token
            if token is not None:
                self.ungotten_token = None
                if (token.is_whitespace() and not want_leading) or (
                    token.is_comment() and not want_comment
                ):
                    continue
                return token  # read before, so the line bookkeeping already covers it
            if self._plain:
                token = self._plain.pop()
                if token is _BLANK and not want_leading:
                    continue
                self._last = token
                return token
            if (
                self._at_line_start
                and self.ungotten_char is None
                and not self.after_cr  # dnspython would drop the LF of a CRLF it is in
                and self._split_plain_line()
            ):
                continue
            return self._get_by_character(want_leading, want_comment)

    def _get_by_character(self, want_leading: bool, want_comment: bool) -> dns.tokenizer.Token:
        line = self._cursor_line()
        try:
            token = super().get(want_leading, want_comment)
        except dns.exception.DNSException:
            self.token_line = line
            self._last = None
            raise
        line = self._cursor_line() - token.is_eol()
        at_line_end = token.is_eol_or_eof()
        if self._at_line_start and not at_line_end:
            self.record_line = line
        self._at_line_start = at_line_end
        self.token_line = line
        self._last = token
        return token

    def _cursor_line(self) -> int:
        # dnspython counts a newline when it reads it, even if it then pushes it back.
        return self.line_number - (self.ungotten_char == "\n")

    def _split_plain_line(self) -> bool:
        start = self.file.tell()
        text: str = self.file.readline()
        if not _PLAIN_LINE.fullmatch(text):
            self.file.seek(start)
            return False
        tokens = [
            _BLANK if piece[0] in " \t" else dns.tokenizer.Token(dns.tokenizer.IDENTIFIER, piece)
            for piece in _PIECES.findall(text)
        ]
        self.token_line = self.line_number
        if any(token is not _BLANK for token in tokens):
            self.record_line = self.line_number
        if text.endswith("\n"):
            self.line_number += 1
            tokens.append(dns.tokenizer.Token(dns.tokenizer.EOL, "\n"))
        else:
            tokens.append(dns.tokenizer.Token(dns.tokenizer.EOF))
        tokens.reverse()
        self._plain.extend(tokens)
        return True


class _RootOrigin(dns.transaction.TransactionManager):
    def origin_information(
        self,
    ) -> tuple[dns.name.Name | None, bool, dns.name.Name | None]:
        return (dns.name.root, False, dns.name.root)

    def get_class(self) -> dns.rdataclass.RdataClass:
        return dns.rdataclass.IN


class _RRsetSink(dns.transaction.Transaction):
    """The reader's transaction: collects records into RRsets, remembering their lines.

    Only `add` is used by the reader for the directives allowed here; dnspython's
    transaction machinery (and its own CNAME check) is bypassed on purpose, as the rules
    live in `node.zones.validate`.
    """

    def __init__(self, origin: dns.name.Name, tokenizer: _ZoneTokenizer, max_records: int) -> None:
        super().__init__(_RootOrigin(), replacement=True)
        self._origin = origin
        self._tokenizer = tokenizer
        self._max_records = max_records
        self._records = 0
        # Each RRset with the line of its first record. Lines are only looked up when
        # an error is reported, so they are not indexed by name: every dnspython Name
        # lookup hashes the whole name again.
        self._rrsets: dict[
            tuple[dns.name.Name, dns.rdatatype.RdataType], tuple[dns.rrset.RRset, int]
        ] = {}

    def add(self, *args: Any) -> None:
        name, ttl, rdata = args
        assert isinstance(name, dns.name.Name) and isinstance(rdata, dns.rdata.Rdata)
        line = self._tokenizer.record_line
        self._records += 1
        if self._records > self._max_records:
            raise ZoneFileError(line, f"the zone file holds more than {self._max_records} records")
        # Keyed by type alone, as a Zone is: RRSIGs covering different types at one name
        # cannot be stored, and are refused here at the line of the second one.
        key = (name, rdata.rdtype)
        entry = self._rrsets.get(key)
        rrset = entry[0] if entry is not None else self._new_rrset(name, rdata.rdtype)
        try:
            add_record(self._origin, rrset, rdata, ttl, "records")
        except ValidationError as e:
            raise ZoneFileError(line, e.message) from None
        if entry is None:
            self._rrsets[key] = (rrset, line)

    @staticmethod
    def _new_rrset(name: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> dns.rrset.RRset:
        # Owners are stored lower-cased, as the store keys them; most already are.
        canonical = tuple(map(bytes.lower, name.labels)) == name.labels
        owner = name if canonical else name.canonicalize()
        return dns.rrset.RRset(owner, dns.rdataclass.IN, rdtype)

    def _set_origin(self, origin: dns.name.Name | None) -> None:
        """Names reach `add` absolute, so a new $ORIGIN needs no bookkeeping here."""

    def rrsets(self) -> list[dns.rrset.RRset]:
        return [rrset for rrset, _ in self._rrsets.values()]

    def line_of(
        self, owner: dns.name.Name | None, rdtype: dns.rdatatype.RdataType | None
    ) -> int | None:
        """The first line of the RRset (or, without ``rdtype``, the name) at fault."""
        if owner is None:
            return None
        return next(
            (
                line
                for rrset, line in self._rrsets.values()
                if rrset.name == owner and rdtype in (None, rrset.rdtype)
            ),
            None,
        )

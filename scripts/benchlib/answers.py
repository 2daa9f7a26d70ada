"""Checking, before timing anything, that a server gives every query the kind of answer the
mix says it gets: a server that answers fast but wrongly (REFUSED, SERVFAIL, the wrong data)
would make its figures meaningless."""

from __future__ import annotations

from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from scripts.benchlib.workload import Kind, Query

TIMEOUT = 2.0
EXAMPLES = 5


def answer_fits(query: Query, response: dns.message.Message) -> bool:
    """Whether ``response`` is the kind of answer ``query.kind`` promises."""
    if query.kind == Kind.NXDOMAIN:
        return response.rcode() == dns.rcode.NXDOMAIN
    if response.rcode() != dns.rcode.NOERROR:
        return False
    authoritative = bool(response.flags & dns.flags.AA)
    if query.kind == Kind.REFERRAL:
        return (
            not authoritative
            and not response.answer
            and any(rrset.rdtype == dns.rdatatype.NS for rrset in response.authority)
        )
    if not authoritative:
        return False
    if query.kind == Kind.NODATA:
        return not response.answer and any(
            rrset.rdtype == dns.rdatatype.SOA for rrset in response.authority
        )
    if query.kind == Kind.CNAME:
        return (
            len(response.answer) > 1
            and response.answer[0].name == query.name
            and response.answer[0].rdtype == dns.rdatatype.CNAME
            and response.answer[-1].rdtype == query.rdtype
        )
    found = response.get_rrset(response.answer, query.name, dns.rdataclass.IN, query.rdtype)
    return found is not None


@dataclass(frozen=True)
class AnswerCheck:
    server: str
    checked: int
    unexpected: int
    examples: tuple[str, ...]


def check_answers(server: str, port: int, queries: list[Query]) -> AnswerCheck:
    """Ask each query once over UDP, without EDNS, and count the answers of the wrong kind."""
    wrong: list[str] = []
    for query in queries:
        message = dns.message.make_query(query.name, query.rdtype)
        try:
            response = dns.query.udp(message, "127.0.0.1", port=port, timeout=TIMEOUT)
        except dns.exception.Timeout:
            wrong.append(f"{query.line()} ({query.kind}): no answer")
            continue
        if not answer_fits(query, response):
            rcode = dns.rcode.to_text(response.rcode())
            wrong.append(
                f"{query.line()} ({query.kind}): {rcode}, {len(response.answer)} answer RRsets"
            )
    return AnswerCheck(server, len(queries), len(wrong), tuple(wrong[:EXAMPLES]))

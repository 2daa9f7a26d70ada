"""The in-memory zone: counts kept as RRsets come and go match a full recount; watchers
hear of changes; the served SOA hashes as a plain one."""

import copy
import gc
import pickle
import random
import weakref

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.zones.index import Change, Zone, ZoneTable
from node.zones.materialise import owner_name
from node.zones.served import with_serial
from protocol.statekeys import name_text

ORIGIN = dns.name.from_text("count.test.")
TYPES = (dns.rdatatype.A, dns.rdatatype.TXT)


def _rrset(owner: int, rdtype: dns.rdatatype.RdataType, size: int) -> dns.rrset.RRset:
    name = dns.name.from_text(f"n{owner}.sub", ORIGIN)
    texts = [f"192.0.2.{i}" if rdtype == dns.rdatatype.A else f'"t{i}"' for i in range(size)]
    return dns.rrset.from_text_list(name, 60, dns.rdataclass.IN, rdtype, texts)


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**32))
def test_counts_follow_puts_and_removes(seed: int) -> None:
    rng = random.Random(seed)
    zone = Zone(ORIGIN)
    for _ in range(60):
        owner, rdtype = rng.randrange(6), rng.choice(TYPES)
        if rng.random() < 0.3:
            zone.remove(dns.name.from_text(f"n{owner}.sub", ORIGIN), rdtype)
        else:
            zone.put(_rrset(owner, rdtype, rng.randrange(0, 4)))  # 0 records: a removal
        rrsets = list(zone.rrsets())
        assert zone.rrset_count() == len(rrsets)
        assert zone.record_count() == sum(len(r) for r in rrsets)


_LABEL = st.one_of(
    st.from_regex(r"[a-z0-9_-]{1,20}", fullmatch=True),
    st.binary(min_size=1, max_size=12),
)


@given(st.lists(_LABEL, min_size=0, max_size=5))
@settings(max_examples=300)
def test_owner_names_from_state_keys_parse_as_dnspython_parses_them(
    labels: list[str | bytes],
) -> None:
    """The quick split for plain key text gives the very name ``from_text`` gives, and text
    with escapes still takes the full parse."""
    name = dns.name.Name([x.encode() if isinstance(x, str) else x for x in labels] + [b""])
    text = name_text(name)
    parsed = owner_name(text)
    assert parsed == dns.name.from_text(text)
    assert parsed.labels == dns.name.from_text(text).labels


@given(
    st.sampled_from(["ns1.example.", "NS1.Example.", "a\\.b.example.", ".", "ns1"]),
    st.sampled_from(["hostmaster.example.", "Host\\@Master.example.", "hostmaster"]),
    st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=3),
)
@settings(max_examples=50)
def test_a_served_soa_is_equal_and_hashes_equal_to_a_plain_one(
    mname: str, rname: str, serials: list[int]
) -> None:
    """The served SOA's quick hash must agree with dnspython's for equal data, or RRsets
    and sets that mix the two would disagree about what they hold. Names may be relative:
    rdata from a peer is parsed without an origin."""
    soa = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.SOA, f"{mname} {rname} 1 2 3 4 5")
    served: dns.rdata.Rdata = soa
    for serial in serials:
        served = with_serial(served, serial)  # type: ignore[arg-type]
        plain = soa.replace(serial=serial)
        assert served == plain and hash(served) == hash(plain)
        assert plain in {served} and served in {plain}
        origin = dns.name.from_text("example.")
        assert dns.rrset.from_rdata(origin, 60, served) == dns.rrset.from_rdata(origin, 60, plain)
    with pytest.raises(ValueError):
        with_serial(soa, 2**32)  # type: ignore[arg-type]
    again = served.replace(serial=7)  # what the answer cache builds for its sentinel
    assert hash(again) == hash(soa.replace(serial=7))
    assert pickle.loads(pickle.dumps(again)) == again == copy.copy(again)


class _Recorder:
    def __init__(self) -> None:
        self.changes: list[Change] = []
        self.zones: list[dns.name.Name] = []

    def rrset_changed(self, change: Change) -> None:
        self.changes.append(change)

    def zone_changed(self, origin: dns.name.Name) -> None:
        self.zones.append(origin)


def test_watchers_hear_every_change_until_they_are_garbage() -> None:
    table, zone = ZoneTable(), Zone(ORIGIN)
    kept, dropped = _Recorder(), _Recorder()
    table.watch(kept)
    table.watch(dropped)
    table.add(zone)
    zone.put(_rrset(1, dns.rdatatype.A, 2))
    assert [len(w.changes) for w in (kept, dropped)] == [1, 1]
    assert kept.zones == dropped.zones == [ORIGIN]
    gone = weakref.ref(dropped)
    del dropped
    gc.collect()
    assert gone() is None  # the table held it only weakly
    zone.remove(_rrset(1, dns.rdatatype.A, 1).name, dns.rdatatype.A)
    table.watch(_Recorder())  # a later watcher does not revive or trip over the dead one
    assert [c.new is None for c in kept.changes] == [False, True]

"""Lookup: the platform's devices (and users) that matter to a sheet, found once.

The one place that asks the platform which of a sheet's devices it holds, used by
plan (and so apply), verify, export and undo: the keys to ask for, the strategies
(``per-key`` filter queries several at once, a paged ``scan``, the site ``tag``,
``auto`` picking the cheapest by the sheet's size and what the first pages show),
``key_filter`` (the one query that finds a key: a hex addr without case), and the
``Snapshot`` that indexes what was found by key, addr and id.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from provisioner.actions import LOOKUPS
from provisioner.errors import PlanError as PlanError
from provisioner.fields import HEX, normal_addr, normal_key, same
from provisioner.platform import (
    MAX_PAGE_SIZE,
    MIN_PLAUSIBLE_PAGE_CAP,
    AuthError,
    DevicePages,
    Filter,
    NotFound,
    PlatformClient,
    f,
    fa,
)
from provisioner.records import SiteRecords
from provisioner.templates import SiteTemplate
from provisioner.text import counted, listed

# A page of 10000 devices costs about as much as this many single-device lookups
# (benchmarks/plan_speed.py measured 170 to 240 against the sandbox).
PAGE_COST = 200
LOOKUP_THREADS = 16
Device = dict[str, Any]


@dataclass
class Snapshot:
    """The platform's devices (and users) that matter to the sheet."""

    match_key: str
    by_key: dict[str, list[Device]] = field(default_factory=dict)
    by_addr: dict[str, list[Device]] = field(default_factory=dict)
    users: dict[str, dict[str, Any]] | None = None  # None: the platform does not list users
    users_note: str = ""
    # The role that creating users needs and this token lacks, learnt from the 403 its
    # user listing got (the platform has no call that names a token's roles); "" when
    # the token was not refused.
    users_role_missing: str = ""
    by_id: dict[int, Device] = field(default_factory=dict)

    def add(self, device: Device) -> None:
        """Index a device once, however many lookups found it."""
        if isinstance(device.get("id"), int):
            self.by_id[device["id"]] = device
        key = normal_key(self.match_key, device.get(self.match_key))
        known = self.by_key.setdefault(key, [])
        if all(d.get("id") != device.get("id") for d in known):
            known.append(device)
        if self.match_key != "addr":
            addr = normal_addr(device.get("addr"))
            same = self.by_addr.setdefault(addr, [])
            if all(d.get("id") != device.get("id") for d in same):
                same.append(device)


@dataclass(frozen=True)
class Match:
    """What the platform holds for one sheet row (plan's rule, verify's, undo's by addr).

    ``device`` is the row's device when exactly one carries its key and its addr (if the
    sheet gives one) is the same; otherwise ``problem`` says why there is none to use:
    "" when no device carries the key (missing), else the words for the installer.
    """

    device: Device | None
    problem: str = ""
    found: Device | None = None  # the one device with the key, whatever its addr

    @property
    def missing(self) -> bool:
        return self.device is None and not self.problem


def match_row(key: str, addr: Any, snapshot: Snapshot) -> Match:
    """The one rule that matches a row to the platform's devices: by its key; two devices
    with the key are ambiguous; one whose addr differs from the sheet's is another device
    (an addr can only be changed by a platform admin)."""
    matches = snapshot.by_key.get(normal_key(snapshot.match_key, key), [])
    if not matches:
        return Match(None)
    if len(matches) > 1:
        ids = listed([str(d.get("id")) for d in matches])
        return Match(
            None,
            f"{len(matches)} platform devices share the {snapshot.match_key} {key} "
            f"(ids {ids}); resolve this on the platform first",
        )
    device = matches[0]
    if addr is not None and not same("addr", addr, device.get("addr")):
        return Match(
            None,
            f"the device's addr is {device.get('addr')} on the platform, {addr} in the sheet",
            found=device,
        )
    return Match(device, found=device)


@dataclass
class LookupStats:
    strategy: str  # what ran: per-key, scan, tag (+ per-key for the rest)
    requests: int = 0
    seconds: float = 0.0
    devices_read: int = 0
    why: str = ""
    page_cap: int | None = None  # the platform answered pages of at most this many devices

    def to_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "devices_read": self.devices_read,
            "why": self.why,
            "page_cap": self.page_cap,
        }

    def summary(self) -> str:
        """One line for the console: how the platform was read, and any page cap met."""
        line = f"lookup: {self.strategy}, {counted(self.requests, 'request')}, {self.seconds:.1f} s"
        line += f" ({self.why})" if self.why else ""
        if self.page_cap is not None:
            line += f"; the platform caps pages at {self.page_cap} devices"
        return line


def look_up(
    client: PlatformClient,
    site: SiteRecords,
    template: SiteTemplate,
    strategy: str = "auto",
    *,
    threads: int = LOOKUP_THREADS,
    progress: Callable[[str], None] | None = None,
) -> tuple[Snapshot, LookupStats]:
    """Find the platform devices for the sheet's keys (and addrs), by ``strategy``;
    ``progress`` hears how far the reading is (the console's spinner)."""
    if strategy not in LOOKUPS:
        raise ValueError(f"lookup must be one of {', '.join(LOOKUPS)}")
    match_key = template.match_key
    snapshot = Snapshot(match_key)
    # Downlinks may name devices that are only on the platform: look those up too.
    wanted = [r for r in (*site.devices, *site.downlinks) if r.valid and r.key]
    keys = sorted({normal_key(match_key, r.key) for r in wanted})
    addrs: list[str] = []
    if match_key != "addr":
        addrs = sorted(
            {normal_addr(r.body["addr"]) for r in site.devices if r.valid and r.body.get("addr")}
        )
    started = time.perf_counter()
    before = client.requests_sent
    stats = LookupStats(strategy)
    lookups = _Lookups(client, snapshot, stats, threads, progress)

    if strategy == "scan":
        lookups.scan(keys, addrs)
    elif strategy == "per-key":
        lookups.per_key(match_key, keys, addrs)
    elif strategy == "tag":
        if not template.site_tag:
            raise PlanError(
                "the tag lookup needs a site template with a site_tag: use another --lookup"
            )
        lookups.tag(template.site_tag, match_key, keys, addrs)
    else:
        _auto(lookups, match_key, template.site_tag, keys, addrs, stats)
    if site.users:
        listing = read_users(client)
        snapshot.users, snapshot.users_note = _by_login(listing.users), listing.why
        snapshot.users_role_missing = listing.role_missing
    stats.page_cap = client.page_cap_seen
    stats.requests = client.requests_sent - before
    stats.seconds = time.perf_counter() - started
    return snapshot, stats


def look_up_devices(
    client: PlatformClient,
    addrs: Iterable[str],
    ids: Iterable[int] = (),
    *,
    threads: int = LOOKUP_THREADS,
    progress: Callable[[str], None] | None = None,
) -> tuple[Snapshot, LookupStats]:
    """The devices with these addrs, then by id those of ``ids`` the addrs did not find
    (a journal of an older version holds no addr; an id whose addr changed): undo's
    lookup of what runs made. The addrs are looked up as plan looks up keys (pages, or
    per addr several at once, by ``_auto``); the snapshot's ``by_id`` holds every
    device found, and an id missing from it is not on the platform."""
    started = time.perf_counter()
    before = client.requests_sent
    snapshot, stats = Snapshot("addr"), LookupStats("auto")
    lookups = _Lookups(client, snapshot, stats, threads, progress)
    _auto(lookups, "addr", "", sorted({normal_addr(a) for a in addrs if a}), [], stats)
    lookups.by_id(sorted({i for i in ids if i not in snapshot.by_id}))
    stats.page_cap = client.page_cap_seen
    stats.requests = client.requests_sent - before
    stats.seconds = time.perf_counter() - started
    return snapshot, stats


def device_pages(
    client: PlatformClient, filters: Sequence[Filter] = (), *, page_size: int | None = None
) -> DevicePages:
    """Every device matching ``filters``, a page at a time: the one way the tool reads
    devices in bulk (plan's scan and tag, export). Pages after the first are asked by
    id (``f:id=gt:``), so devices deleted during the read cannot shift the pages;
    where the platform does not page by id, by offset, and ``moved`` says whether the
    listing moved meanwhile. Either way the client's paging rule copes with a server
    that caps pages. Costs as many requests as reading by offset."""
    return client.iter_device_pages(filters, page_size=page_size or MAX_PAGE_SIZE, by_id=True)


class _Lookups:
    """The lookup moves, each filling the snapshot."""

    def __init__(
        self,
        client: PlatformClient,
        snapshot: Snapshot,
        stats: LookupStats,
        threads: int,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.client = client
        self.snapshot = snapshot
        self.stats = stats
        self.threads = threads
        self.progress = progress

    def _tell(self, done: str) -> None:
        if self.progress is not None:
            self.progress(f"reading the platform: {done}")

    def _keep(self, devices: Iterable[Device], keys: set[str], addrs: set[str]) -> None:
        match_key = self.snapshot.match_key
        for device in devices:
            self.stats.devices_read += 1
            if normal_key(match_key, device.get(match_key)) in keys or (
                addrs and normal_addr(device.get("addr")) in addrs
            ):
                self.snapshot.add(device)

    def scan(
        self, keys: list[str], addrs: list[str], pages: Iterable[list[Device]] | None = None
    ) -> None:
        """Every device on the platform, a page at a time, by the client's paging rule
        (which copes with a server that caps pages); ``pages`` continues a scan begun."""
        wanted, wanted_addrs = set(keys), set(addrs)
        for page in device_pages(self.client) if pages is None else pages:
            self._keep(page, wanted, wanted_addrs)
            self._tell(f"{counted(self.stats.devices_read, 'device')} read")

    def per_key(self, match_key: str, keys: Iterable[str], addrs: Iterable[str]) -> None:
        """One filter query per key (and per addr), several at once."""
        queries = [key_filter(match_key, k) for k in keys]
        queries += [key_filter("addr", a) for a in addrs]
        if not queries:
            return
        # Once the platform has shown a page of several devices, a key's shorter answer is
        # known to be whole without a second request per key: one small page tells.
        if self.client.largest_page < 2:
            self.client.list_devices_page(limit=MIN_PLAUSIBLE_PAGE_CAP)
        with ThreadPoolExecutor(max_workers=self.threads) as pool:
            for done, devices in enumerate(pool.map(self.client.find_devices, queries), 1):
                self.stats.devices_read += len(devices)
                for device in devices:
                    self.snapshot.add(device)
                self._tell(f"{done} of {len(queries)} lookups")

    def by_id(self, ids: list[int]) -> None:
        """One request per platform id, several at once; a device found is added."""
        if not ids:
            return
        with ThreadPoolExecutor(max_workers=self.threads) as pool:
            for done, device in enumerate(pool.map(self.client.get_device, ids), 1):
                if device is not None:
                    self.stats.devices_read += 1
                    self.snapshot.add(device)
                self._tell(f"{done} of {len(ids)} devices by id")

    def tagged(self, site_tag: str, keys: list[str], addrs: list[str]) -> None:
        """The devices carrying the site tag that the sheet asks about."""
        for page in device_pages(self.client, [fa("tags", "contains", [site_tag])]):
            self._keep(page, set(keys), set(addrs))
            self._tell(f"{self.stats.devices_read} tagged devices read")

    def tag(self, site_tag: str, match_key: str, keys: list[str], addrs: list[str]) -> None:
        """The site's tagged devices, then per key for the keys not found there."""
        self.tagged(site_tag, keys, addrs)
        rest_keys, rest_addrs = self.missing(keys, addrs)
        self.per_key(match_key, rest_keys, rest_addrs)

    def missing(self, keys: list[str], addrs: list[str]) -> tuple[list[str], list[str]]:
        return (
            [k for k in keys if k not in self.snapshot.by_key],
            [a for a in addrs if a not in self.snapshot.by_addr],
        )

    def holds_more_than(self, pages: int, page_size: int) -> bool:
        """Whether the platform holds more than ``pages`` full pages: one probe."""
        return bool(self.client.list_devices_page(limit=1, offset=pages * page_size))


def key_filter(name: str, value: str) -> list[Filter]:
    """The query that finds the devices with this key: the one lookup by key, for plan
    and for apply's check after a lost answer. The platform keeps an addr as it was
    given and compares it with case, while a DevEUI is one device in any case
    (70b3... was perhaps made by another tool): a hex addr with letters is asked for
    with the documented ``ilike``, which has no wildcard in hex digits."""
    if name == "addr" and HEX.fullmatch(value) and value.upper() != value.lower():
        return [f("addr", "ilike", value)]
    return [f(name, "eq", value)]


def _auto(
    lookups: _Lookups,
    match_key: str,
    site_tag: str | None,
    keys: list[str],
    addrs: list[str],
    stats: LookupStats,
) -> None:
    """Pick the cheapest way by the sheet's size and what the first page shows."""
    wanted = len(keys) + len(addrs)
    if wanted == 0:
        stats.strategy, stats.why = "none", "no valid rows to look up"
        return
    if wanted <= PAGE_COST:
        stats.strategy = "per-key"
        stats.why = f"{wanted} lookups cost less than one page of {MAX_PAGE_SIZE}"
        lookups.per_key(match_key, keys, addrs)
        return
    if site_tag:
        lookups.tagged(site_tag, keys, addrs)
        rest_keys, rest_addrs = lookups.missing(keys, addrs)
        rest = len(rest_keys) + len(rest_addrs)
        if rest <= PAGE_COST:
            stats.strategy = "tag"
            stats.why = f"the site tag found all but {rest} of {wanted} keys"
            lookups.per_key(match_key, rest_keys, rest_addrs)
            return
        keys, addrs, wanted = rest_keys, rest_addrs, rest
    pages = device_pages(lookups.client)
    read = list(itertools.islice(pages, 2))  # the second page tells a small platform from a cap
    page_size = len(read[0]) if read else MAX_PAGE_SIZE
    if len(read) < 2 or len(read[1]) < page_size:
        stats.strategy = "scan"
        stats.why = f"the first pages hold {sum(map(len, read))} devices: the platform is small"
        lookups.scan(keys, addrs, itertools.chain(read, pages))
        return
    # Per key costs `wanted` lookups, a scan about PAGE_COST per full page (less for pages
    # a cap keeps smaller): one probe tells which wins.
    per_page = max(1.0, PAGE_COST * page_size / MAX_PAGE_SIZE)
    affordable = max(2, math.ceil(wanted / per_page))
    if lookups.holds_more_than(affordable, page_size):
        stats.strategy = "per-key"
        stats.why = f"{wanted} lookups cost less than scanning more than {affordable} pages"
        lookups.per_key(match_key, keys, addrs)
    else:
        stats.strategy = "scan"
        stats.why = f"at most {affordable} pages cost less than {wanted} lookups"
        lookups.scan(keys, addrs, itertools.chain(read, pages))


# Listing and creating users both need this role (platform-api.md, "Endpoints").
USERS_ROLE = "org-admin"


@dataclass(frozen=True)
class UserListing:
    """The organisation's users, or None and why they cannot be listed."""

    users: list[dict[str, Any]] | None
    why: str = ""
    role_missing: str = ""  # the listing's 403: the token lacks this role


def read_users(client: PlatformClient) -> UserListing:
    """The organisation's users; a 404 (the platform does not list them) or a 403 (the
    token lacks the role, which creating users needs too) is said, not raised."""
    try:
        return UserListing(client.list_users())
    except NotFound:
        return UserListing(None, "the platform does not list users")
    except AuthError as exc:
        if exc.status == 403:
            why = f"the token may not list users (that needs the role {USERS_ROLE})"
            return UserListing(None, why, USERS_ROLE)
        raise


def platform_users(client: PlatformClient) -> tuple[list[dict[str, Any]] | None, str]:
    """The organisation's users, or None and why they cannot be listed (plan, export)."""
    listing = read_users(client)
    return listing.users, listing.why


def _by_login(users: list[dict[str, Any]] | None) -> dict[str, dict[str, Any]] | None:
    """The users by their login (lower case)."""
    if users is None:
        return None
    return {str(u.get("email") or u.get("login") or "").strip().lower(): u for u in users}

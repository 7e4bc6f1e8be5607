"""Plan: what `apply` would do, row by row, without writing anything.

Three steps, each a function with a plain result:

1. ``lookup.look_up`` asks the platform for the devices (and users) that matter to
   the sheet, by one of the lookup strategies, and returns a ``Snapshot``.
2. ``diff`` is a pure function of (records, snapshot): one action per row.
3. ``make_plan`` ties the two together with the sheet's validation.

Comparison rules (what counts as "the same" when the sheet meets the platform):
surrounding spaces never count; an addr made of hex digits compares without
case (a DevEUI may be stored in lower or upper case); tags compare as a set
(order and repeats do not count); numbers compare as numbers; initialConfig
values compare as text ("600" equals 600); only the fields the sheet sets are
compared (an empty cell says nothing).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Set
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from provisioner.actions import RowAction, RowKind
from provisioner.changes import fills, removable_tags
from provisioner.changes import fingerprint as device_fingerprint
from provisioner.fields import (
    CONFIG_PREFIX,
    config_differences,
    masked_body,
    masked_config,
    normal_addr,
    normal_key,
    same,
    tags_to_change,
)
from provisioner.frames import Sheet, frame_digest, sheet_name, sheet_path
from provisioner.journal import (
    Entry,
    JournalState,
    day_of,
    payload_fingerprint,
    read_sheet_journal,
)
from provisioner.lookup import (
    Device,
    LookupStats,
    Snapshot,
    look_up,
    match_row,
)
from provisioner.platform import (
    PlatformClient,
)
from provisioner.problems import Problem
from provisioner.records import Record, SiteRecords
from provisioner.results import Result, Row
from provisioner.templates import SiteTemplate
from provisioner.text import counted
from provisioner.validation import ValidationReport, validate_sheet

# The actions whose rows apply sends as they are in the sheet: a create, a user the
# platform does not list (apply tries to create it), a downlink to queue.
CREATES = frozenset({RowAction.CREATE, RowAction.UNKNOWN, RowAction.QUEUE})


@dataclass
class RowPlan(Row):
    """The action for one sheet row."""

    sheet: str
    row: int
    kind: RowKind
    key: str
    action: RowAction
    reason: str = ""
    platform_id: int | None = None
    # Blocked because this token lacks the role the row's request needs (the reason says
    # which): apply sends the rest and reports this row as not run.
    needs_role: str = ""
    diff: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    # The device as the plan found it (not saved): an update starts from it, and its
    # updatedAt is the one the device must still have when the update is sent.
    device: Device | None = field(default=None, repr=False)
    # The row's request body as apply sends it (the record's own, not a copy).
    body: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def sends(self) -> dict[str, Any] | None:
        """What apply sends for a create (or a queued downlink), secrets hidden; None for
        a row that sends nothing or only an update."""
        if self.body is None or self.action not in CREATES:
            return None
        return masked_body(f"{self.kind}s", self.body)

    @property
    def platform_updated_at(self) -> str | None:
        value = self.device.get("updatedAt") if self.device is not None else None
        return value if isinstance(value, str) and value else None

    @property
    def outcome(self) -> str:
        return str(self.action)

    @property
    def message(self) -> str:
        return self.reason

    def problems(self) -> tuple[list[Problem], list[Problem]]:
        return self.errors, self.warnings

    COLUMNS = (
        "action",
        "reason",
        "platform_updated_at",
        "platform_fingerprint",
        "diff",
        "sends",
    )

    @property
    def platform_fingerprint(self) -> str | None:
        """How the device looked, for an apply --update --plan of a platform without
        updatedAt: a fingerprint, from which no value can be read."""
        return device_fingerprint(self.device) if self.device is not None else None


def diff(
    site: SiteRecords,
    snapshot: Snapshot,
    problems: dict[tuple[str, int], Any],
    tags_mode: str = "add",
    earlier: JournalState | None = None,
    blocked_tabs: dict[str, str] | None = None,
) -> list[RowPlan]:
    """One action per row: a pure function of the sheet's records and the platform snapshot.

    ``problems`` maps (sheet, row) to that row's validation result (errors, warnings),
    for rows that have any. ``tags_mode`` is the template's: "add" (the sheet's tags
    must be among the device's, and the tags this sheet's earlier runs put on it, by the
    journal's ``sheet_tags``, no others) or "exact" (they must be the device's whole list).
    ``earlier`` is the journal of the sheet's runs: a downlink a run queued to the same
    device with the same content is not queued again (``queued_before``).
    """
    rows: list[RowPlan] = []
    device_plans: dict[str, RowPlan] = {}
    blocked_tabs = blocked_tabs or {}
    sheet_tags = earlier.sheet_tags if earlier is not None else {}
    for record in site.devices:
        plan = _device_plan(record, snapshot, tags_mode, sheet_tags)
        plan.body = record.body
        _attach(plan, problems, blocked_tabs)
        rows.append(plan)
        if record.key and plan.action != RowAction.BLOCKED:
            device_plans[normal_key(snapshot.match_key, record.key)] = plan
    for record in site.users:
        plan = _user_plan(record, snapshot)
        plan.body = record.body
        _attach(plan, problems, blocked_tabs)
        rows.append(plan)
    for record in site.downlinks:
        plan = _downlink_plan(record, snapshot, device_plans, earlier)
        plan.body = record.body
        _attach(plan, problems, blocked_tabs)
        rows.append(plan)
    return rows


def _attach(
    plan: RowPlan, problems: dict[tuple[str, int], Any], blocked_tabs: dict[str, str]
) -> None:
    found = problems.get((plan.sheet, plan.row))
    if found is not None:
        plan.errors, plan.warnings = list(found.errors), list(found.warnings)
        if plan.errors and plan.action == RowAction.BLOCKED:
            plan.reason = f"invalid row: {plan.errors[0].message}"
    if plan.action == RowAction.BLOCKED and plan.sheet in blocked_tabs:
        plan.reason = blocked_tabs[plan.sheet]  # the tab's own problem, said above


def _device_plan(
    record: Record,
    snapshot: Snapshot,
    tags_mode: str = "add",
    sheet_tags: Mapping[int, Set[str]] | None = None,
) -> RowPlan:
    plan = RowPlan(record.sheet, record.row, RowKind.DEVICE, record.key, RowAction.CREATE)
    if not record.valid:
        plan.action, plan.reason = RowAction.BLOCKED, "invalid row"
        return plan
    match = match_row(record.key, record.body.get("addr"), snapshot)
    if match.found is not None:
        plan.platform_id = match.found.get("id")
        plan.device = match.found
    if match.problem:
        plan.action = RowAction.BLOCKED
        plan.reason = match.problem
        if match.found is not None:
            plan.reason += (
                "; an addr can only be changed by a platform admin: correct the sheet, or ask one"
            )
        return plan
    if match.device is not None:
        device = match.device
        differing: list[str] = []
        for name, value in record.body.items():
            if not fills(name, record.defaulted, tags_mode):
                continue  # an empty cell (a template default) says nothing about the device
            held = device.get(name)
            if name == "tags":
                ours = (sheet_tags or {}).get(plan.platform_id or 0, set())
                add, remove = tags_to_change(
                    value, held, tags_mode, removable_tags(ours, record.defaulted)
                )
                if add or remove:
                    plan.diff[name] = {
                        "sheet": value,
                        "platform": held,
                        "mode": tags_mode,
                        "add": add,
                        "remove": remove,
                    }
                    differing.append(name)
                continue
            if same(name, value, held):
                continue
            if name == "initialConfig" and isinstance(value, dict):
                # Only the keys that differ, and no LoRaWAN key's value on either side.
                keys = config_differences(value, held)
                platform = held if isinstance(held, dict) else {}
                plan.diff[name] = {
                    "sheet": masked_config({k: value[k] for k in keys}),
                    "platform": masked_config({k: platform.get(k) for k in keys}),
                }
                differing += [f"{CONFIG_PREFIX}{k}" for k in keys]
                continue
            plan.diff[name] = {"sheet": value, "platform": held}
            differing.append(name)
        if plan.diff:
            plan.action = RowAction.DIFFERS
            plan.reason = "on the platform with other values: " + ", ".join(differing)
        else:
            plan.action, plan.reason = RowAction.EXISTS, "already on the platform"
        return plan
    addr = normal_addr(record.body.get("addr"))
    owners = snapshot.by_addr.get(addr, []) if snapshot.match_key != "addr" else []
    if owners:
        owner = owners[0]
        plan.action = RowAction.BLOCKED
        plan.platform_id = owner.get("id")
        plan.reason = (
            f"the addr {record.body.get('addr')} already belongs to platform device "
            f"{owner.get('id')} with serial {owner.get('serial') or '(none)'}"
        )
        return plan
    plan.reason = "not on the platform yet"
    return plan


def _user_plan(record: Record, snapshot: Snapshot) -> RowPlan:
    plan = RowPlan(record.sheet, record.row, RowKind.USER, record.key, RowAction.CREATE)
    if not record.valid:
        plan.action, plan.reason = RowAction.BLOCKED, "invalid row"
    elif snapshot.users_role_missing:
        role = snapshot.users_role_missing
        plan.action, plan.needs_role = RowAction.BLOCKED, role
        plan.reason = (
            f"users need an {role} token: this token was refused the list of users (HTTP "
            f"403); apply again with an {role} token to create them"
        )
    elif snapshot.users is None:
        plan.action = RowAction.UNKNOWN
        plan.reason = f"{snapshot.users_note or 'users not looked up'}; apply will try to create it"
    elif record.key in snapshot.users:
        plan.action, plan.reason = RowAction.EXISTS, "a user with this email exists"
        plan.platform_id = snapshot.users[record.key].get("id")
    else:
        plan.reason = "not on the platform yet"
    return plan


def journal_key(match_key: str, record: Record, kind: RowKind) -> str:
    """The key a row's requests have in the journal: a user's email, a device's key,
    a downlink's device key and type."""
    if kind == RowKind.USER:
        return record.key
    key = normal_key(match_key, record.key)
    return f"{key}/{getattr(record, 'type', '')}" if kind == RowKind.DOWNLINK else key


def queued_before(
    record: Record, platform_id: int | None, earlier: JournalState | None, match_key: str
) -> Entry | None:
    """The journal's record of a run that queued this downlink, if it need not go again.

    Plan's rule and apply's: the same content queued by a run to the same device is
    not sent again (the platform replaces a queued downlink of a type, so a resend
    would only repeat it, and one the device has fetched would be fetched twice). A
    device not on the platform yet (created in this run, or again) gets its downlinks.
    """
    if earlier is None or platform_id is None:
        return None
    done = earlier.done(RowKind.DOWNLINK, journal_key(match_key, record, RowKind.DOWNLINK))
    if done is None or done.platform_id != platform_id:
        return None
    return done if done.payload == payload_fingerprint(record.body) else None


def queued_words(entry: Entry) -> str:
    """A downlink row's words when a run queued it before (plan and apply say the same)."""
    return f"queued on {day_of(entry)}; unchanged in the sheet since"


def _downlink_plan(
    record: Record,
    snapshot: Snapshot,
    device_plans: dict[str, RowPlan],
    earlier: JournalState | None = None,
) -> RowPlan:
    plan = RowPlan(record.sheet, record.row, RowKind.DOWNLINK, record.key, RowAction.QUEUE)
    kind = getattr(record, "type", "")
    if not record.valid:
        plan.action, plan.reason = RowAction.BLOCKED, "invalid row"
        return plan
    key = normal_key(snapshot.match_key, record.key)
    device = device_plans.get(key)
    found = snapshot.by_key.get(key, [])
    if device is not None or len(found) == 1:
        if device is not None:
            plan.platform_id = device.platform_id
            plan.reason = f"{kind} downlink for the device in row {device.row} ({device.action})"
        else:
            plan.platform_id = found[0].get("id")
            plan.reason = f"{kind} downlink for platform device {plan.platform_id}"
        done = queued_before(record, plan.platform_id, earlier, snapshot.match_key)
        if done is not None:
            plan.action, plan.reason = RowAction.EXISTS, queued_words(done)
        return plan
    plan.action = RowAction.BLOCKED
    if found:
        plan.reason = f"{len(found)} platform devices share the {snapshot.match_key} {record.key}"
    else:
        plan.reason = (
            f"no device with {snapshot.match_key} {record.key} in the sheet or on the platform, "
            "or its row is blocked"
        )
    return plan


# --- the plan --------------------------------------------------------------------------------


def fingerprint(sheet: Sheet, template: SiteTemplate) -> str:
    """Changes whenever the sheet file (or DataFrame) or the template changes."""
    digest = hashlib.sha256()
    path = sheet_path(sheet)
    if path is None:
        digest.update(frame_digest(sheet))
    else:
        with path.open("rb") as data:
            for block in iter(lambda: data.read(1 << 20), b""):
                digest.update(block)
    digest.update(repr(template).encode())
    return digest.hexdigest()


@dataclass
class Plan(Result):
    """What apply would do. ``to_dict()`` is the saved plan and the --report .json."""

    source: str
    template: str
    platform: str
    fingerprint: str
    rows: list[RowPlan]
    lookup: LookupStats
    validation: ValidationReport
    made_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    command: str = "plan"
    device_link: str = ""  # a device's page on the platform, {id} for its id: reports link to it

    @property
    def totals(self) -> dict[str, int]:
        totals: dict[str, int] = dict.fromkeys(
            (RowAction.CREATE, RowAction.EXISTS, RowAction.DIFFERS, RowAction.BLOCKED), 0
        )
        for row in self.rows:
            totals[row.action] = totals.get(row.action, 0) + 1
        return totals

    @property
    def sending(self) -> int:
        """The rows apply would send (creates and queued downlinks)."""
        return sum(1 for row in self.rows if row.sends is not None)

    @property
    def ok(self) -> bool:
        return not any(r.action == RowAction.BLOCKED for r in self.rows) and self.validation.ok

    HEADER = (*Result.HEADER, "fingerprint", "lookup")

    def sheet_problems(self) -> list[Problem]:
        return self.validation.problems

    def sheet_records(self) -> SiteRecords:
        return self.validation.records


def make_plan(
    sheet: Sheet,
    template: SiteTemplate,
    client: PlatformClient,
    lookup: str = "auto",
    *,
    validation: ValidationReport | None = None,
    progress: Callable[[str], None] | None = None,
    journal: JournalState | Path | None = None,
    tab: str | None = None,
) -> Plan:
    """Validate the sheet (a file, or DataFrames: ``frames.Sheet``), look up the platform,
    and diff the two. Writes nothing.

    ``tab`` (``--tab``) names the tab that holds the devices.

    ``journal``: what the sheet's earlier runs recorded (the downlinks they queued, the
    tags they put on devices), or the path of its journal (``provisioner plan``: read,
    never locked, since plan writes nothing; a torn last line is skipped, another
    sheet's journal refused).
    """
    if isinstance(journal, Path):
        journal = read_sheet_journal(journal, sheet_name(sheet), client.url)
    report = validation or validate_sheet(sheet, template, tab=tab)
    if progress:
        progress(
            f"reading the platform: looking up {counted(len(report.records.devices), 'device')}"
        )
    snapshot, stats = look_up(client, report.records, template, lookup, progress=progress)
    by_row = {(r.sheet, r.row): r for r in report.problem_rows.values()}
    rows = diff(report.records, snapshot, by_row, template.tags_mode, journal, report.blocked_tabs)
    return Plan(
        source=sheet_name(sheet),
        template=template.ref,
        platform=client.url,
        device_link=client.device_link,
        fingerprint=fingerprint(sheet, template),
        rows=rows,
        lookup=stats,
        validation=report,
    )

"""Which site template reads a sheet: the one the installer meant.

Without ``--template``, in this order:

1. ``apply --plan``: the template the saved plan was made with;
2. the template a workbook this tool wrote records (a blank workbook, an export, a
   results or report copy: ``sheets.TEMPLATE_PROPERTY``);
3. the one built-in template that reads every header of the devices tab with nothing
   required missing (``records.HeaderFit.whole``). When several do and ``default`` is
   one of them, ``default`` (plain field names mean the plain fields); else the one
   peer's template (TTS, ChirpStack, ThingPark) whose signature the headers hold, spelled
   as that peer writes them (``HeaderFit.signed``); else the one of Lobaro's own layouts
   among them; several still fit no better than one another, so none is picked by the
   headers. When none reads every header, the peer's template whose signature is there
   and that maps the most headers: its file with columns it does not read (TTS permits
   any). A template set in
   ``PROVISIONER_TEMPLATE`` or provisioner.toml that reads every header too is kept: a
   site's own copy of a built-in (with its site tag) must not lose to the built-in;
4. ``PROVISIONER_TEMPLATE`` / ``template =`` in provisioner.toml;
5. ``default``, with the built-in template that fits the headers best named first.

``choose_template`` returns the template and the line that names it and says why:
the first line every command that reads a sheet prints.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from provisioner.records import HeaderFit, best_guess, built_in_fits, header_fit
from provisioner.sheets import Workbook, keep_for_next_open, open_workbook
from provisioner.templates import SiteTemplate, TemplateError, load_template

DEFAULT = "default"
ANOTHER = "--template to choose another"


@dataclass(frozen=True)
class Setting:
    """A template set outside the command line: its name or path, and where it was set
    (``PROVISIONER_TEMPLATE``, ``provisioner.toml``)."""

    value: str
    origin: str


@dataclass(frozen=True)
class TemplateChoice:
    """The template a command uses, and its first console line: the template and why."""

    template: SiteTemplate
    line: str


def choose_template(
    sheet: Path | None,
    given: str | None = None,
    *,
    setting: Setting | None = None,
    saved_plan: Path | None = None,
    tab: str | None = None,
) -> TemplateChoice:
    """The template for ``sheet`` (None: a command that reads no sheet, as export);
    ``tab`` (``--tab``) names the tab whose headers count.

    Raises TemplateError when the template given, recorded or set cannot be loaded,
    and SheetError when the sheet cannot be read (or has no tab ``tab``).
    """
    if given is not None:
        return _chose(load_template(given), "given with --template")
    if saved_plan is not None:
        planned = saved_plan_template(saved_plan)
        if planned is not None:
            template = _load_recorded(planned, saved_plan)
            return _chose(template, f"the one {saved_plan.name} was made with; {ANOTHER}")
    set_template = None
    if setting is not None:
        try:
            set_template = load_template(setting.value)
        except TemplateError as exc:
            raise TemplateError(f"the template set in {setting.origin}: {exc}") from None
    if sheet is None:
        if set_template is not None and setting is not None:
            return _chose(set_template, f"from {setting.origin}")
        return _chose(load_template(DEFAULT), "the default")
    workbook = open_workbook(sheet)
    try:
        return _choose_for(workbook, sheet, setting, set_template, tab)
    finally:
        # The command reads the same file next: it gets the tables read here.
        keep_for_next_open(workbook)


def _choose_for(
    workbook: Workbook,
    sheet: Path,
    setting: Setting | None,
    set_template: SiteTemplate | None,
    tab: str | None,
) -> TemplateChoice:
    if workbook.template is not None:
        template = _load_recorded(workbook.template, sheet)
        return _chose(template, f"recorded in {sheet.name}, which this tool made; {ANOTHER}")
    if set_template is not None and setting is not None:
        if header_fit(workbook, set_template, tab).whole:
            return _chose(set_template, f"from {setting.origin}; it fits the headers")
    fits = built_in_fits(workbook, tab)
    whole = [f for f in fits if f.whole]
    names = [f.template.name for f in whole]
    fitting = _one_of(whole)
    if fitting is not None:
        return _chose(fitting.template, f"fits the headers; {ANOTHER}")
    # A peer's file is its file with columns that peer ignores (TTS permits any): the peer's
    # whose signature is there and that reads the most of it.
    signed = [f for f in fits if f.signed and not f.missing]
    most = max((f.mapped for f in signed), default=0)
    signed = [f for f in signed if f.mapped == most]
    if len(signed) == 1 and not whole:
        peer = signed[0].template
        assert peer.peer is not None
        return _chose(
            peer,
            f"{peer.peer.name}'s own headers; the columns it does not read are not sent; {ANOTHER}",
        )
    if set_template is not None and setting is not None:
        return _chose(set_template, f"from {setting.origin}")
    tied = names or [f.template.name for f in signed if len(signed) > 1]
    return _chose(load_template(DEFAULT), _no_fit(fits, tied))


def _one_of(whole: list[HeaderFit]) -> HeaderFit | None:
    """The template of several that read every header: ``default`` among them (plain field
    names mean the plain fields); else the one peer's whose signature the headers hold
    (``dev_eui`` as TTS spells it); else the one of Lobaro's own layouts (``DevEUI`` with
    lorawan-meter, though a peer reads it too). None when that leaves several."""
    if len(whole) == 1:
        return whole[0]
    for found in whole:
        if found.template.name == DEFAULT:
            return found
    signed = [f for f in whole if f.signed]
    if signed:
        return signed[0] if len(signed) == 1 else None
    own = [f for f in whole if f.template.peer is None]
    return own[0] if len(own) == 1 else None


def _no_fit(fits: list[HeaderFit], alike: list[str]) -> str:
    """Why no built-in template was picked by the headers, and which to try; ``alike``: the
    templates that fit them alike (each whole, or peers' whose signature is there)."""
    if alike:
        quoted = " and ".join(f"'{name}'" for name in alike)
        return f"the headers fit {quoted} alike: add --template NAME to choose"
    guess = best_guess(fits, besides=DEFAULT)
    if guess is not None:
        return (
            f"these headers fit the template '{guess}' best (not every column): "
            f"add --template {guess} if the sheet is meant for it"
        )
    return "no template fits these headers: `provisioner templates` lists them; --template NAME"


def _chose(template: SiteTemplate, why: str) -> TemplateChoice:
    return TemplateChoice(template, f"template {template.ref}: {why}")


def saved_plan_template(path: Path) -> str | None:
    """The template a plan saved by ``plan --out`` was made with; None when the file does
    not say (apply's check of the saved plan reports a file that is not a plan)."""
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    template = saved.get("template") if isinstance(saved, dict) else None
    return template if isinstance(template, str) and template else None


def _load_recorded(ref: str, where: Path) -> SiteTemplate:
    """A template a workbook or a saved plan records: a built-in by name; a template file
    by its path, as given then, else beside the file that records it."""
    is_file = ref.endswith(".toml") or "/" in ref or "\\" in ref
    if not is_file:
        try:
            return load_template(ref)
        except TemplateError as exc:
            raise TemplateError(f"{where.name} records the template '{ref}': {exc}") from None
    recorded = Path(ref)
    candidates = [recorded, where.parent / recorded, where.parent / recorded.name]
    for candidate in dict.fromkeys(candidates):
        if candidate.is_file():
            return load_template(str(candidate))
    raise TemplateError(
        f"{where.name} was made with the template file {ref}, which is not there "
        f"(nor beside {where.name}): give its path with --template FILE.toml"
    )

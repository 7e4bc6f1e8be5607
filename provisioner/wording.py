"""The blank workbook's words in English and German: every text in one place.

``say(lang, message, **values)`` gives one text. ``header_in`` and ``tab_in``
say how a workbook in a language names a template's columns and tabs: only
with names the template reads, so that a filled-in German workbook validates.
"""

from __future__ import annotations

from collections.abc import Iterable

from provisioner.templates import SiteTemplate, TabSpec, header_key

LANGUAGES = ("en", "de")

# Message id -> (English, German). Placeholders are str.format fields.
_TEXTS: dict[str, tuple[str, str]] = {
    # --- what goes in a column ---
    "devices.addr": (
        "The address the platform knows the device by: a LoRaWAN DevEUI, an NB-IoT modem "
        "IMEI or a gateway address. No spaces; unique across the platform.",
        "Die Adresse, unter der die Plattform das Gerät kennt: eine LoRaWAN-DevEUI, die IMEI "
        "eines NB-IoT-Modems oder eine Gateway-Adresse. Ohne Leerzeichen; auf der ganzen "
        "Plattform eindeutig.",
    ),
    "devices.name": (
        "The display name; the platform uses the address when it is empty.",
        "Der Anzeigename; ist er leer, zeigt die Plattform die Adresse.",
    ),
    "devices.serial": (
        "The serial number printed on the device label.",
        "Die Seriennummer vom Typenschild des Geräts.",
    ),
    "devices.description": (
        "Free text, e.g. where the device is mounted.",
        "Freitext, z. B. wo das Gerät montiert ist.",
    ),
    "devices.deviceTypeId": (
        "The number of the device type on the platform.",
        "Die Nummer des Gerätetyps auf der Plattform.",
    ),
    "devices.tags": (
        "Labels to find the device by on the platform.",
        "Schlagworte, unter denen das Gerät auf der Plattform zu finden ist.",
    ),
    "devices.lat": (
        "Latitude in decimal degrees (-90 to 90); give lon as well.",
        "Breitengrad in Dezimalgrad (-90 bis 90); den Längengrad ebenfalls angeben.",
    ),
    "devices.lon": (
        "Longitude in decimal degrees (-180 to 180); give lat as well.",
        "Längengrad in Dezimalgrad (-180 bis 180); den Breitengrad ebenfalls angeben.",
    ),
    "devices.certEnforcesDtls": (
        "Whether the device must use DTLS with its certificate: true or false.",
        "Ob das Gerät DTLS mit seinem Zertifikat nutzen muss: ja oder nein.",
    ),
    "devices.config": (
        "Initial configuration: a JSON object, or key=value pairs separated by ';'.",
        "Anfangskonfiguration: ein JSON-Objekt oder Paare key=value, getrennt durch ';'.",
    ),
    "devices.cfg": (
        "Initial configuration value '{key}', which the device gets on its first contact.",
        "Wert '{key}' der Anfangskonfiguration, den das Gerät beim ersten Kontakt erhält.",
    ),
    "users.name": ("The person's full name.", "Der vollständige Name der Person."),
    "users.email": (
        "The user's login: an email address.",
        "Die Anmeldung des Benutzers: eine E-Mail-Adresse.",
    ),
    "users.roles": (
        "What the user may do on the platform. One of {roles}, or several separated by {sep}.",
        "Was der Benutzer auf der Plattform darf. Eine von {roles}, oder mehrere durch "
        "{sep} getrennt.",
    ),
    "downlinks.key": (
        "The device the downlink is for: its {key} as in the '{header}' column of the {tab} tab.",
        "Das Gerät, für das der Downlink ist: seine {key} wie in der Spalte '{header}' des "
        "Blatts '{tab}'.",
    ),
    "downlinks.type": (
        "The kind of downlink. One of {types}.",
        "Die Art des Downlinks. Einer von {types}.",
    ),
    "downlinks.payload": (
        "The downlink as a JSON object; its form depends on the type: config "
        '{{"d": {{...}}, "q": "config"}}, lorawan {{"data": ..., "type": ..., "fPort": ...}}, '
        'raw {{"format": ..., "data": ...}}.',
        "Der Downlink als JSON-Objekt; seine Form hängt vom Typ ab: config "
        '{{"d": {{...}}, "q": "config"}}, lorawan {{"data": ..., "type": ..., "fPort": ...}}, '
        'raw {{"format": ..., "data": ...}}.',
    ),
    "field": ("The {name}.", "Das Feld {name}."),
    "password": (
        "{rule} Passwords never appear in any report, log or journal.",
        # The schema's rule in German; the length comes from the schema.
        "Mindestens {min_length} Zeichen, davon mindestens ein Buchstabe und eine Ziffer. "
        "Passwörter erscheinen in keinem Bericht, Protokoll oder Journal.",
    ),
    "matched_by_column": (
        "Devices are matched to the platform by this column.",
        "Über diese Spalte werden die Geräte der Plattform zugeordnet.",
    ),
    "device_type_list": (
        "Pick one from the list (the number before ' - ' is the type); a type number alone "
        "works too.",
        "Aus der Liste wählen (die Zahl vor ' - ' ist der Typ); eine Typnummer allein geht auch.",
    ),
    "separate": ("Separate several with {sep}.", "Mehrere durch {sep} trennen."),
    "or": ("{a} or {b}", "{a} oder {b}"),
    "needed_in_row": ("Needed in every filled-in row.", "Pflicht in jeder ausgefüllten Zeile."),
    # The match key in words.
    "key.serial": ("serial", "Seriennummer"),
    "key.addr": ("addr", "Adresse"),
    # --- rules and defaults ---
    "hex_digits": ("{n} hex digits (0-9, A-F).", "{n} Hex-Ziffern (0-9, A-F)."),
    "digits": ("{n} digits.", "{n} Ziffern."),
    "pattern": ("Must match the pattern {pattern}", "Muss dem Muster {pattern} entsprechen."),
    "adds_tags": (
        "The template adds the tags {tags} to every row.",
        "Die Vorlage fügt jeder Zeile die Schlagworte {tags} hinzu.",
    ),
    "left_empty": ("Left empty: {value}.", "Leer gelassen: {value}."),
    "true": ("true", "ja"),
    "false": ("false", "nein"),
    # --- headers and dropdowns ---
    "required": ("required", "Pflicht"),
    "optional": ("optional", "optional"),
    "example": ("Example: {example}.", "Beispiel: {example}."),
    "not_in_list_title": ("{header}: not in the list", "{header}: nicht in der Liste"),
    "pick_one": (
        "Pick one of: {choices}. See the {tab} tab.",
        "Bitte einen Wert wählen: {choices}. Siehe Blatt '{tab}'.",
    ),
    "pick_or_keep": (
        "Not in the list: pick a value from it, or choose Yes to keep yours. See the {tab} tab.",
        "Nicht in der Liste: wählen Sie einen Wert daraus, oder behalten Sie Ihren mit 'Ja'. "
        "Siehe Blatt '{tab}'.",
    ),
    # --- the Instructions tab ---
    "instructions_tab": ("Instructions", "Anleitung"),
    "lists_tab": ("Lists", "Listen"),
    "title": (
        "How to fill in this workbook (site template '{name}')",
        "So füllen Sie diese Arbeitsmappe aus (Vorlage '{name}')",
    ),
    "rows": (
        "Write one row per device on the '{devices}' tab, from row 2 on. The '{users}' and "
        "'{downlinks}' tabs are optional: fill them in only to add platform users or to queue "
        "downlinks, otherwise leave them empty.",
        "Tragen Sie auf dem Blatt '{devices}' ab Zeile 2 ein Gerät pro Zeile ein. Die Blätter "
        "'{users}' und '{downlinks}' sind optional: füllen Sie sie nur aus, um Benutzer auf der "
        "Plattform anzulegen oder Downlinks einzureihen, sonst lassen Sie sie leer.",
    ),
    "matched_by": (
        "Devices are matched to the platform by their {key} (column '{header}'): every row "
        "needs one, and each only once. A device already on the platform is never created "
        "again, so running apply twice is safe.",
        "Geräte werden der Plattform über ihre {key} zugeordnet (Spalte '{header}'): jede "
        "Zeile braucht eine, und jede nur einmal. Ein Gerät, das schon auf der Plattform ist, "
        "wird nie ein zweites Mal angelegt; apply zweimal auszuführen ist also sicher.",
    ),
    "colours": (
        "Yellow headers are required, grey ones optional. Selecting a cell shows what goes "
        "in; columns with a dropdown offer the allowed values.",
        "Gelbe Überschriften sind Pflicht, graue optional. Eine ausgewählte Zelle zeigt, was "
        "hinein gehört; Spalten mit Auswahlliste bieten die erlaubten Werte an.",
    ),
    "identifiers": (
        "Identifier columns are formatted as Text: type them exactly as printed on the label. "
        "Paste with 'Paste Values' (Ctrl+Shift+V) so the columns stay Text; an identifier that "
        "Excel has turned into a number (3.52656E+14, lost leading zeros) is reported.",
        "Spalten mit Kennungen sind als Text formatiert: tragen Sie sie genau so ein, wie sie "
        "auf dem Typenschild stehen. Fügen Sie mit 'Werte einfügen' (Strg+Umschalt+V) ein, "
        "damit die Spalten Text bleiben; eine Kennung, die Excel in eine Zahl verwandelt hat "
        "(3,52656E+14, verlorene führende Nullen), wird gemeldet.",
    ),
    "passwords": (
        "Passwords on the '{tab}' tab: {policy} Delete the passwords from this file after "
        "apply, or share it only with people who may see them.",
        "Passwörter auf dem Blatt '{tab}': {policy} Löschen Sie die Passwörter nach apply aus "
        "dieser Datei, oder geben Sie sie nur an Personen weiter, die sie sehen dürfen.",
    ),
    "defaults": (
        "Empty cells on the '{tab}' tab get the template's defaults: {values}.",
        "Leere Zellen auf dem Blatt '{tab}' erhalten die Vorgaben der Vorlage: {values}.",
    ),
    "also_tags": (
        "Every device also gets the tags {tags}.",
        "Jedes Gerät erhält außerdem die Schlagworte {tags}.",
    ),
    "site_tag": (
        "Every device gets the site tag '{tag}', by which plan finds this site's devices on "
        "the platform.",
        "Jedes Gerät erhält das Standort-Tag '{tag}', über das plan die Geräte dieses "
        "Standorts auf der Plattform findet.",
    ),
    "no_site_tag": ("This template sets no site tag.", "Diese Vorlage setzt kein Standort-Tag."),
    "run": (
        "When the workbook is filled in, run:",
        "Ist die Arbeitsmappe ausgefüllt, führen Sie aus:",
    ),
    "run_validate": (
        "(checks every cell; nothing is sent)",
        "(prüft jede Zelle; nichts wird gesendet)",
    ),
    "run_plan": (
        "(shows what would happen on the platform)",
        "(zeigt, was auf der Plattform geschehen würde)",
    ),
    "run_apply": (
        "(after any failure, the same command continues where it stopped)",
        "(nach jedem Fehler macht derselbe Befehl dort weiter, wo er aufgehört hat)",
    ),
    "recorded": (
        "The workbook records its site template '{name}' in its document properties, which "
        "survive editing and saving: the commands find it even without --template.",
        "Die Arbeitsmappe vermerkt ihre Vorlage '{name}' in den Dokumenteigenschaften, die "
        "Bearbeiten und Speichern überstehen: die Befehle finden sie auch ohne --template.",
    ),
    "table_tab": ("Tab", "Blatt"),
    "table_column": ("Column", "Spalte"),
    "table_required": ("Required", "Pflicht"),
    "table_what": ("What goes in", "Was hinein gehört"),
    "table_example": ("Example", "Beispiel"),
    "table_format": ("Cell format", "Zellformat"),
    "format_text": ("Text", "Text"),
    "format_number": ("Number", "Zahl"),
    "format_dropdown": (", dropdown", ", Auswahlliste"),
    "device_types": ("Device types (column '{header}')", "Gerätetypen (Spalte '{header}')"),
    # --- the Instructions tab of an export ---
    "export.made": (
        "Exported from {url} on {made_at}: the devices {selection}, in the layout of the site "
        "template '{name}'.",
        "Exportiert aus {url} am {made_at}: die Geräte {selection}, im Aufbau der Vorlage "
        "'{name}'.",
    ),
    "export.incomplete": (
        "Exported from {url} on {made_at}: INCOMPLETE: some of the devices {selection}, in the "
        "layout of the site template '{name}'.",
        "Exportiert aus {url} am {made_at}: UNVOLLSTÄNDIG: ein Teil der Geräte {selection}, im "
        "Aufbau der Vorlage '{name}'.",
    ),
    "export.missing": ("Devices may be missing: {why}.", "Es können Geräte fehlen: {why}."),
    "export.reads_back": (
        "The '{tab}' tab holds one row per device as the platform holds it, and reads back "
        "through the same template:",
        "Das Blatt '{tab}' enthält eine Zeile je Gerät, wie die Plattform es führt, und lässt "
        "sich mit derselben Vorlage wieder einlesen:",
    ),
    "export.valid": ("(every row is valid)", "(jede Zeile ist gültig)"),
    "export.exists": (
        "(every row exists on the platform)",
        "(jede Zeile gibt es auf der Plattform)",
    ),
    "export.update": (
        "Correct a row and run apply with --update to bring the platform in line; add rows for "
        "new devices and apply creates them:",
        "Berichtigen Sie eine Zeile und führen Sie apply mit --update aus, um die Plattform "
        "anzugleichen; für neue Geräte fügen Sie Zeilen hinzu, apply legt sie an:",
    ),
    "export.text": (
        "Identifier columns are formatted as Text: keep them so (paste with Paste Values), "
        "or Excel turns long numbers into 3.52656E+14 and drops leading zeros.",
        "Spalten mit Kennungen sind als Text formatiert: lassen Sie sie so (einfügen mit "
        "'Werte einfügen'), sonst macht Excel aus langen Zahlen 3,52656E+14 und lässt "
        "führende Nullen weg.",
    ),
    "export.keys": (
        "This workbook holds LoRaWAN keys as the platform gave them: share it only with "
        "people who may see them.",
        "Diese Arbeitsmappe enthält LoRaWAN-Schlüssel, wie die Plattform sie ausgab: geben Sie "
        "sie nur an Personen weiter, die sie sehen dürfen.",
    ),
    "export.users": (
        "The '{tab}' tab lists the platform's users: name, email and roles. Passwords are "
        "never exported (the platform gives none out): the password column is empty.",
        "Das Blatt '{tab}' listet die Benutzer der Plattform: Name, E-Mail und Rollen. "
        "Passwörter werden nie exportiert (die Plattform gibt keine heraus): die Spalte "
        "Passwort ist leer.",
    ),
    "export.users_apply": (
        "The tool does not read that tab. To create these users on another platform, fill in "
        "a password for each (at least 10 characters with a letter and a digit) and rename the "
        "tab to '{users}'.",
        "Das Werkzeug liest dieses Blatt nicht. Um diese Benutzer auf einer anderen Plattform "
        "anzulegen, tragen Sie für jeden ein Passwort ein (mindestens 10 Zeichen mit einem "
        "Buchstaben und einer Ziffer) und benennen Sie das Blatt in '{users}' um.",
    ),
    "export.notes": (
        "Notes of the export:",
        "Hinweise des Exports (in den Worten der Konsole):",
    ),
}

# The built-in templates' descriptions in German (a template file's own description is
# shown as its author wrote it).
_GERMAN_DESCRIPTIONS = {
    "default": "Die Felder von deviceInput als Spalten: addr, name, serial, description, "
    "deviceTypeId, tags, lat/lon, certEnforcesDtls, config, cfg:<key>",
    "lobaro-hardware-import": "Das CSV des Hardware-Imports von Lobaro, wie es ist: address, "
    "name, serial, firmware, config, cfg:<key>",
    "lorawan-meter": "LoRaWAN-Zähler: addr ist die DevEUI (16 Hex-Ziffern), JoinEUI/AppKey "
    "gehen in die Anfangskonfiguration, Typ 4",
    "wmbus-gateway-nbiot": "NB-IoT-wMBus-Gateways: addr ist die IMEI des Modems (15 Ziffern), "
    "Typ 2, Schlagwort MbusGw",
}


def description_in(template: SiteTemplate, lang: str) -> str:
    """The template's description in ``lang``: a built-in's in German too, a template
    file's in its author's words."""
    if lang == "de" and template.source == "built-in":
        return _GERMAN_DESCRIPTIONS.get(template.name, template.description)
    return template.description


# German headers for the fields. Used only where the template reads them (see header_in).
_GERMAN_HEADERS = {
    "devices": {
        "addr": "Adresse",
        "name": "Bezeichnung",
        "serial": "Seriennummer",
        "description": "Beschreibung",
        "deviceTypeId": "Gerätetyp",
        "tags": "Schlagworte",
        "lat": "Breitengrad",
        "lon": "Längengrad",
        "certEnforcesDtls": "DTLS",
        "config": "Konfiguration",
    },
    "users": {"name": "Name", "email": "E-Mail", "password": "Passwort", "roles": "Rollen"},
    "downlinks": {"key": "Gerät", "type": "Typ", "payload": "Inhalt"},
}
_GERMAN_TABS = {"devices": "Geräte", "users": "Benutzer", "downlinks": "Downlinks"}


# The words the reports add to a copy of a workbook (columns, tabs, the Errors tab's
# columns, the labels of a cell's comment) -> German. JSON keys stay English: a contract.
_REPORT_WORDS = {
    "Action": "Aktion",
    "Status": "Status",
    "Platform id": "Plattform-ID",
    "Message": "Meldung",
    "Online": "Online",
    "Last data": "Letzte Daten",
    "Records": "Datensätze",
    "Sends": "Sendet",
    "Errors": "Fehler",
    "Failed": "Fehlgeschlagen",
    "Silent": "Ohne Daten",
    "Sheet": "Blatt",
    "Row": "Zeile",
    "Key": "Schlüssel",
    "Cell": "Zelle",
    "Column": "Spalte",
    "Severity": "Schweregrad",
    "Value": "Wert",
    "Fix": "Behebung",
    "error": "Fehler",
    "warning": "Warnung",
    "fix": "Behebung",
}
# The outcome columns a German report adds: a copy read again knows them.
GERMAN_OUTCOME_HEADERS = frozenset(
    _REPORT_WORDS[name]
    for name in ("Action", "Status", "Online", "Last data", "Records", "Platform id", "Message")
) | {_REPORT_WORDS["Sends"]}


def report_word(lang: str, english: str) -> str:
    """A column, tab or label a report adds, in ``lang``."""
    return _REPORT_WORDS.get(english, english) if lang == "de" else english


def language_of(names: Iterable[str]) -> str:
    """The language of a workbook by its tab names and headers: "de" when more of them
    are the German words a blank workbook has (Geräte, Seriennummer, Anleitung...) than
    the English ones (Devices, serial, Instructions...); "en" otherwise."""
    german_words = {
        header_key(word)
        for words in (*_GERMAN_HEADERS.values(), _GERMAN_TABS)
        for word in words.values()
    } | {header_key(_TEXTS["instructions_tab"][1])}
    english_words = {header_key(word) for words in _GERMAN_HEADERS.values() for word in words} | {
        header_key(word) for word in ("Devices", "Users", _TEXTS["instructions_tab"][0])
    }
    both = german_words & english_words  # Name, Downlinks
    german = english = 0
    for name in names:
        key = header_key(name)
        german += key in german_words - both
        english += key in english_words - both
    return "de" if german > english else "en"


def say(lang: str, message: str, **values: object) -> str:
    """The text of ``message`` in ``lang`` ("en" or "de"), with ``values`` filled in."""
    english, german = _TEXTS[message]
    return (german if lang == "de" else english).format(**values)


def separators_in(spec: TabSpec, lang: str) -> str:
    """What separates several tags (or roles) in one cell, in words: "',' or ';'"."""
    marks = [f"'{mark}'" for mark in spec.list_separators]
    return say(lang, "or", a=", ".join(marks[:-1]), b=marks[-1]) if len(marks) > 1 else marks[0]


def header_in(spec: TabSpec, name: str, lang: str) -> str:
    """The header of field ``name`` in a blank workbook in ``lang``.

    The template's first alias, except in German where that alias is only the field's
    own name (the template chose no header of its own, as "DevEUI" or "IMEI" are) and
    the template also reads the German header: a header it did not read would make the
    filled-in workbook fail to validate.
    """
    first = spec.columns[name][0]
    german = _GERMAN_HEADERS.get(spec.section, {}).get(name)
    if (
        lang == "de"
        and german is not None
        and header_key(first) == header_key(name)
        and spec.field_for(german) == name
    ):
        return german
    return first


def tab_in(spec: TabSpec, lang: str) -> str:
    """The tab's name in ``lang``: in German the template's German name when it reads one."""
    if lang == "de":
        german = _GERMAN_TABS[spec.section].casefold()
        for name in (spec.tab, *spec.tab_aliases):
            if name.casefold() == german:
                return name
    return spec.tab

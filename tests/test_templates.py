"""Site templates: the built-in ones load, and every mistake in a template is named."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from provisioner.templates import (
    TabSpec,
    TemplateError,
    list_templates,
    load_template,
)

MINIMAL = """\
description = "test site"
[devices.columns]
addr = ["addr"]
serial = ["serial"]
"""


def write(tmp_path: Path, text: str, name: str = "site.toml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return str(path)


def error_for(tmp_path: Path, text: str) -> str:
    with pytest.raises(TemplateError) as info:
        load_template(write(tmp_path, text))
    return str(info.value)


def test_the_built_in_templates_are_listed() -> None:
    assert list_templates() == [
        "chirpstack",
        "default",
        "lobaro-hardware-import",
        "lorawan-meter",
        "thingpark",
        "tts",
        "wmbus-gateway-nbiot",
    ]
    peers = {name: load_template(name).peer for name in list_templates()}
    assert {name for name, peer in peers.items() if peer is not None} == {
        "chirpstack",
        "thingpark",
        "tts",
    }


@pytest.mark.parametrize("name", list_templates())
def test_every_built_in_template_loads(name: str) -> None:
    template = load_template(name)
    assert template.name == name
    assert template.source == "built-in"
    # "Haus 4; Keller" is two tags, as installers mean it: no built-in narrows that, but
    # ChirpStack's key:value|key:value.
    separators = ("|",) if name == "chirpstack" else (",", ";")
    assert template.devices.list_separators == separators
    assert template.description and "\n" not in template.description
    assert template.match_key in ("serial", "addr")
    assert "addr" in template.devices.columns
    assert template.match_key in template.devices.columns
    assert template.devices.config_prefix == "cfg:"
    assert template.device_types
    assert template.devices.defaults["deviceTypeId"] in template.device_types
    # Users and Downlinks come from the built-in defaults.
    assert template.users.field_for("E-Mail") == "email"
    assert template.users.field_for("Passwort") == "password"
    assert template.downlinks.field_for("Inhalt") == "payload"
    assert template.users.config_prefix == template.downlinks.config_prefix == ""


def test_default_template_offers_the_sandbox_device_types() -> None:
    template = load_template("default")
    assert template.device_types == {
        1: "Generic Device",
        2: "Lobaro wMBus Gateway (NB-IoT)",
        3: "Lobaro LoRaWAN wMBus Bridge",
        4: "LoRaWAN Meter",
        5: "Lobaro Modbus Bridge",
        6: "Lobaro Pressure Sensor",
    }
    assert template.match_key == "serial"
    assert template.site_tag is None


def test_hardware_import_takes_the_csv_as_is() -> None:
    devices = load_template("lobaro-hardware-import").devices
    headers = ["address", "name", "serial", "firmware", "config", "cfg:listenCron"]
    fields = [devices.field_for(h) for h in headers]
    assert fields == ["addr", "name", "serial", None, "config", "cfg:listenCron"]
    assert devices.is_ignored("firmware") and devices.is_ignored("Firmware")
    assert not devices.is_ignored("colour")


def test_nbiot_gateway_addr_is_a_15_digit_imei() -> None:
    template = load_template("wmbus-gateway-nbiot")
    devices = template.devices
    assert devices.field_for("IMEI") == "addr"
    assert devices.field_for("Seriennummer") == "serial"
    assert devices.field_for("Standort") == "description"
    assert devices.field_for("Wohnung") == "tags"
    rule = devices.rules["addr"]
    assert rule.digits == 15 and rule.identifier and "IMEI" in rule.hint
    assert devices.defaults == {"deviceTypeId": 2, "tags": ["MbusGw"]}


def test_lorawan_meter_keys_are_hex_identifiers() -> None:
    template = load_template("lorawan-meter")
    devices = template.devices
    assert template.match_key == "addr"
    assert devices.field_for("DevEUI") == "addr"
    assert devices.field_for("AppEUI") == "cfg:JoinEUI"
    assert devices.field_for("cfg:AppKey") == "cfg:AppKey"
    assert devices.rules["addr"].hex_length == 16
    assert devices.rules["cfg:DevEUI"].hex_length == 16
    assert devices.rules["cfg:JoinEUI"].hex_length == 16
    assert devices.rules["cfg:AppKey"].hex_length == 32
    for field in ("addr", "cfg:DevEUI", "cfg:JoinEUI", "cfg:AppKey"):
        assert devices.is_identifier(field)
    assert not devices.is_identifier("cfg:listenCron")
    assert devices.defaults["deviceTypeId"] == 4
    # The Downlinks tab names devices by DevEUI too, with the same rule.
    assert template.downlinks.field_for("Dev-EUI") == "key"
    assert template.downlinks.rules["key"].hex_length == 16


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("serial", "serial"),
        ("Serial Number", "serial"),
        ("SERIAL_NUMBER", "serial"),
        ("serial-number", "serial"),
        (" Seriennummer ", "serial"),
        ("adresse", "addr"),
        ("Gerätetyp-ID", "deviceTypeId"),
        ("gerätetyp id", "deviceTypeId"),
        ("Gera\u0308tetyp", "deviceTypeId"),  # decomposed umlauts, as some tools write them
        ("Längengrad", "lon"),
        ("device\u00a0type", "deviceTypeId"),  # a non-breaking space
        ("cfg:listenCron", "cfg:listenCron"),
        ("CFG: listenCron", "cfg:listenCron"),
        ("cfg:", None),
        ("colour", None),
        ("", None),
    ],
)
def test_field_for_ignores_case_spaces_and_dashes(header: str, field: str | None) -> None:
    assert load_template("default").devices.field_for(header) == field


def test_identifiers() -> None:
    devices = load_template("default").devices
    assert devices.is_identifier("addr") and devices.is_identifier("serial")
    assert not devices.is_identifier("name")
    assert not devices.is_identifier("cfg:listenCron")
    assert load_template("default").downlinks.is_identifier("key")


def test_downlink_key_takes_the_devices_match_key_headers() -> None:
    downlinks = load_template("default").downlinks
    assert downlinks.field_for("Seriennummer") == "key"
    assert downlinks.field_for("Schlüssel") == "key"
    assert downlinks.field_for("Typ") == "type"


def test_unknown_template_name_suggests_the_nearest() -> None:
    with pytest.raises(TemplateError) as info:
        load_template("lorawan-meters")
    message = str(info.value)
    assert "did you mean 'lorawan-meter'?" in message
    assert "default, lobaro-hardware-import, lorawan-meter, thingpark" in message


def test_missing_template_file(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="does not exist"):
        load_template(str(tmp_path / "nope.toml"))


def test_template_from_a_path(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        description = "Haus 4"
        match_key = "addr"
        site_tag = "Site-HH-04"

        [devices]
        tab = "Zähler"
        list_separator = ";"
        config_prefix = "Konfig:"
        ignore = ["Bemerkung"]

        [devices.columns]
        addr = ["Adresse"]
        deviceTypeId = "Typ"

        [devices.defaults]
        deviceTypeId = 4
        tags = ["Haus4"]
        lat = 53.55
        lon = 10
        config = { listenCron = "0 0/20 * * * *" }

        [devices.rules.addr]
        pattern = "^[0-9A-F]{16}$"

        [users]
        tab = ["Team"]

        [users.defaults]
        roles = ["device-admin"]

        [downlinks.defaults]
        type = "config"

        [device_types]
        4 = "LoRaWAN Meter"
        """,
        name="haus-4.toml",
    )
    template = load_template(path)
    assert template.name == "haus-4"
    assert template.source == path
    assert template.site_tag == "Site-HH-04"
    devices = template.devices
    assert devices.tab == "Zähler" and devices.tab_aliases == ()
    assert devices.list_separator == ";"
    assert devices.list_separators == (";",)  # named: that one alone
    assert template.users.list_separators == (",", ";")  # not named: both
    assert devices.field_for("Konfig:mFilter") == "cfg:mFilter"
    assert devices.field_for("cfg:mFilter") is None
    assert devices.field_for("typ") == "deviceTypeId"
    assert devices.field_for("Bemerkung") is None and devices.is_ignored("bemerkung")
    assert devices.defaults["config"] == {"listenCron": "0 0/20 * * * *"}
    rule = devices.rules["addr"]
    assert rule.pattern is not None and rule.pattern.fullmatch("0004A30B001C0530")
    assert rule.identifier
    assert template.users.tab == "Team"
    assert template.users.field_for("Rollen") == "roles"
    assert template.users.defaults == {"roles": ["device-admin"]}
    assert template.downlinks.defaults == {"type": "config"}
    assert template.downlinks.field_for("Adresse") == "key"
    assert template.device_types == {4: "LoRaWAN Meter"}


COLUMNS = '[devices.columns]\naddr = ["addr"]\nserial = ["serial"]\n'


@pytest.mark.parametrize(
    ("text", "unknown", "suggestion"),
    [
        ('match_kye = "addr"\n' + COLUMNS, "key 'match_kye' in ", "match_key"),
        ('[devices]\ntabb = "x"\n' + COLUMNS, "key 'tabb' in [devices] of ", "tab"),
        (COLUMNS + 'adress = ["x"]\n', "field 'adress' in [devices.columns] of ", "addr"),
        (
            COLUMNS + "[devices.defaults]\ndeviceTypeID = 2\n",
            "field 'deviceTypeID'",
            "deviceTypeId",
        ),
        (
            COLUMNS + "[devices.rules.serail]\ndigits = 8\n",
            "field 'serail' in [devices.rules]",
            "serial",
        ),
        (
            COLUMNS + "[devices.rules.addr]\nhex_lenght = 16\n",
            "key 'hex_lenght' in [devices.rules.addr]",
            "hex_length",
        ),
        (
            COLUMNS + '[users]\nlist_seperator = ";"\n',
            "key 'list_seperator' in [users] of ",
            "list_separator",
        ),
        (COLUMNS + '[users.columns]\nemial = ["x"]\n', "field 'emial' in [users.columns]", "email"),
        (
            COLUMNS + '[downlinks.defaults]\ntpye = "fw"\n',
            "field 'tpye' in [downlinks.defaults]",
            "type",
        ),
        (COLUMNS + '[device_type]\n1 = "x"\n', "key 'device_type' in ", "device_types"),
    ],
)
def test_unknown_keys_name_the_file_and_suggest_the_nearest(
    tmp_path: Path, text: str, unknown: str, suggestion: str
) -> None:
    message = error_for(tmp_path, text)
    assert message.startswith("unknown " + unknown), message
    assert message.endswith(f"site.toml: did you mean '{suggestion}'?"), message


def test_unknown_key_without_a_near_one_lists_the_valid_ones(tmp_path: Path) -> None:
    message = error_for(tmp_path, 'colour = "red"\n' + COLUMNS)
    assert "unknown key 'colour'" in message
    assert "expected one of: description, match_key, site_tag" in message


def test_unknown_top_level_key_message(tmp_path: Path) -> None:
    path = write(tmp_path, 'match_kye = "addr"\n' + MINIMAL)
    with pytest.raises(TemplateError) as info:
        load_template(path)
    assert str(info.value) == f"unknown key 'match_kye' in {path}: did you mean 'match_key'?"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            MINIMAL + 'name = ["Adresse"]\ndescription = ["adresse "]\n',
            "alias of both 'name' and 'description'",
        ),
        (MINIMAL + 'name = ["ADDR"]\n', "alias of both 'addr' and 'name'"),
        (MINIMAL + "[devices.rules.addr]\npattern = '[0-9'\n", "not a valid regular expression"),
        ('match_key = "imei"\n' + MINIMAL, "must be 'serial' or 'addr'"),
        ("[devices]\n", "has no [devices.columns]"),
        ("description = 'x'\n", "has no [devices.columns]"),
        ('[devices.columns]\naddr = ["a"]\n', "has no 'serial'"),
        ('match_key = "addr"\n[devices.columns]\nserial = ["s"]\n', "has no 'addr'"),
        (MINIMAL + '[devices.defaults]\ndeviceTypeId = "2"\n', "whole number"),
        (MINIMAL + "[devices.defaults]\ndeviceTypeId = true\n", "whole number"),
        (MINIMAL + '[devices.defaults]\ntags = "MbusGw"\nlat = 91\nlon = 0\n', "-90 to 90"),
        (MINIMAL + "[devices.defaults]\nlat = 53.5\n", "both lat and lon"),
        (MINIMAL + '[devices.defaults]\naddr = "x"\n', "cannot have a default"),
        (MINIMAL + "[devices.defaults]\ncertEnforcesDtls = 1\n", "true or false"),
        (MINIMAL + "[devices.rules.addr]\nhex_length = 16\ndigits = 15\n", "keep one"),
        (MINIMAL + "[devices.rules.deviceTypeId]\ndigits = 2\n", "not a text field"),
        (MINIMAL + "[devices.rules.addr]\nidentifier = false\n", "always an identifier"),
        (MINIMAL + "[devices.rules.addr]\ndigits = 0\n", "1 or more"),
        (MINIMAL + "[devices.rules.addr]\npattern = 5\n", "text in quotes"),
        (MINIMAL + '[devices]\nlist_separator = " "\n', "must be one of"),
        (MINIMAL + "[devices]\nignore = ['addr']\n", "both 'addr' and ignored"),
        (MINIMAL + "[devices]\nignore = [1]\n", "list of texts"),
        (MINIMAL + 'name = ["cfg:name"]\n', "config prefix"),
        ('site_tag = "a,b"\n' + MINIMAL, "without commas"),
        (MINIMAL + '[device_types]\nx = "Generic"\n', "device type id 'x'"),
        (MINIMAL + "[devices.defaults]\ndeviceTypeId = 3\n[device_types]\n1 = 'G'\n", "not in"),
        (MINIMAL + '[downlinks.defaults]\ntype = "conifg"\n', "did you mean 'config'?"),
        (MINIMAL + "[downlinks]\nlist_separator = ','\n", "unknown key 'list_separator'"),
        ('devices = "x"\n', "must be a table"),
        ("description = \n", "not valid TOML"),
    ],
)
def test_mistakes_in_a_template_are_errors(tmp_path: Path, text: str, expected: str) -> None:
    message = error_for(tmp_path, text)
    assert expected in message, message
    assert "site.toml" in message


def test_tab_spec_can_be_built_directly() -> None:
    spec = TabSpec(
        tab="Devices",
        columns={"addr": ("IMEI",)},
        defaults={},
        list_separator=",",
        rules={},
        ignore=("Notiz",),
        config_prefix="cfg:",
    )
    assert spec.field_for("imei") == "addr"
    assert spec.field_for("notiz") is None
    assert spec.field_for("cfg:x") == "cfg:x"

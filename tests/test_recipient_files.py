"""Recipient files as spreadsheets and exporters write them (SPEC §9): CSV dialects, BOM, nesting, errors."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pytest

from dispatch.errors import InputError
from dispatch.recipient_files import column_letter, inspect_recipients, read_recipients

BOM = b"\xef\xbb\xbf"

# Excel 365, Finnish locale, "Save as: CSV UTF-8 (comma delimited) (*.csv)": a byte-order mark, the
# locale's list separator ";", CRLF between rows, LF for a line break typed inside a cell (Alt+Enter),
# quotes only around cells that need them (doubled inside), booleans as the locale's TOSI/EPÄTOSI, dates
# in the locale's short format d.m.yyyy, and ";;" for formatted but empty columns at the right.
EXCEL_FI = (
    BOM
    + (
        "id;country;language;status;email;phone;birth_date;address.name;address.street;address.postal_code;"
        "address.city;newsletter;marketing_blocked;consents;;\r\n"
        "FI-1;FI;fi;active;matti.virtanen@example.fi;040 123 4567;1.2.1980;Matti Virtanen;Mannerheimintie 1;"
        "00100;Helsinki;TOSI;EPÄTOSI;"
        '"[{""purpose"": ""marketing"", ""channel"": ""email"", ""granted"": true, ""at"": ""2026-01-02""}]";;\r\n'
        'FI-2;FI;sv;active;anna@example.fi;;;"Anna ""Annie"" Lindqvist";"Aurakatu 3\nB 12";20100;Turku;'
        "FALSE;;;;\r\n"
        'FI-3;FI;fi;former;;;;Oy Yritys Ab;"Kauppakatu 5; 2. krs";40100;Jyväskylä;;TRUE;;;\r\n'
        ";;;;;;;;;;;;;;;\r\n"
    ).encode()
)


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def rows(path: Path) -> list[tuple[int, dict]]:
    return list(read_recipients(path))


def test_an_excel_csv_utf8_export_with_semicolons_bom_and_crlf(tmp_path):
    path = write(tmp_path, "asiakkaat.csv", EXCEL_FI)
    info = inspect_recipients(path)
    assert (info.format, info.separator, info.rows) == ("csv", ";", 3)
    (line1, first), (line2, second), (line3, third) = rows(path)
    assert (line1, line2, line3) == (2, 3, 5)  # FI-2's street holds a line break: FI-3 starts on line 5
    assert first == {
        "id": "FI-1",
        "country": "FI",
        "language": "fi",
        "status": "active",
        "email": "matti.virtanen@example.fi",
        "phone": "040 123 4567",
        "birth_date": "1980-02-01",
        "address": {
            "name": "Matti Virtanen",
            "street": "Mannerheimintie 1",
            "postal_code": "00100",
            "city": "Helsinki",
        },
        "newsletter": True,
        "marketing_blocked": False,
        "consents": [{"purpose": "marketing", "channel": "email", "granted": True, "at": "2026-01-02"}],
    }
    assert second["address"] == {
        "name": 'Anna "Annie" Lindqvist',
        "street": "Aurakatu 3\nB 12",
        "postal_code": "20100",
        "city": "Turku",
    }
    assert second["newsletter"] is False and "phone" not in second and "marketing_blocked" not in second
    assert third["address"]["street"] == "Kauppakatu 5; 2. krs" and third["marketing_blocked"] is True
    assert "id" in third and "" not in third


def test_the_excel_file_runs_as_a_campaign(make_dispatcher, tmp_path):
    from dispatch.samples import sample_data

    d = make_dispatcher()
    summary = d.campaign(
        "price_change", read_recipients(write(tmp_path, "a.csv", EXCEL_FI)), sample_data("price_change")
    )
    assert (summary.total, summary.invalid) == (3, 0), summary.errors
    assert summary.queued + summary.suppressed == 3


@pytest.mark.parametrize(
    ("name", "data", "separator"),
    [
        ("comma.csv", b'id,country,address.city\nC-1,FI,Oulu\nC-2,SE,"Ume\xc3\xa5, centrum"\n', ","),
        ("tab.csv", b"id\tcountry\taddress.city\r\nC-1\tFI\tOulu\r\nC-2\tSE\tUme\xc3\xa5, centrum\r\n", "\t"),
        ("semi.csv", BOM + b"ID ; Country ; Address.City\r\nC-1;FI;Oulu\r\nC-2;SE;Ume\xc3\xa5, centrum", ";"),
    ],
)
def test_the_separator_is_found_from_the_header(tmp_path, name, data, separator):
    path = write(tmp_path, name, data)
    assert inspect_recipients(path).separator == separator
    assert rows(path) == [
        (2, {"id": "C-1", "country": "FI", "address": {"city": "Oulu"}}),
        (3, {"id": "C-2", "country": "SE", "address": {"city": "Umeå, centrum"}}),
    ]


def test_numbered_headers_make_lists(tmp_path):
    header = "id;consents.2.purpose;consents.2.channel;consents.2.granted;consents.2.at;"
    header += "consents.10.purpose;consents.10.granted;consents.10.at;consents.1.purpose;consents.1.granted\r\n"
    body = "C-1;marketing;sms;tosi;31.12.2025;newsletter;0;2026-03-01;;\r\n"
    ((_, row),) = rows(write(tmp_path, "c.csv", (header + body).encode()))
    assert row["consents"] == [
        {"purpose": "marketing", "channel": "sms", "granted": True, "at": "2025-12-31"},
        {"purpose": "newsletter", "granted": False, "at": "2026-03-01"},
    ]  # in number order; entry 1 is all empty and left out


def test_a_bad_row_names_line_and_column_but_never_the_value(tmp_path):
    data = (
        "id;email;consents;newsletter;\r\n"
        "C-1;secret.person@example.fi;[{broken json;kyllä;;\r\n"
        "C-2;other.person@example.fi;;;;0401234567\r\n"
        "C-3;ok@example.fi;;FALSE;Mäkinen\r\n"
        "C-4;ok@example.fi\r\n"
    ).encode()
    result = rows(write(tmp_path, "bad.csv", data))
    (l1, r1), (l2, r2), (l3, r3), (l4, r4) = result
    assert (l1, l2, l3, l4) == (2, 3, 4, 5)
    assert r1["__error__"] == (
        "column consents (C): not valid JSON (Expecting property name enclosed in double quotes at character 3); "
        "column newsletter (D): not a yes/no value (TRUE or FALSE)"
    )
    assert r2["__error__"] == "column F has a value but the header row has no such column"
    assert r3["__error__"] == "column E has a value but no header"
    assert r4 == {"id": "C-4", "email": "ok@example.fi"}  # a short row: the missing cells are empty
    for _, row in result[:3]:
        for secret in ("secret.person", "broken", "kyllä", "0401234567", "Mäkinen", "other.person"):
            assert secret not in row["__error__"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"name;email\r\nMatti;m@example.fi\r\n", "needs a header row with at least an id column"),
        (b"", "is empty"),
        (b"id;address;address.street\r\n", "header column address.street (C) nests under column address (B)"),
        (b"id,email,Email\n", "header column email (C) repeats column email (B)"),
        (b"id,consents.1.purpose,consents.x\n", "headers under 'consents' mix numbers and names"),
        (b"id,address..city\n", "has an empty part between dots"),
        (b'id,city\nC-1,"Oulu\nC-2,Turku\n', "line 3: broken quoting (unexpected end of data)"),
        (b'id,city\nC-1,"Oulu"x\n', "line 2: broken quoting"),
        (b"id;city\r\nC-1;Oulu\r\nC-2;J\xe4rvenp\xe4\xe4\r\n", "is not UTF-8 text (line 3); save it as UTF-8"),
    ],
)
def test_a_broken_file_is_refused_whole_with_one_line(tmp_path, data, message):
    path = write(tmp_path, "broken.csv", data)
    with pytest.raises(InputError) as caught:
        inspect_recipients(path)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
    assert "Järvenpää" not in str(caught.value) and "Oulu" not in str(caught.value)
    with pytest.raises(InputError):
        rows(path)


def test_json_lines_errors_do_not_repeat_the_line(tmp_path):
    data = BOM + b'{"id": "J-1", "country": "FI"}\r\n\r\n{"id": "J-2", "email": "x@example.fi"\n[1, 2]\n"J-4"\n'
    path = write(tmp_path, "people.jsonl", data)
    assert inspect_recipients(path).rows == 4
    assert rows(path) == [
        (1, {"id": "J-1", "country": "FI"}),
        (3, {"__error__": "not valid JSON: Expecting ',' delimiter (column 38)"}),
        (4, {"__error__": "not a JSON object but a JSON list"}),
        (5, {"__error__": "not a JSON object but a JSON string"}),
    ]


def test_other_files_are_refused(tmp_path):
    with pytest.raises(InputError, match=r"must be \.csv or \.jsonl"):
        inspect_recipients(write(tmp_path, "people.xlsx", b"PK"))
    with pytest.raises(InputError, match=r"cannot read recipients file 'missing\.csv': no such file"):
        inspect_recipients("missing.csv")


def test_reading_is_streamed_with_flat_memory(tmp_path):
    path = tmp_path / "many.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write("id;country;email;address.street;address.city\r\n")
        for n in range(20_000):
            handle.write(f"C-{n};FI;c{n}@example.fi;Katu {n};Helsinki\r\n")
    assert path.stat().st_size > 900_000
    tracemalloc.start()
    try:
        assert inspect_recipients(path).rows == 20_000
        count = sum(1 for _ in read_recipients(path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 20_000
    assert peak < 200_000  # a small fraction of the file: rows are read one at a time


def test_column_letters():
    assert [column_letter(i) for i in (0, 1, 25, 26, 27, 51, 52, 701, 702)] == [
        "A",
        "B",
        "Z",
        "AA",
        "AB",
        "AZ",
        "BA",
        "ZZ",
        "AAA",
    ]


def test_consents_json_cell_as_libreoffice_writes_it(tmp_path):
    consents = [{"purpose": "marketing", "channel": "sms", "granted": False, "at": "2026-02-03T10:00:00+02:00"}]
    cell = '"' + json.dumps(consents).replace('"', '""') + '"'
    path = write(tmp_path, "lo.csv", f"id,consents\nC-1,{cell}\n".encode())
    assert rows(path) == [(2, {"id": "C-1", "consents": consents})]


def test_a_one_column_file_is_read_as_comma_separated(tmp_path):
    path = write(tmp_path, "ids.csv", b"id\r\nC-1\r\nC-2;x\r\n")
    assert inspect_recipients(path).separator == ","
    assert [row for _, row in rows(path)] == [{"id": "C-1"}, {"id": "C-2;x"}]

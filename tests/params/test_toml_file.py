"""The shared loader of TOML parameter files (isletsim.params.toml_file)."""

from __future__ import annotations

import math
import tomllib
from importlib import resources
from pathlib import Path

import pandas as pd
import pytest

from isletsim.params.toml_file import (
    ParameterEntry,
    ParameterFileError,
    check_table_keys,
    check_tags,
    load_parameter_file,
    load_parameter_path,
    numeric_values,
    parameter_values,
    read_parameter_document,
    sources,
)

GOOD = """
[alpha]
value = 0.05
unit = "1/min"
source = "Dalla Man 2007 Table 1"
verified = true

[sex]
value = "male"
source = "modelling choice"
verified = false
description = "default sex"
"""


def _write(tmp_path: Path, text: str, name: str = "params.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _load(path: Path, **kwargs):
    kwargs.setdefault("expected", ("alpha", "sex"))
    kwargs.setdefault("text_values", ("sex",))
    return load_parameter_path(path, **kwargs)


def test_good_file_loads_with_values_and_sources(tmp_path):
    entries = _load(_write(tmp_path, GOOD))
    assert list(entries) == ["alpha", "sex"]
    assert entries["alpha"] == ParameterEntry(
        "alpha", 0.05, "Dalla Man 2007 Table 1", True, unit="1/min"
    )
    assert parameter_values(entries) == {"alpha": 0.05, "sex": "male"}
    table = sources(entries)
    assert table.index.name == "name" and list(table.index) == ["alpha", "sex"]
    assert list(table.columns) == ["value", "unit", "source", "verified", "description"]
    assert table.loc["alpha", "verified"] and not table.loc["sex", "verified"]
    assert table["verified"].dtype == bool
    assert pd.isna(table.loc["alpha", "description"])
    assert entries["sex"].as_dict() == {
        "value": "male",
        "source": "modelling choice",
        "verified": False,
        "description": "default sex",
    }


def test_integer_value_becomes_float(tmp_path):
    path = _write(tmp_path, '[a]\nvalue = 3\nsource = "x"\nverified = false\n')
    value = load_parameter_path(path)["a"].value
    assert value == 3.0 and isinstance(value, float)


@pytest.mark.parametrize(
    ("old", "new", "parameter", "field", "message"),
    [
        # an entry missing a required field
        ('source = "Dalla Man 2007 Table 1"\n', "", "alpha", "source", "missing field"),
        ("verified = true\n", "", "alpha", "verified", "missing field"),
        # an unknown field inside an entry
        (
            "verified = true\n",
            'verified = true\nrefrence = "typo"\n',
            "alpha",
            "refrence",
            "unknown field",
        ),
        # a non-finite value
        ("value = 0.05", "value = nan", "alpha", "value", "finite number"),
        ("value = 0.05", "value = inf", "alpha", "value", "finite number"),
        ("value = 0.05", "value = -inf", "alpha", "value", "finite number"),
        ("value = 0.05", 'value = "fast"', "alpha", "value", "finite number"),
        ("value = 0.05", "value = true", "alpha", "value", "finite number"),
        # verified that is not a boolean
        ("verified = true", 'verified = "yes"', "alpha", "verified", "true or false"),
        ("verified = true", "verified = 1", "alpha", "verified", "true or false"),
        # wrongly typed text fields
        ('unit = "1/min"', "unit = 5", "alpha", "unit", "must be a string"),
        ('source = "Dalla Man 2007 Table 1"', 'source = "  "', "alpha", "source", "empty"),
        ('value = "male"', "value = 1.0", "sex", "value", "non-empty string"),
    ],
)
def test_malformed_entry_names_file_parameter_and_field(
    tmp_path, old, new, parameter, field, message
):
    assert old in GOOD
    path = _write(tmp_path, GOOD.replace(old, new, 1), "bad_entry.toml")
    with pytest.raises(ParameterFileError, match=message) as info:
        _load(path)
    err = info.value
    assert isinstance(err, ValueError)
    assert "bad_entry.toml" in str(err) and repr(field) in str(err) and repr(parameter) in str(err)
    assert (err.parameter, err.field) == (parameter, field)
    assert err.file == str(path)


def test_unknown_parameter_names_file_and_parameter(tmp_path):
    text = GOOD + '\n[gamma]\nvalue = 0.5\nsource = "x"\nverified = true\n'
    with pytest.raises(ParameterFileError, match="unknown parameter") as info:
        _load(_write(tmp_path, text, "extra.toml"))
    assert "extra.toml" in str(info.value) and "'gamma'" in str(info.value)
    assert info.value.parameter == "gamma"
    # without a list of expected names any name is accepted
    assert "gamma" in _load(_write(tmp_path, text, "extra.toml"), expected=None)


def test_missing_parameter_names_file_and_parameter(tmp_path):
    path = _write(tmp_path, GOOD, "short.toml")
    with pytest.raises(ParameterFileError, match="missing") as info:
        _load(path, expected=("alpha", "sex", "beta"))
    assert "short.toml" in str(info.value) and "'beta'" in str(info.value)
    assert info.value.parameter == "beta"
    # an optional parameter may be absent
    assert set(_load(path, expected=("alpha", "sex"), optional=("beta",))) == {"alpha", "sex"}


def test_required_and_allowed_keys_are_configurable(tmp_path):
    path = _write(tmp_path, GOOD, "strict.toml")
    with pytest.raises(ParameterFileError, match="missing field") as info:
        _load(path, required_keys=("value", "unit", "source", "verified"))
    assert (info.value.parameter, info.value.field) == ("sex", "unit")
    with pytest.raises(ParameterFileError, match="unknown field") as info:
        _load(path, allowed_keys=("unit",))
    assert (info.value.parameter, info.value.field) == ("sex", "description")
    with pytest.raises(ValueError, match="required_keys"):
        _load(path, required_keys=("value", "source"))


def test_entry_that_is_not_a_table(tmp_path):
    with pytest.raises(ParameterFileError, match="must be a table") as info:
        load_parameter_path(_write(tmp_path, "alpha = 0.05\n", "flat.toml"))
    assert "flat.toml" in str(info.value) and info.value.parameter == "alpha"


def test_invalid_toml_and_missing_file_name_the_file(tmp_path):
    with pytest.raises(ParameterFileError, match="not valid TOML") as info:
        read_parameter_document(_write(tmp_path, "[alpha\nvalue = 1\n", "broken.toml"))
    assert "broken.toml" in str(info.value)
    with pytest.raises(ParameterFileError, match="no such parameter file"):
        read_parameter_document(tmp_path / "absent.toml")


NESTED = """
[product]
name = "p"

[parameters.a]
value = 1.0
unit = "1"
source = "x"
verified = false
"""


def test_nested_table(tmp_path):
    path = _write(tmp_path, NESTED, "nested.toml")
    keys = ("value", "unit", "source", "verified")
    entries = load_parameter_path(
        path, table="parameters", expected=("a",), required_keys=keys, allowed_keys=keys
    )
    assert entries["a"].value == 1.0
    with pytest.raises(ParameterFileError, match="missing") as info:
        load_parameter_path(path, table="parameters", expected=("a", "b"))
    assert info.value.parameter == "parameters.b" and "nested.toml" in str(info.value)
    with pytest.raises(ParameterFileError, match=r"lacks the table \[doses\]") as info:
        load_parameter_path(path, table="doses")
    assert info.value.field == "doses"
    doc = read_parameter_document(path, label="nested.toml")
    check_table_keys(doc["product"], file="nested.toml", table_path="product", required=("name",))
    with pytest.raises(ParameterFileError, match="lacks the key 'dose_unit'") as info:
        check_table_keys(
            doc["product"], file="nested.toml", table_path="product", required=("dose_unit",)
        )
    assert info.value.field == "dose_unit" and "nested.toml" in str(info.value)
    with pytest.raises(ParameterFileError, match="unknown key 'name'"):
        check_table_keys(doc["product"], file="nested.toml", table_path="product")


def test_check_tags(tmp_path):
    entry = '[{n}]\nvalue = 1.0\nsource = "{s}"\ntag = "{t}"\nverified = {v}\n'
    good = entry.format(n="a", s="paper", t="V", v="true") + entry.format(
        n="b", s="unverified", t="U", v="false"
    )
    check_tags(load_parameter_path(_write(tmp_path, good)), file="f.toml")
    for bad, field in [
        (entry.format(n="c", s="paper", t="V", v="false"), "verified"),
        (entry.format(n="c", s="paper", t="I", v="true"), "verified"),
        (entry.format(n="c", s="a paper", t="U", v="false"), "source"),
        (entry.format(n="c", s="paper", t="X", v="false"), "tag"),
    ]:
        entries = load_parameter_path(_write(tmp_path, good + bad))
        with pytest.raises(ParameterFileError) as info:
            check_tags(entries, file="f.toml")
        assert (info.value.parameter, info.value.field) == ("c", field)
        assert str(info.value).startswith("f.toml")


def test_numeric_values_rejects_text(tmp_path):
    entries = _load(_write(tmp_path, GOOD))
    with pytest.raises(ParameterFileError, match="must be a number") as info:
        numeric_values(entries, file="x.toml")
    assert info.value.parameter == "sex"
    assert numeric_values({"alpha": entries["alpha"]}) == {"alpha": 0.05}


# ----------------------------------------------------------------------------- shipped files
def _shipped_files(node=None, prefix=()):
    node = resources.files("isletsim.params") if node is None else node
    for child in sorted(node.iterdir(), key=lambda c: c.name):
        if child.is_dir():
            yield from _shipped_files(child, (*prefix, child.name))
        elif child.name.endswith(".toml"):
            yield "/".join((*prefix, child.name))


def _entry_tables(relpath):
    """(dotted path or None, text-valued entry names) of each (sub-)table whose children are
    parameter entries (have 'value'); text values (agent names, clock times) are checked by
    the module that reads the file."""
    *folders, filename = relpath.split("/")
    folder = resources.files("isletsim.params").joinpath(*folders) if folders else (
        resources.files("isletsim.params")
    )
    with folder.joinpath(filename).open("rb") as fh:
        doc = tomllib.load(fh)

    def walk(node, path):
        children = {k: v for k, v in node.items() if isinstance(v, dict)}
        if children and all("value" in c for c in children.values()):
            text = tuple(k for k, c in children.items() if isinstance(c["value"], str))
            yield (".".join(path) or None, text)
            return
        for key, value in node.items():
            if isinstance(value, dict) and "value" not in value:
                yield from walk(value, (*path, key))

    return tuple(walk(doc, ()))


#: Files whose entries sit in sub-tables, as the modules that read them expect.
_NESTED_TABLES = {
    "graft/donor_islets.toml": ("parameters", "doses"),
    "graft/sc_islets.toml": ("parameters", "doses"),
    "graft/reference.toml": ("parameters",),
    "graft/immunosuppression.toml": (
        "regimens.standard.parameters",
        "regimens.none.parameters",
    ),
}
_TEXT_VALUES = {"secretion/recipient_defaults.toml": ("sex", "population")}
_SHIPPED = list(_shipped_files())


def test_shipped_files_are_found():
    assert len(_SHIPPED) >= 9
    assert set(_NESTED_TABLES) <= set(_SHIPPED)
    assert {"cpeptide.toml", "glycation.toml", "secretion/dalla_man_2007.toml"} <= set(_SHIPPED)


@pytest.mark.parametrize("relpath", _SHIPPED)
def test_every_shipped_parameter_file_loads(relpath):
    *folders, filename = relpath.split("/")
    package = ".".join(["isletsim", "params", *folders])
    tables = _entry_tables(relpath)
    if relpath in _NESTED_TABLES:
        assert set(_NESTED_TABLES[relpath]) <= {t for t, _ in tables}
    n = 0
    for table, text in tables:
        if relpath in _TEXT_VALUES:
            assert set(text) == set(_TEXT_VALUES[relpath])
        entries = load_parameter_file(package, filename, table=table, text_values=text)
        for e in entries.values():
            assert isinstance(e.verified, bool) and e.source.strip()
            assert isinstance(e.value, str) or math.isfinite(e.value)
        n += len(entries)
    assert n >= 1


def test_module_loaders_read_every_shipped_file():
    """Each shipped file is read by a module loader (which goes through the shared loader)."""
    from isletsim.model.cpeptide import cpeptide_parameter_table
    from isletsim.model.glycation import glycation_parameter_table
    from isletsim.params.glucagon import glucagon_sources, load_glucagon
    from isletsim.params.secretion import kinetics_for_patients, load_secretion
    from isletsim.therapy.graft import (
        ISLET_PRODUCTS,
        load_immunosuppression_regimens,
        load_islet_product,
    )

    assert len(cpeptide_parameter_table()) == 18
    assert len(glycation_parameter_table()) == 7
    assert len(load_glucagon()) == len(glucagon_sources()) == 15
    assert len(load_secretion()) == 9
    kin = kinetics_for_patients(pd.DataFrame({"Age": [40.0], "BW": [75.0]}))
    assert set(kin) == {"k10", "k12", "k21", "vd_l"}
    for name in ISLET_PRODUCTS:
        assert load_islet_product(name).reference_ieq == 1.0e6
    assert set(load_immunosuppression_regimens()) == {"none", "standard"}

"""One loader for the TOML parameter files shipped in :mod:`isletsim.params`.

A parameter file is a TOML document whose entries are tables, one per parameter::

    [K]
    value = 2.30
    unit = "pmol/kg per mg/dL"
    source = "Dalla Man 2007 Table 1"
    verified = true

Every entry carries ``value``, ``source`` and ``verified`` (a loader may require more, e.g.
``unit`` or ``tag``) and may carry ``unit``, ``tag``, ``description`` and ``note``. Files with a
nested layout (the graft files: ``[product]`` header, ``[parameters.<name>]``,
``[regimens.<regimen>.parameters.<name>]``) keep their entries in sub-tables: read the
document with :func:`read_parameter_document`, check header tables with
:func:`check_table_keys` and parse each sub-table of entries with :func:`parse_parameter_table`
(or name it with ``table=`` in :func:`load_parameter_file`).

Every problem raises :class:`ParameterFileError` (a :class:`ValueError`) whose message names
the file, the parameter and the field: a missing or unknown field, an unknown or missing
parameter, a value that is not a finite number (or, where allowed, a non-empty string), a
``verified`` that is not a boolean, an empty ``source``, or a field of the wrong type.
"""

from __future__ import annotations

import math
import numbers
import os
import tomllib
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

#: Fields every entry must carry unless a loader says otherwise.
REQUIRED_KEYS: tuple[str, ...] = ("value", "source", "verified")
#: Fields an entry may carry unless a loader says otherwise.
ALLOWED_KEYS: tuple[str, ...] = (
    "value",
    "unit",
    "source",
    "verified",
    "tag",
    "description",
    "note",
)
#: Fields that, when present, must be strings.
_TEXT_FIELDS: tuple[str, ...] = ("unit", "source", "tag", "description", "note")
#: Science-reference tags: verified, independent implementation, unverified.
TAGS: tuple[str, ...] = ("V", "I", "U")


class ParameterFileError(ValueError):
    """A malformed parameter file; the message names the file, parameter and field.

    Attributes
    ----------
    file : str
        The file, as a package path (``isletsim/params/...``) or a filesystem path.
    parameter : str or None
        The parameter (entry) concerned, with its table path for nested files.
    field : str or None
        The field (key) concerned, where there is one.
    """

    def __init__(
        self, file: str, message: str, *, parameter: str | None = None, field: str | None = None
    ) -> None:
        self.file = file
        self.parameter = parameter
        self.field = field
        where = file
        if parameter is not None:
            where += f": parameter {parameter!r}"
        if field is not None:
            where += f", field {field!r}"
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class ParameterEntry:
    """One validated entry of a parameter file.

    Attributes
    ----------
    name : str
        Entry name (the table's key).
    value : float or str
        Finite number (as float), or a string for the parameters a loader declares textual.
    source : str
        Citation or reason (non-empty).
    verified : bool
        Whether the value was checked against its source.
    unit, tag, description, note : str or None
        Optional fields, ``None`` where the file has none.
    """

    name: str
    value: float | str
    source: str
    verified: bool
    unit: str | None = None
    tag: str | None = None
    description: str | None = None
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The fields present in the file, as a plain dict (``name`` excluded)."""
        out: dict[str, Any] = {"value": self.value}
        for key in ("unit", "source", "tag", "verified", "description", "note"):
            val = getattr(self, key)
            if val is not None:
                out[key] = val
        return out


# ----------------------------------------------------------------------------- reading
def _file_label(package: str, filename: str) -> str:
    return f"{package.replace('.', '/')}/{filename}"


def read_parameter_document(
    path: Traversable | os.PathLike[str] | str, *, label: str | None = None
) -> dict[str, Any]:
    """Parse a TOML file, turning a syntax error into :class:`ParameterFileError`.

    Parameters
    ----------
    path
        A file (a :class:`~importlib.resources.abc.Traversable` from
        :func:`importlib.resources.files`, or a filesystem path).
    label
        Name of the file in error messages (default: ``str(path)``).

    Returns
    -------
    dict
        The parsed document (a fresh object on every call).
    """
    label = str(path) if label is None else label
    source: Traversable = Path(path) if isinstance(path, str | os.PathLike) else path
    try:
        with source.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ParameterFileError(label, f"not valid TOML: {exc}") from exc
    except (FileNotFoundError, IsADirectoryError) as exc:
        raise ParameterFileError(label, "no such parameter file") from exc


def check_table_keys(
    table: Any,
    *,
    file: str,
    table_path: str,
    required: Collection[str] = (),
    allowed: Collection[str] | None = None,
) -> Mapping[str, Any]:
    """Check the keys of a non-entry table (a header, or a group of sub-tables).

    Parameters
    ----------
    table
        The parsed table.
    file
        Name of the file in error messages.
    table_path
        Dotted path of the table in the file (``""`` for the document itself).
    required
        Keys that must be present.
    allowed
        Keys that may be present (default: only ``required``).

    Returns
    -------
    Mapping
        ``table``, for chaining.

    Raises
    ------
    ParameterFileError
        Naming the file, the table and the missing or unknown key.
    """
    where = f"[{table_path}]" if table_path else "top level"
    if not isinstance(table, Mapping):
        raise ParameterFileError(file, f"{where} must be a table, got {type(table).__name__}")
    allowed_set = set(required) if allowed is None else set(allowed) | set(required)
    for key in required:
        if key not in table:
            raise ParameterFileError(file, f"{where} lacks the key {key!r}", field=key)
    for key in table:
        if key not in allowed_set:
            raise ParameterFileError(
                file,
                f"unknown key {key!r} in {where}; allowed keys: {_quoted(sorted(allowed_set))}",
                field=key,
            )
    return table


def _table_at(document: Mapping[str, Any], table: str | Sequence[str], file: str) -> Any:
    keys = table.split(".") if isinstance(table, str) else list(table)
    node: Any = document
    for depth, key in enumerate(keys):
        if not isinstance(node, Mapping) or key not in node:
            path = ".".join(keys[: depth + 1])
            raise ParameterFileError(file, f"lacks the table [{path}]", field=key)
        node = node[key]
    return node


# ----------------------------------------------------------------------------- validation
def _is_number(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _entry(
    name: str,
    raw: Any,
    *,
    file: str,
    qualified: str,
    required: Collection[str],
    allowed: Collection[str],
    textual: bool,
) -> ParameterEntry:
    fields = ", ".join(required)
    if not isinstance(raw, Mapping):
        raise ParameterFileError(
            file,
            f"must be a table with the fields {fields}, got {type(raw).__name__} {raw!r}",
            parameter=qualified,
        )
    for key in required:
        if key not in raw:
            raise ParameterFileError(file, "missing field", parameter=qualified, field=key)
    for key in raw:
        if key not in allowed:
            raise ParameterFileError(
                file,
                f"unknown field; allowed fields: {_quoted(allowed)}",
                parameter=qualified,
                field=key,
            )
    value = raw["value"]
    if textual:
        if not isinstance(value, str) or not value.strip():
            raise ParameterFileError(
                file,
                f"must be a non-empty string, got {value!r}",
                parameter=qualified,
                field="value",
            )
    elif not _is_number(value) or not math.isfinite(value):
        raise ParameterFileError(
            file, f"must be a finite number, got {value!r}", parameter=qualified, field="value"
        )
    if not isinstance(raw["verified"], bool):
        raise ParameterFileError(
            file,
            f"must be true or false (a TOML boolean), got {raw['verified']!r}",
            parameter=qualified,
            field="verified",
        )
    for key in _TEXT_FIELDS:
        if key in raw and not isinstance(raw[key], str):
            raise ParameterFileError(
                file, f"must be a string, got {raw[key]!r}", parameter=qualified, field=key
            )
    if not raw["source"].strip():
        raise ParameterFileError(file, "must not be empty", parameter=qualified, field="source")
    return ParameterEntry(
        name=name,
        value=value if textual else float(value),
        source=raw["source"],
        verified=raw["verified"],
        unit=raw.get("unit"),
        tag=raw.get("tag"),
        description=raw.get("description"),
        note=raw.get("note"),
    )


def parse_parameter_table(
    table: Any,
    *,
    file: str,
    table_path: str = "",
    expected: Collection[str] | None = None,
    optional: Collection[str] = (),
    required_keys: Collection[str] = REQUIRED_KEYS,
    allowed_keys: Collection[str] = ALLOWED_KEYS,
    text_values: Collection[str] = (),
) -> dict[str, ParameterEntry]:
    """Validate a table of parameter entries (name -> entry table).

    Parameters
    ----------
    table
        The parsed table whose values are the entries.
    file
        Name of the file in error messages.
    table_path
        Dotted path of ``table`` in the file (``""`` for the document itself); prefixes the
        parameter names in messages (``parameters.cv_potency``).
    expected
        Parameters that must be present; any other name is an error (``None``: any names).
    optional
        Further names that may, but need not, be present.
    required_keys
        Fields every entry must carry; must include ``value``, ``source`` and ``verified``.
    allowed_keys
        Fields an entry may carry (``required_keys`` are always allowed).
    text_values
        Parameters whose value is a non-empty string instead of a finite number.

    Returns
    -------
    dict of str to ParameterEntry
        In file order.

    Raises
    ------
    ParameterFileError
        Naming the file, the parameter and the field (see the module docstring).
    """
    missing_core = [k for k in REQUIRED_KEYS if k not in required_keys]
    if missing_core:
        raise ValueError(f"required_keys must include {_quoted(missing_core)}")
    allowed = tuple(dict.fromkeys([*required_keys, *allowed_keys]))
    where = f"[{table_path}]" if table_path else "the file"
    if not isinstance(table, Mapping):
        raise ParameterFileError(file, f"{where} must be a table, got {type(table).__name__}")
    prefix = f"{table_path}." if table_path else ""
    if expected is not None:
        known = set(expected) | set(optional)
        for name in table:
            if name not in known:
                raise ParameterFileError(
                    file,
                    f"unknown parameter in {where}; expected parameters: {_quoted(sorted(known))}",
                    parameter=prefix + name,
                )
        for name in expected:
            if name not in table:
                raise ParameterFileError(file, f"missing from {where}", parameter=prefix + name)
    return {
        name: _entry(
            name,
            raw,
            file=file,
            qualified=prefix + name,
            required=required_keys,
            allowed=allowed,
            textual=name in text_values,
        )
        for name, raw in table.items()
    }


def load_parameter_path(
    path: Traversable | os.PathLike[str] | str,
    *,
    label: str | None = None,
    table: str | Sequence[str] | None = None,
    expected: Collection[str] | None = None,
    optional: Collection[str] = (),
    required_keys: Collection[str] = REQUIRED_KEYS,
    allowed_keys: Collection[str] = ALLOWED_KEYS,
    text_values: Collection[str] = (),
) -> dict[str, ParameterEntry]:
    """Read and validate a parameter file given by path (see :func:`load_parameter_file`)."""
    label = str(path) if label is None else label
    document = read_parameter_document(path, label=label)
    if table is None:
        entries: Any = document
        table_path = ""
    else:
        entries = _table_at(document, table, label)
        table_path = table if isinstance(table, str) else ".".join(table)
    return parse_parameter_table(
        entries,
        file=label,
        table_path=table_path,
        expected=expected,
        optional=optional,
        required_keys=required_keys,
        allowed_keys=allowed_keys,
        text_values=text_values,
    )


def load_parameter_file(
    package: str,
    filename: str,
    *,
    table: str | Sequence[str] | None = None,
    expected: Collection[str] | None = None,
    optional: Collection[str] = (),
    required_keys: Collection[str] = REQUIRED_KEYS,
    allowed_keys: Collection[str] = ALLOWED_KEYS,
    text_values: Collection[str] = (),
) -> dict[str, ParameterEntry]:
    """Read and validate a parameter file shipped in a package.

    Parameters
    ----------
    package
        Package holding the file, e.g. ``"isletsim.params.secretion"``.
    filename
        File name inside the package, e.g. ``"dalla_man_2007.toml"``.
    table
        Dotted path (or key sequence) of the sub-table holding the entries, for nested
        files; ``None``: every top-level table is an entry.
    expected, optional, required_keys, allowed_keys, text_values
        As in :func:`parse_parameter_table`.

    Returns
    -------
    dict of str to ParameterEntry
        In file order.

    Raises
    ------
    ParameterFileError
        Naming the file (``isletsim/params/...``), the parameter and the field.
    """
    return load_parameter_path(
        resources.files(package) / filename,
        label=_file_label(package, filename),
        table=table,
        expected=expected,
        optional=optional,
        required_keys=required_keys,
        allowed_keys=allowed_keys,
        text_values=text_values,
    )


def check_tags(entries: Mapping[str, ParameterEntry], *, file: str) -> None:
    """Check science-reference tags: one of :data:`TAGS`, ``verified`` iff ``V``, ``U`` unsourced.

    An entry tagged ``U`` must have ``source = "unverified"`` (its origin goes in ``note``).

    Raises
    ------
    ParameterFileError
        Naming the file, the parameter and the field.
    """
    for name, e in entries.items():
        if e.tag not in TAGS:
            raise ParameterFileError(
                file, f"must be one of {_quoted(TAGS)}, got {e.tag!r}", parameter=name, field="tag"
            )
        if e.verified != (e.tag == "V"):
            raise ParameterFileError(
                file, "must be true iff tag is 'V'", parameter=name, field="verified"
            )
        if e.tag == "U" and e.source != "unverified":
            raise ParameterFileError(
                file, "tag 'U' needs source 'unverified'", parameter=name, field="source"
            )


# ----------------------------------------------------------------------------- views
def load_tagged_table(
    package: str, filename: str, *, expected: Collection[str]
) -> Mapping[str, Mapping[str, Any]]:
    """A file of entries ``value, unit, source, tag, verified`` (+ optional ``note``) whose
    tags follow the science reference (:func:`check_tags`), as read-only name -> field maps.

    Raises
    ------
    ParameterFileError
        Naming the file, parameter and field: a missing or unknown parameter or field, a
        non-finite value, a non-boolean ``verified``, or a tag that disagrees with
        ``verified``/``source``.
    """
    keys = ("value", "unit", "source", "tag", "verified")
    entries = load_parameter_file(
        package, filename, expected=expected, required_keys=keys, allowed_keys=(*keys, "note")
    )
    check_tags(entries, file=_file_label(package, filename))
    return MappingProxyType({name: MappingProxyType(e.as_dict()) for name, e in entries.items()})


def load_checked_values(
    path: Traversable | os.PathLike[str] | str,
    *,
    label: str,
    names: Sequence[str],
    problem: Callable[[str, float, Mapping[str, float]], str | None],
    integers: Collection[str] = (),
) -> dict[str, int | float]:
    """Values of a tagged parameter file (entries ``value, unit, source, tag, verified``,
    optionally ``note``/``description``), each checked by ``problem``.

    ``problem(name, value, all_values)`` returns why a value is unacceptable, or None. Names
    in ``integers`` are returned as ``int``.

    Raises
    ------
    ParameterFileError
        Naming ``label``, the parameter and the field, for any loader error, a tag that
        disagrees with ``verified``/``source``, or a value ``problem`` rejects.
    """
    keys = ("value", "unit", "source", "tag", "verified")
    entries = load_parameter_path(
        path, label=label, expected=names, required_keys=keys,
        allowed_keys=(*keys, "note", "description"),
    )  # fmt: skip
    check_tags(entries, file=label)
    values = numeric_values(entries, file=label)
    for name in names:
        why = problem(name, values[name], values)
        if why is not None:
            raise ParameterFileError(
                label, f"{why}, got {values[name]!r}", parameter=name, field="value"
            )
    return {n: int(values[n]) if n in integers else float(values[n]) for n in names}


def parameter_values(entries: Mapping[str, ParameterEntry]) -> dict[str, float | str]:
    """The values by name (floats; strings for textual parameters), in file order."""
    return {name: e.value for name, e in entries.items()}


def numeric_values(entries: Mapping[str, ParameterEntry], *, file: str = "") -> dict[str, float]:
    """The values by name, all of which must be numbers (see :func:`parameter_values`).

    Raises
    ------
    ParameterFileError
        If a value is textual.
    """
    out: dict[str, float] = {}
    for name, e in entries.items():
        if isinstance(e.value, str):
            raise ParameterFileError(
                file, f"must be a number, got {e.value!r}", parameter=name, field="value"
            )
        out[name] = e.value
    return out


def sources(entries: Mapping[str, ParameterEntry] | Iterable[ParameterEntry]) -> pd.DataFrame:
    """Documentation table of the entries.

    Returns
    -------
    pandas.DataFrame
        Index ``name``; columns ``value``, ``unit``, ``source``, ``verified``, then ``tag``,
        ``description`` and ``note`` where any entry has them (missing fields are ``None``).
    """
    items = list(entries.values()) if isinstance(entries, Mapping) else list(entries)
    columns = ["value", "unit", "source", "verified"]
    columns += [c for c in ("tag", "description", "note") if any(getattr(e, c) for e in items)]
    frame = pd.DataFrame(
        [[getattr(e, c) for c in columns] for e in items],
        index=pd.Index([e.name for e in items], name="name"),
        columns=columns,
    )
    frame["verified"] = frame["verified"].astype(bool)
    return frame


def _quoted(names: Iterable[str]) -> str:
    return ", ".join(repr(n) for n in names)


def checked_values_or_overrides(
    source: Mapping[str, float] | os.PathLike[str] | str | None,
    packaged: Callable[[], Mapping[str, float]],
    *,
    label: str,
    names: Sequence[str],
    problem: Callable[[str, float, Mapping[str, float]], str | None],
) -> dict[str, float]:
    """Checked float values from the packaged file, another file, or overrides of it.

    Parameters
    ----------
    source
        ``None``: ``packaged()``; a path: another file with the same entries
        (:func:`load_checked_values`); a mapping: values replacing those of ``packaged()``,
        then all checked together by ``problem``.
    packaged
        Returns the packaged file's values (e.g. a cached loader).
    label
        Name of the packaged file in messages (overrides are reported as
        ``"<label> (overrides)"``).
    names, problem
        As for :func:`load_checked_values`.

    Raises
    ------
    ParameterFileError
        Naming the file, the parameter and the field.
    """
    if source is None:
        return dict(packaged())
    if isinstance(source, str | os.PathLike):
        values = load_checked_values(Path(source), label=str(source), names=names,
                                     problem=problem)  # fmt: skip
        return {k: float(v) for k, v in values.items()}
    where = f"{label} (overrides)"
    out = dict(packaged())
    for name, v in source.items():
        if name not in names:
            raise ParameterFileError(
                where, f"unknown parameter; known: {', '.join(names)}", parameter=name
            )
        if isinstance(v, bool) or not isinstance(v, int | float | np.number) or not np.isfinite(v):
            raise ParameterFileError(
                where, f"must be a finite number, got {v!r}", parameter=name, field="value"
            )
        out[name] = float(v)
    for name in names:
        why = problem(name, out[name], out)
        if why is not None:
            raise ParameterFileError(
                where, f"{why}, got {out[name]!r}", parameter=name, field="value"
            )
    return out


__all__ = [
    "ALLOWED_KEYS",
    "REQUIRED_KEYS",
    "TAGS",
    "ParameterEntry",
    "ParameterFileError",
    "check_table_keys",
    "check_tags",
    "checked_values_or_overrides",
    "load_parameter_file",
    "load_parameter_path",
    "numeric_values",
    "parameter_values",
    "parse_parameter_table",
    "read_parameter_document",
    "sources",
]

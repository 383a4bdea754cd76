"""Trial protocols: a validated schema loaded from TOML.

A protocol says who is eligible, which arms there are (standard care, or an islet product at
a dose with an immunosuppression regimen and a weaning policy), how long the baseline run-in
and the follow-up are, which visits assess what (CGM window, HbA1c draw, mixed-meal
tolerance test, insulin diary), which endpoints are derived, and the default seed. Every
error is found before any simulation starts and names the file, the key and what is
allowed (:class:`ProtocolError`).

Example (``protocols/forward_phase12.toml`` is the published zimislecel design)::

    [protocol]
    name = "forward_phase12"
    title = "Zimislecel phase 1-2 (FORWARD), parts A-C"
    seed = 2025
    run_in_days = 28
    follow_up_days = 365

    [population]
    cohort = "uva-padova-2008"
    max_screened = 400

    [eligibility]
    age_years = [18, 65]
    min_gold_score = 4
    min_severe_events_prior_year = 2

    [[arms]]
    name = "full_dose"
    n = 12
    product = "sc-islets"
    dose = "full"
    immunosuppression = "zimislecel-like"

    [visits]
    days = [0, 29, 90, 180, 270, 365]
    hba1c_days = [0, 90, 180, 270, 365]
    mmtt_days = [0, 90, 180, 365]

    [endpoints]
    names = ["primary", "insulin_independence_d180_365"]
"""

from __future__ import annotations

import itertools
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

#: Endpoints a protocol may name (definitions in :mod:`isletsim.trial.endpoints`).
ENDPOINT_NAMES: tuple[str, ...] = (
    "primary",
    "insulin_independence_d180_365",
    "free_of_severe_hypo_d90_365",
    "hba1c_lt7_d365",
    "tir_gt70_d365",
    "insulin_dose_change_pct_d365",
    "hba1c_change_d365",
    "cpeptide_detectable_d365",
)
#: Standard-care insulin therapies of a participant (population trait ``therapy``).
STANDARD_CARE: tuple[str, ...] = ("mdi", "pump", "aid")
ROUTES: tuple[str, ...] = ("portal",)


class ProtocolError(ValueError):
    """A protocol file that cannot be run: names the file, the key and the reason."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Meta(_Strict):
    """``[protocol]``: identity, default seed and durations."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    title: str = ""
    reference: str = ""
    seed: int = Field(default=0, ge=0)
    run_in_days: int = Field(default=28, ge=14, le=365)
    follow_up_days: int = Field(default=365, ge=1, le=3650)


class Population(_Strict):
    """``[population]``: where candidates come from and how many may be screened."""

    cohort: Literal["uva-padova-2008"] = "uva-padova-2008"
    max_screened: int = Field(default=400, ge=1, le=1_000_000)


class Eligibility(_Strict):
    """``[eligibility]``: inclusion criteria, all of which must hold."""

    age_years: tuple[float, float] = (18.0, 65.0)
    min_gold_score: int | None = Field(default=None, ge=1, le=7)
    min_severe_events_prior_year: int | None = Field(default=None, ge=0)
    min_diabetes_duration_years: float | None = Field(default=None, ge=0)
    therapies: tuple[Literal["mdi", "pump", "aid"], ...] = STANDARD_CARE

    @field_validator("age_years")
    @classmethod
    def _ordered(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not 0 <= v[0] <= v[1]:
            raise ValueError(f"must be [low, high] with 0 <= low <= high, got {list(v)}")
        return v

    @field_validator("therapies")
    @classmethod
    def _nonempty(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError("must name at least one of 'mdi', 'pump', 'aid'")
        return v


class Redosing(_Strict):
    """``[arms.redosing]``: a second infusion at a fixed study day."""

    day: int = Field(ge=1)
    dose: float | str
    condition: Literal["always", "insulin_dependent"] = "insulin_dependent"


class Arm(_Strict):
    """``[[arms]]``: one arm. Without ``product`` it is a standard-care (control) arm."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    label: str = ""
    n: int = Field(ge=1, le=100_000)
    product: Literal["sc-islets", "donor-islets"] | None = None
    dose: float | str = 0.0
    route: Literal["portal"] = "portal"
    immunosuppression: Literal["none", "edmonton", "cit-07", "zimislecel-like"] = "none"
    weaning: Literal["clinician", "none"] = "clinician"
    redosing: Redosing | None = None

    @model_validator(mode="after")
    def _product_fields(self) -> Arm:
        if self.product is None:
            if self.dose not in (0, 0.0):
                raise ValueError("a standard-care arm (no 'product') must not set 'dose'")
            if self.redosing is not None:
                raise ValueError("a standard-care arm (no 'product') cannot have 'redosing'")
            if self.immunosuppression != "none":
                raise ValueError("a standard-care arm (no 'product') takes no immunosuppression")
        elif isinstance(self.dose, int | float) and not self.dose >= 0:
            raise ValueError(f"dose must be >= 0, got {self.dose}")
        return self

    @property
    def is_control(self) -> bool:
        """Standard care only (no islet product)."""
        return self.product is None


class Visits(_Strict):
    """``[visits]``: visit days and what each assesses."""

    days: tuple[int, ...] = (0, 29, 90, 180, 270, 365)
    cgm_window_days: int = Field(default=14, ge=1, le=90)
    insulin_diary_days: int = Field(default=14, ge=1, le=90)
    hba1c_days: tuple[int, ...] = (0, 90, 180, 270, 365)
    mmtt_days: tuple[int, ...] = (0, 90, 180, 365)

    @field_validator("days")
    @classmethod
    def _visits(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v or v[0] != 0:
            raise ValueError(f"must start with the baseline visit 0, got {list(v)}")
        if any(b <= a for a, b in itertools.pairwise(v)):
            raise ValueError(f"must be strictly increasing, got {list(v)}")
        return v


class Endpoints(_Strict):
    """``[endpoints]``: endpoints by name, and the insulin-independence definition."""

    names: tuple[str, ...] = ENDPOINT_NAMES[:6]
    insulin_independence: Literal["entire_window", "through_end", "any_run"] = "through_end"

    @field_validator("names")
    @classmethod
    def _known(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [x for x in v if x not in ENDPOINT_NAMES]
        if unknown:
            raise ValueError(f"unknown endpoint(s) {unknown}; allowed: {list(ENDPOINT_NAMES)}")
        if len(set(v)) != len(v):
            raise ValueError(f"endpoint names repeat: {list(v)}")
        return v


class Protocol(_Strict):
    """A validated trial protocol (see the module docstring for the file layout)."""

    protocol: Meta
    population: Population = Population()
    eligibility: Eligibility = Eligibility()
    arms: tuple[Arm, ...] = Field(min_length=1)
    visits: Visits = Visits()
    endpoints: Endpoints = Endpoints()
    source: str = Field(default="<memory>", exclude=True)

    @model_validator(mode="after")
    def _consistent(self) -> Protocol:
        names = [a.name for a in self.arms]
        if len(set(names)) != len(names):
            raise ValueError(f"arm names repeat: {names}")
        end = self.protocol.follow_up_days
        v = self.visits
        for key, days in (("visits.days", v.days), ("visits.hba1c_days", v.hba1c_days),
                          ("visits.mmtt_days", v.mmtt_days)):  # fmt: skip
            late = [d for d in days if d > end]
            if late:
                raise ValueError(f"{key}: days {late} are after follow_up_days = {end}")
        for key, days in (("visits.hba1c_days", v.hba1c_days), ("visits.mmtt_days", v.mmtt_days)):
            extra = [d for d in days if d not in v.days]
            if extra:
                raise ValueError(f"{key}: days {extra} are not visit days {list(v.days)}")
        if v.cgm_window_days > self.protocol.run_in_days:
            raise ValueError(
                f"visits.cgm_window_days = {v.cgm_window_days} is longer than the run-in "
                f"(protocol.run_in_days = {self.protocol.run_in_days}): the baseline window "
                "would start before the simulation"
            )
        needs = {
            "hba1c_lt7_d365": ("days", "hba1c_days"),
            "hba1c_change_d365": ("days", "hba1c_days"),
            "tir_gt70_d365": ("days",),
            "insulin_dose_change_pct_d365": ("days",),
            "primary": ("hba1c_days",),
        }
        for name in self.endpoints.names:
            if end < 365:
                raise ValueError(
                    f"endpoints.names: {name!r} is assessed up to day 365 but "
                    f"protocol.follow_up_days = {end}"
                )
            for key in needs.get(name, ()):
                if 365 not in getattr(v, key):
                    raise ValueError(f"endpoints.names: {name!r} needs day 365 in visits.{key}")
        for arm in self.arms:
            if arm.redosing is not None and arm.redosing.day >= end:
                raise ValueError(
                    f"arms '{arm.name}'.redosing.day = {arm.redosing.day} is not before the end "
                    f"of follow-up ({end})"
                )
        return self

    # ----------------------------------------------------------------------------- loading
    @classmethod
    def load(cls, path: str | Path) -> Protocol:
        """Read and validate a protocol file.

        Raises
        ------
        ProtocolError
            Unreadable TOML, unknown keys, bad values (with the allowed values), or
            inconsistent settings; the message names the file and each key.
        """
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ProtocolError(f"{path}: cannot read protocol file: {exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ProtocolError(f"{path}: not valid TOML: {exc}") from exc
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "<memory>") -> Protocol:
        """Validate a protocol given as a mapping (the parsed TOML)."""
        try:
            proto = cls.model_validate({**dict(data), "source": source})
        except ValidationError as exc:
            raise ProtocolError(format_errors(source, exc, data)) from None
        proto._check_dependencies()
        return proto

    def _check_dependencies(self) -> None:
        """Check names that live in data files: products' named doses."""
        from isletsim.therapy.graft import load_islet_product

        for k, arm in enumerate(self.arms):
            second = arm.redosing.dose if arm.redosing else None
            for key, dose in (("dose", arm.dose), ("redosing.dose", second)):
                if arm.product is None or not isinstance(dose, str):
                    continue
                named = load_islet_product(arm.product).named_doses
                if dose not in named:
                    raise ProtocolError(
                        f"{self.source}: arms[{k}] ('{arm.name}').{key}: unknown dose {dose!r} "
                        f"for product {arm.product!r}; allowed: a number in "
                        f"{load_islet_product(arm.product).dose_unit} or one of {sorted(named)}"
                    )

    def with_arms(self, **changes: Any) -> Protocol:
        """A copy with every arm changed (e.g. ``dose=0.0``), validated again."""
        data = self.model_dump()
        data["arms"] = [{**a, **changes} for a in data["arms"]]
        return Protocol.from_dict(data, source=f"{self.source} (modified)")

    @property
    def n_enrolled(self) -> int:
        """Participants the arms enrol in all."""
        return sum(a.n for a in self.arms)

    @property
    def arm_names(self) -> list[str]:
        """Arm names in protocol order."""
        return [a.name for a in self.arms]


def format_errors(source: str, exc: ValidationError, data: Mapping[str, Any]) -> str:
    """One line per problem: ``file: key: reason (got value)``."""
    lines = []
    errors = exc.errors()
    deeper = {tuple(e["loc"][:1]) for e in errors if len(e["loc"]) > 1}
    for err in errors:
        if err["type"] == "too_short" and tuple(err["loc"]) in deeper:
            continue  # items of this list failed; their own errors say why
        loc = [p for p in err["loc"] if p != "function-after"]
        key = _key(loc, data)
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "literal_error":
            msg = f"not allowed; {msg[0].lower()}{msg[1:]}"
        got = f" (got {err['input']!r})" if err["type"] != "missing" and "input" in err else ""
        if err["type"] in ("model_type", "value_error") and isinstance(err.get("input"), dict):
            got = ""
        lines.append(f"{source}: {key or '(top level)'}: {msg}{got}")
    return "invalid protocol\n" + "\n".join(lines)


def _key(loc: list[Any], data: Mapping[str, Any]) -> str:
    out: list[str] = []
    node: Any = data
    for part in loc:
        if isinstance(part, int):
            name = ""
            if isinstance(node, list) and part < len(node) and isinstance(node[part], dict):
                name = node[part].get("name", "")
            out[-1:] = [f"{out[-1] if out else ''}[{part}]" + (f" ('{name}')" if name else "")]
            node = node[part] if isinstance(node, list) and part < len(node) else None
        else:
            out.append(str(part))
            node = node.get(part) if isinstance(node, dict) else None
    return ".".join(out)


__all__ = [
    "ENDPOINT_NAMES",
    "STANDARD_CARE",
    "Arm",
    "Eligibility",
    "Endpoints",
    "Meta",
    "Population",
    "Protocol",
    "ProtocolError",
    "Redosing",
    "Visits",
    "format_errors",
]

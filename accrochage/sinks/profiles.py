"""What differs between CDC schema versions, kept in one place.

1.1.5 is known only from a secondary source (SPEC.md §3.1): when the official 1.1.5 XSD is at
hand, this table and `xsd/cpf-1.1.5.xsd` are the two things to align with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from accrochage.errors import ConfigError
from accrochage.models.vocabulary import CdcAction, SchemaVersion

NAMESPACE = "urn:cdc:cpf:pc5:schema:1.0.0"
XSI = "http://www.w3.org/2001/XMLSchema-instance"


@dataclass(frozen=True, slots=True)
class SchemaProfile:
    version: SchemaVersion
    xsd_name: str
    action: CdcAction | None
    """`flux/action` (1.1.5): a creation flux says CREATION."""
    national_id: bool
    """Whether a known NIR identifies the holder (`identifiantNational`, 13 characters)."""

    @property
    def bundled_xsd(self) -> Path:
        return Path(str(resources.files("accrochage.sinks") / "xsd" / self.xsd_name))


PROFILES: dict[str, SchemaProfile] = {
    SchemaVersion.V1_1_2: SchemaProfile(
        SchemaVersion.V1_1_2, "cpf-1.1.2.xsd", action=None, national_id=False
    ),
    SchemaVersion.V1_1_5: SchemaProfile(
        SchemaVersion.V1_1_5, "cpf-1.1.5.xsd", action=CdcAction.CREATION, national_id=True
    ),
}


def profile_for(version: str) -> SchemaProfile:
    try:
        return PROFILES[SchemaVersion(version)]
    except ValueError:
        known = ", ".join(v.value for v in SchemaVersion)
        raise ConfigError(
            f"schema.version {version!r} is not supported; use one of {known}"
        ) from None

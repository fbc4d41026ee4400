"""What differs between CDC schema versions, kept in one place.

1.1.5 (the default, the CDC's 2026 kit) is known only from a secondary source (SPEC.md §3.1):
when the official 1.1.5 XSD is at hand, this table and `xsd/cpf-1.1.5.xsd` are the two things
to align with it. Until then a user points `schema.xsd` at the kit's file, which then gates
every file written. The assumptions made for 1.1.5, each unverified:

- the namespace is 1.1.2's (`urn:cdc:cpf:pc5:schema:1.0.0`);
- `flux/action` (`CREATION` or `SUPPRESSION`) comes after `horodatage`, before `emetteur`,
  and one flux is either a creation or a suppression, never both;
- everything mandatory in 1.1.2 but the identity branch is still there, in the same order;
- `identificationTitulaire` gains a third branch, `identifiantNational` (`nir`: the 13
  leading characters, sex digit 1 or 2, without the key; `nomNaissance`), used whenever
  the holder's NIR is known; `titulaire` and `dossierFormation` stay allowed;
- a SUPPRESSION flux repeats each passage as it was sent (same `idTechnique`, same
  content): the CDC reports passages by `idTechnique` only.

1.1.2's bundled XSD is the project's own, checked against the official file by the tests.
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
    """`flux/action` (1.1.5): None when the version has no action (1.1.2 can only create).

    Assumed for 1.1.5 (SPEC §3.1, unverified): `action` sits after `horodatage`, one flux is
    either CREATION or SUPPRESSION, and a SUPPRESSION flux has the same envelope as a creation
    with each passage repeated exactly as it was sent (same `idTechnique`, same content,
    same identity branch), since `idTechnique` is the only key the CDC reports.
    """
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


RECONSTRUCTED: frozenset[SchemaVersion] = frozenset({SchemaVersion.V1_1_5})
"""Versions whose bundled XSD was rebuilt from secondary sources, not taken from the CDC's
file: `accrochage doctor` warns while one of them gates the files without `schema.xsd`."""

OFFICIAL_KIT = (
    "the CDC's certifier portal https://certificateurs.moncompteformation.gouv.fr (your "
    "space: /espace-prive; resources: /espace-public/ressources/le-depot-des-donnees): "
    "'Exemple de fichier XML avec son XSD.zip' holds its XSD, certifications-cdc.xsd"
)
"""Where the official kit is (SPEC.md §3): what doctor and the README point to."""

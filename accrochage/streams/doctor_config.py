"""`accrochage doctor`'s checks of the configuration: the schema version, the XSD that gates
the files, the ingest tokens, who may read the file. They read the settings, the
configuration file and the XSD files only, never the state."""

from __future__ import annotations

import tomllib
from pathlib import Path

from accrochage.errors import AccrochageError
from accrochage.models.vocabulary import DepositorNature
from accrochage.private_files import open_to_others
from accrochage.settings import Settings
from accrochage.settings.registry import registry_from
from accrochage.sinks.profiles import OFFICIAL_KIT, RECONSTRUCTED, profile_for
from accrochage.sinks.schemas import declared_version, load_schema
from accrochage.state.base import Store
from accrochage.streams.findings import Finding, Level
from accrochage.streams.header_check import headers_changed


def token_findings(settings: Settings) -> list[Finding]:
    """Ingest tokens that may send for every certifier, when there are several: a platform
    could then create or correct another certifier's records."""
    scopes = settings.api.ingest_scopes
    keys = [c.key for c in settings.certifiers]
    if scopes and not settings.api.token.get_secret_value():
        return [
            Finding(
                "api",
                Level.WARNING,
                f"api.ingest_tokens are set but api.token is not: every route but POST /events "
                f"and /check (the records and their personal data) answers anyone who reaches "
                f"{settings.api.bind}; set api.token",
                action=True,
            )
        ]
    if not scopes or len(keys) < 2:
        return []
    open_ones = [f"#{n}" for n, (_, scope) in enumerate(scopes, start=1) if scope is None]
    if not open_ones:
        return [Finding("api", Level.OK, f"each of the {len(scopes)} ingest tokens is scoped")]
    return [
        Finding(
            "api",
            Level.WARNING,
            f"api.ingest_tokens {', '.join(open_ones)} may send events for every certifier "
            f'({", ".join(keys)}): write each as {{token = "...", certifiers = [...]}} to '
            "limit an exam platform to the certifiers it delivers for",
        )
    ]


def config_findings(config: Path) -> list[Finding]:
    """A configuration file that holds a secret and every user of the machine may read:
    `cp accrochage.example.toml accrochage.toml` makes it so under the usual umask, and the
    operator's token reads every record's personal data through the API."""
    try:
        exposed = open_to_others(config)
        data = tomllib.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # loading the settings read it already
        return []
    api, alerts = data.get("api", {}), data.get("alerts", {})
    held = [
        key
        for key, value in (
            ("api.token", api.get("token")),
            ("api.ingest_tokens", api.get("ingest_tokens")),
            ("alerts.webhooks", alerts.get("webhooks")),
            ("alerts.alertmanager", alerts.get("alertmanager")),
        )
        if value
    ]
    if not exposed or not held:
        return []
    return [
        Finding(
            "config",
            Level.WARNING,
            f"{config} holds {', '.join(held)} and may be read by every user of this machine "
            "(the operator's token reads every record's personal data): `chmod o-rwx` it, or "
            "set them in ACCROCHAGE_* variables instead",
            action=True,
        )
    ]


def certifier_findings(settings: Settings) -> list[Finding]:
    """Certifiers the configuration identifies as one (a section copied and not all its
    identifiers changed: one's passages would go out under the other's contract), and a
    depositor's nature that says it deposits for itself while it deposits for others."""
    findings = []
    for what, key_of in (
        ("idClient and idContrat", lambda c: (c.id_client, c.id_contrat)),
        ("SIRET", lambda c: c.siret),
    ):
        seen: dict[object, list[str]] = {}
        for certifier in settings.certifiers:
            if (value := key_of(certifier)) is not None:
                seen.setdefault(value, []).append(certifier.key)
        for keys in (k for k in seen.values() if len(k) > 1):
            findings.append(
                Finding(
                    "certifiers",
                    Level.WARNING,
                    f"certifiers {', '.join(keys)} have the same {what}: each one's files go "
                    "out as the same certifier's; check each [[certifiers]] section against "
                    "the certifier's contract with the CDC",
                    action=True,
                )
            )
    findings += _nature_findings(settings)
    return findings


def _nature_findings(settings: Settings) -> list[Finding]:
    """A natureDeposant that does not fit who deposits: CERTIFICATEUR in the files of a
    certifier of another idClient, or TIERS_CONFIANCE (the emitter's) in the emitter's own."""
    emitter = settings.emitter
    certifying = DepositorNature.CERTIFICATEUR
    others = [
        c.key
        for c in settings.certifiers
        if c.id_client != emitter.id_client and (c.nature or emitter.nature) is certifying
    ]
    findings = _set_certifying(settings)
    if emitter.nature is certifying and others:
        itself = any(c.id_client == emitter.id_client for c in settings.certifiers)
        findings.append(
            Finding(
                "certifiers",
                Level.WARNING,
                f"the files of {', '.join(others)} say natureDeposant {certifying} (a "
                "certifier depositing for itself), but they have another idClient than the "
                "emitter's: "
                + (
                    "a certifier depositing for others as well may keep it, as the CDC's terms "
                    "do not say otherwise, or set "
                    f'nature = "{DepositorNature.TIERS_CONFIANCE}" in their [[certifiers]] tables'
                    if itself
                    else "a depositor mandated by certifiers (a trusted third party) sets "
                    f'[emitter] nature = "{DepositorNature.TIERS_CONFIANCE}" (SPEC §2)'
                ),
                action=not itself,
            )
        )
    own = [
        c.key
        for c in settings.certifiers
        if c.id_client == emitter.id_client and (c.nature or emitter.nature) is not certifying
    ]
    if own:
        findings.append(
            Finding(
                "certifiers",
                Level.WARNING,
                f"the files of {', '.join(own)} say natureDeposant "
                f"{DepositorNature.TIERS_CONFIANCE}, but they "
                "have the emitter's idClient: if it deposits its own certifications, set "
                f'nature = "{certifying}" in their [[certifiers]] tables',
            )
        )
    return findings


def _set_certifying(settings: Settings) -> list[Finding]:
    """A trusted third party's certifier of another idClient whose own table says
    CERTIFICATEUR: the line to take out is that one, the emitter's nature being right."""
    emitter = settings.emitter
    certifying = DepositorNature.CERTIFICATEUR
    keys = [
        c.key
        for c in settings.certifiers
        if c.id_client != emitter.id_client and c.nature is certifying
    ]
    if emitter.nature is certifying or not keys:
        return []
    itself = any(c.id_client == emitter.id_client for c in settings.certifiers)
    return [
        Finding(
            "certifiers",
            Level.WARNING,
            f"the files of {', '.join(keys)} say natureDeposant {certifying} (a certifier "
            "depositing for itself), set by nature in their [[certifiers]] tables, but they "
            f"have another idClient than the emitter's, a depositor mandated by certifiers "
            f'({emitter.nature}, SPEC §2): take nature = "{certifying}" out of those tables',
            action=not itself,
        )
    ]


# -- the schema and its XSD -----------------------------------------------------------------


def schema_finding(settings: Settings) -> Finding:
    schema = settings.schema_
    how = (
        "named in the configuration"
        if schema.version_named
        else "the default: schema.version is not set"
    )
    return Finding("schema", Level.OK, f"files are written with schema {schema.version} ({how})")


def xsd_finding(settings: Settings) -> Finding:
    version = settings.schema_.version
    given = settings.schema_.xsd
    if given is not None:
        return _given_xsd(given.resolve(), version)
    bundled = profile_for(version).bundled_xsd
    if version in RECONSTRUCTED:
        return Finding(
            "xsd",
            Level.WARNING,
            f"files are checked against the bundled {version} XSD ({bundled.name}), a "
            "RECONSTRUCTION from secondary sources, not the CDC's file: a file it accepts may "
            f"still be refused by the CDC. Download the official kit from {OFFICIAL_KIT}; "
            "set schema.xsd to that file, then run `accrochage doctor` and `accrochage "
            "check-xml` on a written file",
            action=True,
        )
    return Finding(
        "xsd",
        Level.OK,
        f"files are checked against the bundled {version} XSD ({bundled.name}): the project's "
        "own schema, checked against the CDC's official 1.1.2 file by the tests",
    )


def _given_xsd(path: Path, version: str) -> Finding:
    if not path.is_file():
        return Finding(
            "xsd",
            Level.ERROR,
            f"schema.xsd names {path}, which is not a file: point it at the XSD of the CDC's "
            "kit, or empty it to use the bundled one",
        )
    try:
        load_schema(path)
    except AccrochageError as exc:
        return Finding("xsd", Level.ERROR, str(exc))
    declared = declared_version(path)
    if declared is not None and declared != version:
        return Finding(  # every other command refuses to start so (exit 2)
            "xsd",
            Level.ERROR,
            f"schema.xsd ({path}) declares version {declared} but schema.version is "
            f"{version}: set schema.version to {declared}, or point schema.xsd at the "
            f"{version} kit's XSD",
            action=True,
        )
    stated = f"version {declared}" if declared else "no version attribute"
    return Finding(
        "xsd",
        Level.OK,
        f"files are checked against {path} (schema.xsd, {stated}): the file you supplied, "
        "not the bundled one",
    )


# -- the state --------------------------------------------------------------------------------


def header_findings(settings: Settings, store: Store) -> list[Finding]:
    """Files not yet deposited whose header the configuration no longer gives (a contract
    renewed): the next `flush` supersedes them, but an operator about to upload one should
    know before, and a service left on the old configuration only says so in its log."""
    with store.reading() as reader:
        changed = headers_changed(reader.undeposited_creations(), registry_from(settings))
    if not changed:
        return []
    first, what = next(iter(changed.items()))
    return [
        Finding(
            "files",
            Level.WARNING,
            f"{len(changed)} file(s) not yet deposited carry another header than the "
            f"configuration (first: batch {first}, {what}): do not upload them; the next "
            "`accrochage flush` supersedes them and cuts their records again (a running "
            "service: restart it, so that it reads the configuration)",
            action=True,
        )
    ]

"""The problem cell of the record tables (`commands/record_text.py`): what a person reads
first, so it must not say a SUPPRESSION was retried when none was."""

from __future__ import annotations

from typing import Any

import pytest

from accrochage.commands.output import masked
from accrochage.commands.record_text import record_cell

REFUSAL = "Passage introuvable"
ALREADY = "Le passage certification existe déjà en base"


def row(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "errors": [],
        "status": "accepted",
        "suppression_rejected": False,
        "correction_pending": False,
        "revocation_pending": False,
        "cdc_message": None,
        "cdc_reason": None,
        "cdc_held_as": None,
        "batch_id": "B-1",
        "correction_request": None,
    }
    return base | fields


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        (
            {"suppression_rejected": True, "correction_pending": True, "cdc_reason": "other"},
            f"SUPPRESSION refused other: {REFUSAL}",
        ),
        (
            {"correction_pending": True, "cdc_reason": "other"},
            f"SUPPRESSION retried after CDC other: {REFUSAL}",
        ),
        (
            {"revocation_pending": True, "cdc_reason": "file_rejected"},
            f"SUPPRESSION retried after CDC file_rejected: {REFUSAL}",
        ),
    ],
    ids=["refused", "retried correction", "retried revocation"],
)
def test_a_refused_then_retried_suppression(fields: dict[str, Any], said: str) -> None:
    assert record_cell(row(cdc_message=REFUSAL, **fields), "problem").startswith(said[:60])


@pytest.mark.parametrize(
    "fields",
    [{}, {"correction_pending": True}],
    ids=["accepted", "accepted and corrected since"],
)
def test_an_acceptance_s_own_message_is_no_retried_suppression(fields: dict[str, Any]) -> None:
    """ "existe déjà" accepts a CREATION: the record carries that message, refused nothing;
    corrected since, what is due (its correction) is said instead."""
    cell = record_cell(row(cdc_message=ALREADY, cdc_reason="already_exists", **fields), "problem")
    assert "SUPPRESSION" not in cell
    if fields:
        assert cell == "correction_pending", cell
    else:
        assert cell.startswith("CDC already_exists: Le passage"), cell


def test_a_value_the_cdc_quotes_is_masked_in_the_table() -> None:
    """The CDC's schema messages quote what a passage held: a name and a NIR landed in the
    table an operator pastes into a ticket (`show` keeps the whole message)."""
    said = (
        "file rejected: XSD: cvc-maxLength-valid: Value 'Zorglub 193057510812376' with "
        "length = '70' is not facet-valid"
    )
    cell = record_cell(
        row(status="rejected", cdc_message=said, cdc_reason="file_rejected"), "problem"
    )
    assert "Zorglub" not in cell and "1930575" not in cell
    assert "Value '…'" in cell
    assert masked("Aucun titulaire ne correspond") == "Aucun titulaire ne correspond"
    assert masked("value 'a' and VALUE 'b'") == "value '…' and VALUE '…'"


def test_a_quoted_name_with_an_apostrophe_a_leading_value_and_french_are_masked() -> None:
    """The mask stopped at a name's own apostrophe ("Value 'N'DIAYE …'" printed DIAYE and the
    NIR), missed the value Xerces puts first in a datatype error (a birth date) and its
    French messages (the CDC's validator answers in French): all were printed whole."""
    quoted = [
        "cvc-maxLength-valid: Value 'N'DIAYE 193057510812376' with length = '70' is not "
        "facet-valid with respect to maxLength '60' for type 'nom'.",
        "cvc-type.3.1.3: The value 'D'ALMEIDA' of element 'nomNaissance' is not valid.",
        "cvc-datatype-valid.1.2.1: '1987-02-30' is not a valid value for 'date'.",
        "cvc-type.3.1.3 : La valeur 'N'DIAYE' de l'élément 'nomNaissance' n'est pas valide.",
        "cvc-datatype-valid.1.2.1 : '1987-02-30' n'est pas une valeur valide pour 'date'.",
    ]
    for message in quoted:
        shown = masked(message)
        assert not any(secret in shown for secret in ("DIAYE", "1930575", "ALMEIDA", "1987")), shown
        assert "'…'" in shown
    assert masked(quoted[0]).endswith(
        "with length = '70' is not facet-valid with respect to maxLength '60' for type 'nom'."
    )
    assert masked("Value '' with length = '0'") == "Value '…' with length = '0'"

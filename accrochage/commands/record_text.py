"""How a record reads on a terminal: the listings' problem cell, `show`'s lines, and what to
ask the CDC's support when no SUPPRESSION can carry a record's correction or withdrawal."""

from __future__ import annotations

from collections.abc import Container, Mapping

import click

from accrochage.commands.output import Row, cell, first_problem, masked, shorten
from accrochage.models.problems import escaped
from accrochage.models.vocabulary import BatchState, CdcReason, RecordStatus, SchemaVersion
from accrochage.sinks.profiles import profile_for

SENT_AGAIN = frozenset({RecordStatus.PENDING, RecordStatus.BATCHED, RecordStatus.DEPOSITED})
"""Statuses in which a CDC message is that of an earlier file's report (a retried record)."""
LEFT_OUT = frozenset({RecordStatus.BATCHED, RecordStatus.DEPOSITED})
"""Statuses a record keeps when its file's report did not name it (the problem column said
nothing of it: only `show`, `summary` and `doctor` did)."""
FLAGS = ("correction_pending", "revocation_pending", "suppression_rejected", "identity_procedure")
"""The record's flags a person reads in a table (CONTRACT §8, §9)."""


def record_cell(
    row: Row,
    column: str,
    failed: Mapping[str, str] | None = None,
    left_out: Container[str] = (),
) -> str:
    """The table's cells: the first problem (error, a failed file, CDC message or flag) says
    what to fix. `failed`: the failed batches' ids and errors; `left_out`: the reported
    batches whose report did not mention some records (both few: read before the rows)."""
    if column != "problem":
        return cell(row.get(column))
    if row["errors"]:
        return first_problem(row["errors"])
    if row.get("correction_errors"):
        return "correction: " + first_problem(row["correction_errors"], 58)
    if failed and row.get("batch_id") in failed:
        return shorten(f"its file failed (accrochage batches): {failed[row['batch_id']]}", 70)
    if row.get("batch_id") in left_out and row.get("status") in LEFT_OUT:
        return "not in its file's CDC report: to send again (accrochage show)"
    if by_support(row):
        return shorten(
            f"CDC holds it as {row['cdc_held_as']}: no SUPPRESSION (accrochage show)", 70
        )
    flags = [f for f in FLAGS if row.get(f)]
    request = row.get("correction_request")
    if request:
        flags.append(f"correction request {request['request_id']} due {request['deadline']}")
    if row.get("cdc_message") and not (flags and _an_acceptance(row)):
        said = "SUPPRESSION refused" if row.get("suppression_rejected") else "CDC"
        if retried_suppression(row):
            said = "SUPPRESSION retried after CDC"  # the refusal is an earlier file's
        elif row.get("status") in SENT_AGAIN:  # the message is the last report's, not its file's
            waits = row.get("status") == RecordStatus.PENDING
            said = "to send again after CDC" if waits else "sent again after CDC"
        return shorten(f"{said} {row.get('cdc_reason') or ''}: {masked(row['cdc_message'])}", 70)
    return ", ".join(flags)


def _an_acceptance(row: Row) -> bool:
    """An accepted record whose CDC message is its acceptance ("existe déjà en base"): no
    problem, so what keeps it outstanding (a flag, an open correction request) is said."""
    return (
        row.get("status") == RecordStatus.ACCEPTED
        and row.get("cdc_reason") == CdcReason.ALREADY_EXISTS
        and not row.get("suppression_rejected")
    )


def retried_suppression(row: Row) -> bool:
    """An accepted record whose SUPPRESSION the CDC refused, cut again since (`retry`): its
    message is the earlier file's refusal. An acceptance's own message ("existe déjà") is
    not one, nor a record with nothing left to withdraw."""
    waiting = row.get("correction_pending") or row.get("revocation_pending")
    return (
        row.get("status") == RecordStatus.ACCEPTED
        and not row.get("suppression_rejected")
        and row.get("cdc_reason") != CdcReason.ALREADY_EXISTS
        and bool(waiting)
    )


def by_support(row: Row) -> bool:
    """An accepted record the CDC holds under another idTechnique, flagged for a correction or
    withdrawal: no SUPPRESSION is cut for it (`show` says what the CDC's support can do)."""
    waiting = row.get("correction_pending") or row.get("revocation_pending")
    return (
        bool(row.get("cdc_held_as"))
        and row.get("status") == RecordStatus.ACCEPTED
        and bool(waiting)
    )


def support_steps(detail: Row, version: SchemaVersion) -> list[str]:
    """What to ask the CDC's support for an accepted record no SUPPRESSION can correct or
    withdraw (schema 1.1.2 has none; the CDC holds it under another idTechnique), and how to
    record that it was done; nothing while a SUPPRESSION cut before is in flight (its report
    comes first), and a valid correction first when the stored one has errors."""
    revoked, corrected = detail.get("revocation_pending"), detail.get("correction_pending")
    if detail["status"] != RecordStatus.ACCEPTED or not (revoked or corrected):
        return []
    held_as = detail.get("cdc_held_as")
    if held_as is None and profile_for(version).action is not None:
        return []
    in_flight = detail.get("batch_id") != detail.get("accepted_batch_id")
    if in_flight and not detail.get("suppression_rejected"):
        return []
    rid = detail["record_id"]
    why = (
        f"the CDC holds it under idTechnique {held_as}, where no SUPPRESSION naming {rid} can reach"
        if held_as is not None
        else "schema 1.1.2 sends no SUPPRESSION"
    )
    if not revoked and detail.get("correction_valid") is False:
        return [
            f"next:         {why}, and the stored correction has errors (above): "
            "send a valid corrected event; the CDC's support can apply that one"
        ]
    accepted = next(
        (b for b in detail["batches"] if b["batch_id"] == detail.get("accepted_batch_id")), None
    )
    where = f" (accepted in file {accepted['file_name']})" if accepted else ""
    ask = (
        "delete"
        if revoked
        else 'correct, with the stored correction (`show --format json`, "correction"),'
    )
    return [
        f"next:         {why}: ask the CDC's support to {ask} "
        f"the passage idTechnique {held_as or rid}{where};",
        f"              {SUPPORT_CONTACT};",
        f'              once done: accrochage support-applied {rid} --note "<their reference>"',
    ]


SUPPORT_CONTACT = (
    "the support's address, as a third party gives it (SPEC §8; check it on the portal): "
    "support.certificateurs@caissedesdepots.fr"
)


def echo_detail(detail: Row) -> None:
    """Line by line, `escaped`: the certifier, messages and reasons may come from a sender."""
    for name in (
        "record_id",
        "certifier",
        "status",
        "delivered_on",
        "deadline",
        "days_left",
        "batch_id",
        "cdc_reason",
        "cdc_message",
    ):
        say(f"{name:<13} {cell(detail.get(name)) or '-'}")
    if detail.get("cdc_held_as"):
        say(f"{'cdc_held_as':<13} {detail['cdc_held_as']} (the CDC's idTechnique for it)")
    for name in ("errors", "warnings"):
        for problem in detail[name]:
            say(f"{name[:-1]:<13} {problem['field']}: {problem['message']}")
    for problem in detail.get("correction_errors", []):
        say(f"{'correction':<13} error {problem['field']}: {problem['message']}")
    flags = [f for f in FLAGS if detail.get(f)]
    if flags:
        say(f"{'flags':<13} {', '.join(flags)}")
    for request in detail.get("correction_requests", []):
        left = request["days_left"]
        due = f"due {request['deadline']}, {left} days" if left is not None else "closed"
        say(
            f"{'request':<13} {request['request_id']} {request['status']} (received "
            f"{request['received_on']}, {due})"
        )
    for batch in detail["batches"]:
        where = batch["file"] or batch["file_name"]
        say(f"{'batch':<13} {batch['batch_id']} {batch['state']} {where}")
    if any(
        b["batch_id"] == detail.get("batch_id") and b["state"] == BatchState.FAILED
        for b in detail["batches"]
    ):
        say(
            f"{'next':<13} its batch's file could not be written (`accrochage batches` says "
            "why) and is tried again at each flush; if its message names this idTechnique, "
            "send a corrected event (it supersedes the batch) or `accrochage exclude "
            f"{detail['record_id']} --reason TEXT`"
        )
    say("history:")
    for entry in detail["history"]:
        before = entry["from_status"] or "-"
        event = f" (event {entry['event_id']})" if entry.get("event_id") else ""
        say(f"  {entry['at']}  {before:>9} -> {entry['to_status']:<9}  {entry['reason']}{event}")
    say("content: `accrochage show --format json` prints it (it holds personal data)")


def say(line: str) -> None:
    click.echo(escaped(line))


def left_out_steps(detail: Row) -> list[str]:
    """What to do for a record its file's processed report did not mention (as `summary`
    and `doctor` say of the file): its status is kept, and nothing else tells it."""
    current = next((b for b in detail["batches"] if b["batch_id"] == detail.get("batch_id")), None)
    if current is None or current.get("state") != BatchState.REPORTED.value:
        return []
    waiting = detail["status"] in (RecordStatus.BATCHED, RecordStatus.DEPOSITED) or (
        detail["status"] == RecordStatus.ACCEPTED
        and detail.get("batch_id") != detail.get("accepted_batch_id")
        and not detail.get("suppression_rejected")
    )
    if not waiting:
        return []
    return [
        f"next:         the CDC's report of its file {current.get('file_name')} did not mention "
        "it (it never reached the CDC, or the report missed it): `accrochage retry --batch "
        f"{current['batch_id']}` sends it again"
    ]


def correction_steps(detail: Row) -> list[str]:
    """A stored correction with errors is not sent, and nothing changes until one of two
    things: a corrected event, or newer reference data found it valid (`revalidate`)."""
    if not detail.get("correction_errors") or detail.get("revocation_pending"):
        return []
    return [
        "next:         its stored correction has errors (above) and is not sent: send a "
        "corrected event; if they name reference data older than the certification, "
        "`accrochage refdata load` a newer export, then `accrochage revalidate`"
    ]


def request_steps(detail: Row) -> list[str]:
    """An accepted record with nothing left to send whose correction request is still open
    (opened after the correction was stored, so its acceptance did not close it): the
    operator says whether the data the CDC holds answers it."""
    request = detail.get("correction_request")
    pending = detail.get("correction_pending") or detail.get("revocation_pending")
    if request is None or detail["status"] != RecordStatus.ACCEPTED or pending:
        return []
    rid = request["request_id"]
    return [
        f"next:         nothing is left to send, and correction request {rid} (due "
        f"{request['deadline']}) is open: if what the CDC holds answers it, `accrochage "
        f"correction-request answer {rid} --corrected`; if the request was unfounded, "
        "`--unfounded TEXT`; otherwise send the corrected event"
    ]

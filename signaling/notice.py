"""The 一次性告知单 (one-time notice) of a consultation room as a value: one part per department,
each with the matters picked from the catalogue, the staff's edits, notes and signature; and the
pure operations on it. Redis and sockets are elsewhere (signaling/notice_store.py,
signaling/room_channel.py); everything here takes a document and returns it changed, or refuses."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from signaling.errors import SignalError

# Bounds: a notice is read on a phone and broadcast whole on every change.
MAX_MATTERS = 10  # per part
MAX_MATERIALS = 40  # per matter, free ones included
MAX_NOTES = 20  # per part
TEXT_MAX = 200  # a material's text
NOTE_MAX = 500
MAX_BYTES = 96 * 1024  # the whole document as JSON
FORMS = ("original", "copy", "either")

# One edit: changes a document in place, or raises a SignalError and changes nothing.
Change = Callable[[dict[str, Any]], None]


def canonical(value: Any) -> bytes:
    """The bytes that are signed and hashed: JSON with sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def new_document(room_id: str, *, ticket_id: str, ticket_number: str, department: str,
                 now: float) -> dict[str, Any]:
    return {"version": 1, "room_id": room_id, "ticket_id": ticket_id,
            "ticket_number": ticket_number, "department": department, "created_at": now,
            "updated_at": now, "revision": 0, "parts": {}, "sealed_at": None}


def _part(doc: dict[str, Any], department: str, department_name: str) -> dict[str, Any]:
    parts: dict[str, Any] = doc["parts"]
    if department not in parts:
        parts[department] = {"department": department, "department_name": department_name,
                             "matters": [], "notes": [], "signature": None}
    return parts[department]  # type: ignore[no-any-return]


def _editable(doc: dict[str, Any], department: str) -> dict[str, Any] | None:
    """The department's part if it may still change (refuses a sealed notice or signed part)."""
    if doc.get("sealed_at") is not None:
        raise SignalError("bad_state.notice_sealed")
    part = doc["parts"].get(department)
    if part is not None and part["signature"] is not None:
        raise SignalError("bad_state.notice_signed")
    return part  # type: ignore[no-any-return]


def _matter(part: dict[str, Any] | None, matter_id: str) -> dict[str, Any]:
    for matter in (part or {}).get("matters", []):
        if matter["matter_id"] == matter_id:
            return matter  # type: ignore[no-any-return]
    raise SignalError("not_found.notice_matter")


def matter_entry(matter: dict[str, Any]) -> dict[str, Any]:
    """A catalogue matter as the notice keeps it: copied at pick time, so later catalogue edits
    do not change a notice already given."""
    materials = [{"name": str(m["name"])[:TEXT_MAX], "form": m.get("form", "either"),
                  "count": int(m.get("count", 1)), "notes": str(m.get("notes", ""))[:TEXT_MAX],
                  "checked": True, "free": False}
                 for m in matter.get("materials", [])][:MAX_MATERIALS]
    return {"matter_id": str(matter["id"]), "name": str(matter["name"]),
            "legal_basis": str(matter.get("legal_basis", "")), "fee": str(matter.get("fee", "")),
            "time_limit": str(matter.get("time_limit", "")),
            "online": bool(matter.get("online", False)), "materials": materials}


def add_matter(doc: dict[str, Any], department: str, department_name: str,
               entry: dict[str, Any]) -> None:
    _editable(doc, department)
    part = _part(doc, department, department_name)
    if any(m["matter_id"] == entry["matter_id"] for m in part["matters"]):
        raise SignalError("bad_state.notice_duplicate")
    if len(part["matters"]) >= MAX_MATTERS:
        raise SignalError("limit.notice", max=MAX_MATTERS)
    part["matters"].append(entry)


def remove_matter(doc: dict[str, Any], department: str, matter_id: str) -> None:
    part = _editable(doc, department)
    matter = _matter(part, matter_id)
    assert part is not None
    part["matters"].remove(matter)


def set_material(doc: dict[str, Any], department: str, matter_id: str, item: int | None, *,
                 checked: bool | None, text: str | None) -> None:
    """Tick or untick a material, change its text, or (item None) add a free one."""
    matter = _matter(_editable(doc, department), matter_id)
    materials: list[dict[str, Any]] = matter["materials"]
    if text is not None:
        text = text.strip()
        if not text:
            raise SignalError("invalid_payload", "text must not be blank")
    if item is None:
        if text is None:
            raise SignalError("invalid_payload", "a new material needs its text")
        if len(materials) >= MAX_MATERIALS:
            raise SignalError("limit.notice", max=MAX_MATERIALS)
        materials.append({"name": text, "form": "either", "count": 1, "notes": "",
                          "checked": True if checked is None else checked, "free": True})
        return
    if item >= len(materials):
        raise SignalError("not_found.notice_matter")
    if checked is not None:
        materials[item]["checked"] = checked
    if text is not None:
        materials[item]["name"] = text


def add_note(doc: dict[str, Any], department: str, department_name: str, text: str) -> None:
    _editable(doc, department)
    text = text.strip()
    if not text:
        raise SignalError("invalid_payload", "text must not be blank")
    part = _part(doc, department, department_name)
    if len(part["notes"]) >= MAX_NOTES:
        raise SignalError("limit.notice", max=MAX_NOTES)
    part["notes"].append(text)


def sign(doc: dict[str, Any], department: str, *, username: str, name: str,
         now: float) -> None:
    """The department's part is done: frozen from now on, with who signed it and when."""
    part = _editable(doc, department)
    if part is None or not part["matters"]:
        raise SignalError("bad_state.notice_empty")
    part["signature"] = {"username": username, "name": name, "department": department,
                         "department_name": part["department_name"], "at": now}


def has_matters(doc: dict[str, Any]) -> bool:
    return any(part["matters"] for part in doc["parts"].values())


def check_size(doc: dict[str, Any]) -> None:
    if len(canonical(doc)) > MAX_BYTES:
        raise SignalError("limit.notice_size", max=MAX_BYTES // 1024)

"""How people are named: one rule for the console's lists and the name Jitsi shows.

Pure: first and last name as entered, or the uid when both are blank.
"""

from __future__ import annotations

from service.domain.model import Role


def full_name(uid: str, first_name: str, last_name: str) -> str:
    """`Ada Lovelace`; the uid when no name was given."""
    return f"{first_name} {last_name}".strip() or uid


def display_name(uid: str, first_name: str, last_name: str, role: Role) -> str:
    """The name shown in the meeting: a doctor's carries `Dr.` (once)."""
    name = full_name(uid, first_name, last_name)
    return f"Dr. {name}" if role is Role.DOCTOR and not name.startswith("Dr.") else name

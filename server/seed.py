"""Demo data: the departments and accounts a new installation in demo mode starts with."""

from __future__ import annotations

import logging

from server.passwords import hash_password
from server.store import Store

logger = logging.getLogger(__name__)

DEMO_PASSWORD = "demo12345"

# id, Chinese name, English name, hall-number prefix
DEMO_DEPARTMENTS: tuple[tuple[str, str, str, str], ...] = (
    ("tax", "税务", "Taxation", "税"),
    ("market", "市场监管", "Market Regulation", "市"),
    ("hrss", "人社", "Human Resources & Social Security", "人"),
    ("fund", "公积金", "Housing Provident Fund", "积"),
    ("estate", "不动产登记", "Real Estate Registration", "房"),
)

DEMO_ACCOUNTS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    *((f"{d[0]}01", f"{d[1]}坐席01", "staff", (d[0],)) for d in DEMO_DEPARTMENTS),
    ("supervisor", "督查员", "supervisor", ()),
    ("admin", "管理员", "admin", ()),
)


async def seed_demo(store: Store) -> bool:
    """Write the demo departments, and the demo accounts when there are no accounts yet.

    Returns True when accounts were created (the first run)."""
    for dept_id, name_zh, name_en, prefix in DEMO_DEPARTMENTS:
        await store.put_department(dept_id, name_zh, name_en, prefix)
    if await store.has_users():
        return False
    for username, display_name, role, departments in DEMO_ACCOUNTS:
        await store.put_user(username, display_name=display_name, role=role,
                             departments=departments, password_hash=hash_password(DEMO_PASSWORD))
    logger.info("seeded %d demo departments and %d demo accounts",
                len(DEMO_DEPARTMENTS), len(DEMO_ACCOUNTS))
    return True

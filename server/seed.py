"""Demo data: the departments and accounts a new installation in demo mode starts with, and the
loading of a departments file."""

from __future__ import annotations

import json
import logging
import tomllib
from pathlib import Path
from typing import Any

from server.config import ConfigError
from signaling.accounts import Accounts, hash_password_async
from signaling.departments import Department
from signaling.store import Store

logger = logging.getLogger(__name__)

DEMO_PASSWORD = "demo12345"

# Open every day, all day, so the demo answers whenever it is tried.
DEMO_DEPARTMENTS: tuple[Department, ...] = (
    Department(id="tax", name_zh="税务", name_en="Taxation", prefix="税",
               matters=("纳税申报", "发票", "税务登记", "跨区迁移", "个人所得税", "社保费")),
    Department(id="market", name_zh="市场监管", name_en="Market Regulation", prefix="市",
               matters=("营业执照", "企业登记", "变更登记", "食品经营许可", "注销")),
    Department(id="hrss", name_zh="人社", name_en="Human Resources & Social Security",
               prefix="人", matters=("社保", "养老保险", "失业登记", "就业", "劳动合同")),
    Department(id="fund", name_zh="公积金", name_en="Housing Provident Fund", prefix="积",
               matters=("公积金提取", "公积金贷款", "缴存", "转移")),
    Department(id="estate", name_zh="不动产登记", name_en="Real Estate Registration",
               prefix="房", matters=("不动产登记", "房产证", "抵押登记", "过户", "查询")),
)

DEMO_ACCOUNTS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    *((f"{d.id}01", f"{d.name_zh}坐席01", "staff", (d.id,)) for d in DEMO_DEPARTMENTS),
    ("guide01", "导服01", "guide", ()),
    ("supervisor", "督查员", "supervisor", ()),
    ("admin", "管理员", "admin", ()),
    ("auditor", "审计员", "auditor", ()),
)


async def put_missing_departments(store: Store, departments: tuple[Department, ...]) -> int:
    """Add the departments Redis does not know yet; those it knows keep their (admin's) settings."""
    known = {d.id for d in await store.departments()}
    added = [d for d in departments if d.id not in known]
    for dept in added:
        await store.put_department(dept)
    return len(added)


async def seed_demo(store: Store, accounts: Accounts) -> int:
    """Write the demo departments, and the demo accounts that do not exist yet (an account
    someone has changed keeps its changes). Returns how many accounts were added."""
    await put_missing_departments(store, DEMO_DEPARTMENTS)
    added = 0
    for username, display_name, role, departments in DEMO_ACCOUNTS:
        if await accounts.user(username) is not None:
            continue
        await accounts.put(username, display_name=display_name, role=role,
                           departments=departments,
                           password_hash=await hash_password_async(DEMO_PASSWORD), demo=True)
        added += 1
    if added:
        logger.info("seeded %d demo departments and %d demo accounts",
                    len(DEMO_DEPARTMENTS), added)
    return added


def load_departments_file(path: Path) -> tuple[Department, ...]:
    """Read and check a departments file (TOML `[[department]]` tables, or a JSON list)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"departments_file {path}: {exc.strerror}") from None
    try:
        data: Any = json.loads(text) if path.suffix == ".json" else \
            tomllib.loads(text).get("department", [])
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"departments_file {path}: {exc}") from None
    if not isinstance(data, list) or not data:
        raise ConfigError(f"departments_file {path}: no departments in it")
    out = []
    for index, entry in enumerate(data):
        try:
            out.append(Department.from_dict(entry))
        except ConfigError as exc:
            name = entry.get("id", f"#{index + 1}") if isinstance(entry, dict) else index + 1
            raise ConfigError(f"departments_file {path}: department {name}: {exc}") from None
    ids = [d.id for d in out]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"departments_file {path}: a department id appears twice")
    return tuple(out)

"""The matter catalogue: a matter and its materials check themselves (errors in English and
Chinese, naming the field), survive a round trip through their dict, and the Redis store keeps
each department's matters in order, moves a matter between departments and deletes it; the demo
catalogue is written into an empty catalogue only."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
import redis.asyncio as aioredis

from server.seed import DEMO_DEPARTMENTS, DEMO_MATTERS, seed_matters
from signaling import keys
from signaling.matters import MAX_MATERIALS, Material, Matter, MatterError, Matters
from signaling.store import Store


def _matter(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "tax-invoice", "department": "tax", "name": "增值税发票申领",
        "materials": [{"name": "经办人身份证件", "form": "original", "count": 1, "notes": ""},
                      {"name": "税务UKey", "form": "either", "count": 2, "notes": "首次免费"}],
        "legal_basis": "《中华人民共和国发票管理办法》", "fee": "不收费",
        "time_limit": "即时办结", "online": True}
    data.update(changes)
    return data


def test_a_matter_round_trips_through_its_dict() -> None:
    matter = Matter.from_dict(_matter())
    assert matter.materials[1] == Material("税务UKey", "either", 2, "首次免费")
    assert Matter.from_dict(matter.to_dict()) == matter
    assert matter.to_dict() == _matter()


def test_optional_fields_have_defaults_and_texts_are_trimmed() -> None:
    matter = Matter.from_dict({"id": "q", "department": "estate", "name": " 查询 ",
                               "materials": [{"name": " 身份证 "}]})
    assert matter.name == "查询" and matter.online is False
    assert matter.materials == (Material("身份证", "original", 1, ""),)
    assert (matter.legal_basis, matter.fee, matter.time_limit) == ("", "", "")


@pytest.mark.parametrize(("changes", "en", "zh"), [
    ({"id": "Tax_Invoice"}, "id must be lower-case", "事项编号"),
    ({"id": "1tax"}, "id must be lower-case", "事项编号"),
    ({"id": "tax-"}, "id must be lower-case", "事项编号"),
    ({"id": "tax--x"}, "id must be lower-case", "事项编号"),
    ({"id": "t" * 65}, "id must be lower-case", "事项编号"),
    ({"department": "税务"}, "department is not a department id", "所属部门"),
    ({"department": None}, "department is required", "请填写所属部门"),
    ({"name": ""}, "name must be text of 1 to 64", "事项名称应为 1 到 64 个字"),
    ({"name": "  "}, "name must be text of 1 to 64", "事项名称"),
    ({"name": "事" * 65}, "name must be text of 1 to 64", "事项名称"),
    ({"name": "a\x00b"}, "control characters", "控制字符"),
    ({"name": "两行\n名称"}, "control characters", "控制字符"),
    ({"fee": "不收费\x85"}, "control characters", "控制字符"),
    ({"online": "yes"}, "online must be true or false", "是否可网办"),
    ({"fee": 0}, "fee must be text", "收费标准应为文字"),
    ({"time_limit": "天" * 101}, "time_limit must be at most 100", "办理时限最多 100 个字"),
    ({"legal_basis": "法" * 1001}, "legal_basis must be at most 1000", "设定依据"),
    ({"materials": "身份证"}, "materials must be a list", "材料清单"),
    ({"materials": [{"name": "身份证"}] * 2}, "listed twice", "重复"),
    ({"materials": [{"name": f"m{i}"} for i in range(MAX_MATERIALS + 1)]},
     f"at most {MAX_MATERIALS} materials", "材料最多"),
    ({"materials": ["身份证"]}, "a material must be an object", "每项材料"),
    ({"materials": [{"name": ""}]}, "material name must be text of 1 to 64", "材料名称"),
    ({"materials": [{"name": "证", "form": "scan"}]}, "material form must be one of",
     "材料形式"),
    ({"materials": [{"name": "证", "count": 0}]}, "count must be a whole number", "份数"),
    ({"materials": [{"name": "证", "count": 100}]}, "count must be a whole number", "份数"),
    ({"materials": [{"name": "证", "count": 1.5}]}, "count must be a whole number", "份数"),
    ({"materials": [{"name": "证", "count": True}]}, "count must be a whole number", "份数"),
    ({"materials": [{"name": "证", "notes": "注" * 201}]}, "notes must be at most 200",
     "材料备注"),
    ({"materials": [{"name": "证", "colour": "red"}]}, "unknown field(s) colour", "未知字段"),
    ({"price": 5}, "unknown field(s) price", "未知字段"),
])
def test_a_bad_matter_is_refused_naming_the_field(changes: dict[str, Any], en: str,
                                                  zh: str) -> None:
    with pytest.raises(MatterError) as caught:
        Matter.from_dict(_matter(**changes))
    assert en in str(caught.value)
    assert zh in caught.value.zh


def test_legal_basis_and_notes_may_have_several_lines() -> None:
    matter = Matter.from_dict(_matter(legal_basis="《条例》第一条\n《细则》第二条",
                                      materials=[{"name": "证", "notes": "一\n二"}]))
    assert matter.legal_basis.count("\n") == 1 and matter.materials[0].notes == "一\n二"


def test_a_matter_that_is_not_an_object_is_refused() -> None:
    data: object
    for data in ([], "tax", None, 1):
        with pytest.raises(MatterError, match="must be an object"):
            Matter.from_dict(data)


def test_the_values_check_themselves_when_built_directly() -> None:
    with pytest.raises(MatterError):
        Material("证", "scan", 1, "")
    with pytest.raises(MatterError):
        replace(Matter.from_dict(_matter()), online=1)  # type: ignore[arg-type]


def test_every_demo_matter_checks_and_belongs_to_a_demo_department() -> None:
    departments = {d.id for d in DEMO_DEPARTMENTS}
    ids = [m.id for m in DEMO_MATTERS]
    assert len(set(ids)) == len(ids)
    for matter in DEMO_MATTERS:
        assert Matter.from_dict(matter.to_dict()) == matter
        assert matter.department in departments and matter.materials
        assert matter.legal_basis and matter.fee and matter.time_limit
    for dept in departments:
        assert sum(m.department == dept for m in DEMO_MATTERS) >= 2, dept


async def test_the_store_keeps_order_replaces_moves_and_deletes(
        redis_client: aioredis.Redis) -> None:
    matters = Matters(redis_client)
    first = Matter.from_dict(_matter())
    second = Matter.from_dict(_matter(id="tax-iit", name="个人所得税汇算清缴"))
    other = Matter.from_dict(_matter(id="fund-loan", department="fund", name="公积金贷款"))
    assert await matters.put(first) is None
    assert await matters.put(second) is None
    assert await matters.put(other) is None
    assert [m.id for m in await matters.for_department("tax")] == ["tax-invoice", "tax-iit"]
    assert [m.id for m in await matters.all()] == ["tax-invoice", "tax-iit", "fund-loan"]
    assert await matters.get("tax-iit") == second
    assert await matters.get("nope") is None and await matters.get("../x") is None

    # A changed matter keeps its place and the change is what is read back.
    changed = replace(first, fee="每份 10 元", materials=first.materials[:1])
    assert await matters.put(changed) == first
    assert await matters.for_department("tax") == [changed, second]

    # Moved to another department: gone from the first, last in the other.
    moved = replace(changed, department="fund")
    assert await matters.put(moved) == changed
    assert [m.id for m in await matters.for_department("tax")] == ["tax-iit"]
    assert [m.id for m in await matters.for_department("fund")] == ["fund-loan", "tax-invoice"]

    assert await matters.delete("tax-invoice") == moved
    assert await matters.delete("tax-invoice") is None
    assert await matters.get("tax-invoice") is None
    assert [m.id for m in await matters.for_department("fund")] == ["fund-loan"]
    assert [m.id for m in await matters.all()] == ["tax-iit", "fund-loan"]
    assert not await redis_client.exists(keys.MATTER("tax-invoice"))


async def test_a_stored_matter_that_does_not_check_is_left_out(
        redis_client: aioredis.Redis) -> None:
    matters = Matters(redis_client)
    await matters.put(Matter.from_dict(_matter()))
    await matters.put(Matter.from_dict(_matter(id="tax-iit")))
    await redis_client.set(keys.MATTER("tax-iit"), '{"id": "tax-iit"}')
    assert [m.id for m in await matters.for_department("tax")] == ["tax-invoice"]
    assert await matters.get("tax-iit") is None


async def test_the_demo_catalogue_fills_an_empty_catalogue_only(
        redis_client: aioredis.Redis) -> None:
    matters = Matters(redis_client)
    assert await seed_matters(matters, DEMO_MATTERS) == len(DEMO_MATTERS)
    assert await matters.all() == list(DEMO_MATTERS)
    names = [m.name for m in await matters.for_department("market")]
    assert names[0] == "个体工商户设立登记"
    # An admin's deletion and change stay after the next start.
    await matters.delete("estate-records")
    await matters.put(replace(DEMO_MATTERS[0], fee="按规定收取"))
    assert await seed_matters(matters, DEMO_MATTERS) == 0
    assert await matters.get("estate-records") is None
    assert (await matters.all())[0].fee == "按规定收取"


async def test_settings_saved_before_the_catalogue_still_load(
        redis_client: aioredis.Redis) -> None:
    """A department's stored settings from before the catalogue carry `matters`: dropped on
    reading, so an installation's departments survive the upgrade."""
    store = Store(redis_client)
    tax = DEMO_DEPARTMENTS[0]
    await store.put_department(tax)
    old = {**tax.to_dict(), "matters": ["纳税申报", "发票"]}
    await redis_client.hset(keys.DEPT("tax"), "config", json.dumps(old, ensure_ascii=False))
    assert await store.department("tax") == tax
    assert await store.departments() == [tax]

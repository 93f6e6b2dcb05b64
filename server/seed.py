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
from signaling.matters import Material, Matter, Matters
from signaling.store import Store

logger = logging.getLogger(__name__)

DEMO_PASSWORD = "demo12345"

# Open every day, all day, so the demo answers whenever it is tried.
DEMO_DEPARTMENTS: tuple[Department, ...] = (
    Department(id="tax", name_zh="税务", name_en="Taxation", prefix="税"),
    Department(id="market", name_zh="市场监管", name_en="Market Regulation", prefix="市"),
    Department(id="hrss", name_zh="人社", name_en="Human Resources & Social Security",
               prefix="人"),
    Department(id="fund", name_zh="公积金", name_en="Housing Provident Fund", prefix="积"),
    Department(id="estate", name_zh="不动产登记", name_en="Real Estate Registration",
               prefix="房"),
)
# Interpreter pools (signaling/skills.py): 手语, 朝鲜语, 蒙古语, English, one demo account each.
DEMO_INTERPRETER_POOLS: tuple[Department, ...] = (
    Department(id="interp-sign", name_zh="手语翻译", name_en="Sign language", prefix="手"),
    Department(id="interp-ko", name_zh="朝鲜语翻译", name_en="Korean", prefix="朝"),
    Department(id="interp-mn", name_zh="蒙古语翻译", name_en="Mongolian", prefix="蒙"),
    Department(id="interp-en", name_zh="英语翻译", name_en="English", prefix="英"),
)


def _material(name: str, form: str = "original", count: int = 1, notes: str = "") -> Material:
    return Material(name=name, form=form, count=count, notes=notes)


_ID_CARD = _material("居民身份证", notes="本人有效身份证件，代办另带代理人身份证件和授权委托书")
# A few matters of each demo department, as a hall's guide (办事指南) lists them.
DEMO_MATTERS: tuple[Matter, ...] = (
    Matter(id="tax-invoice", department="tax", name="增值税发票申领",
           materials=(_material("纳税人领用发票票种核定表"),
                      _material("经办人身份证件", notes="经办人须为办税人员"),
                      _material("税务UKey", notes="首次申领时免费领取")),
           legal_basis="《中华人民共和国发票管理办法》第十五条、第十六条；"
                       "《中华人民共和国发票管理办法实施细则》",
           fee="不收费", time_limit="即时办结", online=True),
    Matter(id="tax-iit-annual", department="tax", name="个人所得税综合所得汇算清缴",
           materials=(_ID_CARD,
                      _material("收入及扣除相关资料", "copy",
                                notes="如专项附加扣除、大病医疗等票据，留存备查"),
                      _material("本人银行卡", "either", notes="申请退税时使用")),
           legal_basis="《中华人民共和国个人所得税法》第十一条；"
                       "《中华人民共和国个人所得税法实施条例》第二十五条",
           fee="不收费", time_limit="每年 3 月 1 日至 6 月 30 日办理，即时受理", online=True),
    Matter(id="tax-registration", department="tax", name="税务登记（信息确认）",
           materials=(_material("营业执照", "either", notes="副本"),
                      _material("法定代表人（负责人）身份证件"),
                      _material("生产经营地址证明", "copy", notes="房产证明或租赁协议")),
           legal_basis="《中华人民共和国税收征收管理法》第十五条；《税务登记管理办法》",
           fee="不收费", time_limit="即时办结", online=True),
    Matter(id="market-sole-proprietor", department="market", name="个体工商户设立登记",
           materials=(_material("个体工商户登记（备案）申请书", notes="经营者签字"),
                      _material("经营者身份证件", "copy", notes="现场核验原件"),
                      _material("经营场所使用证明", "copy", notes="产权证明或租赁合同")),
           legal_basis="《促进个体工商户发展条例》；"
                       "《中华人民共和国市场主体登记管理条例》第十六条、第十九条",
           fee="不收费", time_limit="材料齐全、符合法定形式的当场办结", online=True),
    Matter(id="market-name-change", department="market", name="企业名称变更登记",
           materials=(_material("公司登记（备案）申请书", notes="法定代表人签字并加盖公章"),
                      _material("股东会关于变更名称的决议"),
                      _material("公司章程修正案", notes="由法定代表人签署"),
                      _material("营业执照正、副本", count=2, notes="换发新照时交回")),
           legal_basis="《中华人民共和国市场主体登记管理条例》第二十四条；《企业名称登记管理规定》",
           fee="不收费", time_limit="3 个工作日", online=True),
    Matter(id="market-food-license", department="market", name="食品经营许可证（新办）",
           materials=(_material("食品经营许可申请书"),
                      _material("营业执照", "copy"),
                      _material("法定代表人（负责人）身份证件", "copy"),
                      _material("主要设备设施布局及操作流程文件", notes="含经营场所平面图"),
                      _material("食品安全管理制度目录")),
           legal_basis="《中华人民共和国食品安全法》第三十五条；《食品经营许可和备案管理办法》",
           fee="不收费", time_limit="10 个工作日（法定 20 个工作日）", online=True),
    Matter(id="hrss-card-reissue", department="hrss", name="社保卡补领",
           materials=(_ID_CARD,
                      _material("近期免冠彩色证件照", "original", notes="白底，可现场采集")),
           legal_basis="《中华人民共和国社会保险法》第五十八条",
           fee="免收工本费", time_limit="即时制卡网点当场领取，其余 10 个工作日", online=True),
    Matter(id="hrss-unemployment", department="hrss", name="失业登记",
           materials=(_ID_CARD,
                      _material("解除或终止劳动关系证明", "copy"),
                      _material("就业创业证", notes="已办理的带上")),
           legal_basis="《中华人民共和国就业促进法》；《就业服务与就业管理规定》第六章",
           fee="不收费", time_limit="即时办结", online=True),
    Matter(id="hrss-pension-transfer", department="hrss", name="养老保险关系转移接续",
           materials=(_ID_CARD,
                      _material("基本养老保险关系转移接续申请表"),
                      _material("参保缴费凭证", notes="由转出地社保经办机构出具")),
           legal_basis="《城镇企业职工基本养老保险关系转移接续暂行办法》（国办发〔2009〕66号）",
           fee="不收费", time_limit="转出、转入两地合计 45 个工作日", online=True),
    Matter(id="fund-withdraw-purchase", department="fund", name="住房公积金提取（购房）",
           materials=(_ID_CARD,
                      _material("购房合同", "copy", notes="现场核验原件"),
                      _material("购房发票或契税完税凭证", "copy"),
                      _material("本人银行卡", notes="本人名下一类借记卡")),
           legal_basis="《住房公积金管理条例》第二十四条",
           fee="不收费", time_limit="即时办结，资金 1–3 个工作日到账", online=True),
    Matter(id="fund-loan", department="fund", name="住房公积金贷款申请",
           materials=(_material("借款人及配偶身份证件", count=2),
                      _material("婚姻状况证明", notes="结婚证、离婚证或单身声明"),
                      _material("购房合同"),
                      _material("首付款凭证", "copy"),
                      _material("收入证明", notes="加盖单位公章")),
           legal_basis="《住房公积金管理条例》第二十六条",
           fee="不收费（抵押登记费按规定另行缴纳）",
           time_limit="受理之日起 15 日内作出是否准予贷款的决定", online=False),
    Matter(id="estate-transfer", department="estate", name="二手房转移登记",
           materials=(_material("不动产登记申请书", notes="买卖双方签字"),
                      _material("买卖双方身份证件", count=2),
                      _material("不动产权证书"),
                      _material("存量房买卖合同"),
                      _material("完税凭证", "copy"),
                      _material("婚姻状况证明", "either")),
           legal_basis="《不动产登记暂行条例》第十四条、第十六条；"
                       "《不动产登记暂行条例实施细则》第三十八条",
           fee="住宅 80 元/件；每增加一本证书加收工本费 10 元",
           time_limit="5 个工作日（法定 30 个工作日）", online=False),
    Matter(id="estate-mortgage", department="estate", name="抵押权登记",
           materials=(_material("不动产登记申请书"),
                      _material("抵押人和抵押权人身份证明", count=2),
                      _material("不动产权证书"),
                      _material("主债权合同及抵押合同")),
           legal_basis="《中华人民共和国民法典》第四百零二条；《不动产登记暂行条例实施细则》第六十五条",
           fee="住宅 80 元/件，非住宅 550 元/件", time_limit="5 个工作日", online=True),
    Matter(id="estate-records", department="estate", name="不动产登记资料查询",
           materials=(_ID_CARD,
                      _material("不动产登记资料查询申请书"),
                      _material("利害关系证明材料", "copy", notes="利害关系人查询时提供")),
           legal_basis="《不动产登记资料查询暂行办法》",
           fee="不收费", time_limit="当场办结", online=True),
)

DEMO_ACCOUNTS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    *((f"{d.id}01", f"{d.name_zh}坐席01", "staff", (d.id,)) for d in DEMO_DEPARTMENTS),
    *((f"{d.id.removeprefix('interp-')}01", f"{d.name_zh}01", "staff", (d.id,))
      for d in DEMO_INTERPRETER_POOLS),
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


async def seed_matters(matters: Matters, catalogue: tuple[Matter, ...]) -> int:
    """Write the demo catalogue into an empty one. Once it has any matter it is the admin's:
    a demo matter they deleted does not come back at the next start."""
    if await matters.all():
        return 0
    for matter in catalogue:
        await matters.put(matter)
    return len(catalogue)


async def seed_demo(store: Store, accounts: Accounts) -> int:
    """Write the demo departments, the demo matters into an empty catalogue, and the demo
    accounts that do not exist yet (a department or account someone has changed keeps its
    changes). Returns how many accounts were added."""
    await put_missing_departments(store, DEMO_DEPARTMENTS + DEMO_INTERPRETER_POOLS)
    await seed_matters(Matters(store.redis), DEMO_MATTERS)
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

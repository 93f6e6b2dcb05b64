"""The web pages without a browser: templates render, every control the acceptance tests use has
its data-testid, every UI string exists in both languages, and front-end code comes from npm."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jinja2
import pytest

from server.http.pages import page_context
from signaling.privacy import CONSENT_NOTICE_VERSION

WEB = Path(__file__).resolve().parents[2] / "web"
JS = WEB / "static" / "js"
TEMPLATES = WEB / "templates"

DEPARTMENTS = [
    {"id": "tax", "name_zh": "税务", "name_en": "Taxation"},
    {"id": "market", "name_zh": "市场监管", "name_en": "Market Regulation"},
]
STAFF_USER = {"username": "tax01", "display_name": "税务坐席01", "role": "staff",
              "departments": ["tax"]}

# Controls each page must carry, in its template or created by its module.
REQUIRED_TESTIDS = {
    "kiosk": ["consent-accept", "consent-decline", "start-consult", "queue-position",
              "cancel-consult", "local-video", "remote-video", "hangup", "rating-5", "rating-4",
              "rating-3", "rating-2", "rating-1", "rating-submit", "lang-toggle",
              "error-message", "dept-search", "dept-search-empty", "guide-mode", "guide-exit",
              "login-username", "login-password", "login-submit", "login-back",
              "priority-lane", "queue-eta", "priority-badge", "callback-reason",
              "callback-name", "callback-phone", "callback-note", "callback-submit",
              "callback-error", "callback-done", "callback-done-back", "callback-privacy",
              "callback-consent", "callback-consent-version", "consent-version", "chat-log",
              "chat-input",
              "chat-send", "toggle-mic", "toggle-camera", "remote-muted", "remote-camera-off",
              "remote-screen", "kiosk-device", "device-revoked"],
    "staff": ["login-username", "login-password", "login-submit", "login-error",
              "presence-available", "presence-away", "incoming-call", "accept-call",
              "decline-call", "remote-video", "local-video", "hangup", "logout", "lang-toggle",
              "call-note", "away-reason", "presence-reason", "wrap-up", "wrap-up-countdown",
              "wrap-up-done", "callback-list", "callback-count", "chat-log", "chat-input",
              "chat-send", "toggle-mic", "toggle-camera", "remote-muted", "remote-camera-off",
              "share-screen", "remote-screen"],
    "supervisor": ["login-username", "login-password", "login-submit", "login-error", "logout",
                   "lang-toggle", "forbidden-message", "recording-player", "player-toggle",
                   "player-events", "wallboard", "wallboard-queues", "wallboard-staff",
                   "wallboard-error", "filter-from", "filter-to", "filter-department",
                   "filter-staff", "filter-rating", "filter-min-duration",
                   "filter-max-duration", "filter-incomplete", "filter-apply", "filter-reset",
                   "filter-error"],
    "admin": ["login-username", "login-password", "login-submit", "login-error", "logout",
              "lang-toggle", "forbidden-message", "admin-department-list", "department-json",
              "department-save", "department-error", "department-saved", "log-from", "log-to",
              "log-download", "account-new", "account-username", "account-display-name",
              "account-role", "account-departments", "account-create",
              "account-temp-password", "account-list", "account-error", "device-new",
              "device-name", "device-hall", "device-location", "device-create", "device-token",
              "device-qr", "device-list", "device-error", "devices-error"],
    "audit": ["login-username", "login-password", "login-submit", "login-error", "logout",
              "lang-toggle", "audit-forbidden", "audit-verify", "audit-verify-result",
              "audit-export", "audit-filters", "audit-filter-who", "audit-filter-action",
              "audit-filter-from", "audit-filter-to", "audit-filter-apply", "audit-body",
              "audit-empty"],
}
# The sign-in steps every page with a login has (web/templates/_login.html).
SIGN_IN_TESTIDS = ["login-totp", "login-error", "password-current", "password-new",
                   "password-confirm", "password-change-submit", "totp-enroll-qr",
                   "totp-enroll-secret", "totp-enroll-code", "totp-enroll-submit",
                   "recovery-codes", "idle-warning", "idle-continue"]
for _page in ("kiosk", "staff", "supervisor", "admin", "audit"):
    REQUIRED_TESTIDS[_page] = REQUIRED_TESTIDS[_page] + SIGN_IN_TESTIDS
# The kiosk's idle warning is the privacy wipe's (wipe.js): it has no "continue" button.
REQUIRED_TESTIDS["kiosk"].remove("idle-continue")
REQUIRED_TESTIDS["kiosk"] += ["attract", "idle-warning-text", "device-check",
                              "device-check-preview", "device-check-problem", "device-check-status",
                              "device-check-tone", "device-check-continue", "device-check-voice"]
for _page in ("kiosk", "staff"):
    REQUIRED_TESTIDS[_page] = REQUIRED_TESTIDS[_page] + ["call-quality"]
# Created by the page modules from data rather than written in the templates.
MODULE_TESTIDS = {
    "kiosk": ["dept-${dept.id}", "dept-closed-${dept.id}"],
    "staff": ["queue-longest-${id}", "callback-item", "callback-done"],
    "supervisor": ["recording-row", "recording-play", "replay-video", "replay-audio",
                   "wallboard-queue-row", "wallboard-staff-row"],
    "admin": ["admin-dept-${dept.id}", "account-row", "account-disable",
              "account-reset-password", "account-unlock", "account-reset-2fa", "account-edit",
              "device-row", "device-revoke"],
    "audit": ["audit-row"],
}
PAGES = ["kiosk", "staff", "supervisor", "admin", "audit"]


def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)


def _render(page: str, **context: Any) -> str:
    """The page as the server renders it, from the handler's values (server/http/pages.py)."""
    return _env().get_template(f"{page}.html").render(**page_context(**context))


def _page_module(page: str) -> str:
    """A page module's source with that of our modules it imports (replay.js, room.js, …)."""
    seen: list[str] = []
    todo = [f"{page}.js"]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.append(name)
        todo += re.findall(r"^import [^;]*? from '\./([a-z0-9_]+\.js)';",
                           (JS / name).read_text(encoding="utf-8"), re.MULTILINE)
    return "\n".join((JS / name).read_text(encoding="utf-8") for name in seen)


def _string_tables() -> dict[str, dict[str, str]]:
    """The zh and en tables of i18n.js, one `key: 'text',` per line."""
    source = (JS / "i18n.js").read_text(encoding="utf-8")
    block = source.split("const STRINGS = {", 1)[1].split("\n};", 1)[0]
    zh_part, en_part = block.split("\n  en: {", 1)
    entry = re.compile(r"^\s{4}([a-z0-9_]+): '((?:[^'\\]|\\.)*)',$", re.MULTILINE)
    return {"zh": dict(entry.findall(zh_part)), "en": dict(entry.findall(en_part))}


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_template_renders_with_server_context(page: str, lang: str) -> None:
    html = _render(page, lang=lang, departments=DEPARTMENTS, user=STAFF_USER)
    assert f'<html lang="{"en" if lang == "en" else "zh-CN"}">' in html
    assert f'src="/static/js/{page}.js"' in html
    assert 'href="/static/css/app.css"' in html
    boot = re.search(r'<script type="application/json" id="yz-boot">(.*?)</script>', html, re.S)
    assert boot is not None
    data = json.loads(boot.group(1))
    assert data["lang"] == lang
    assert data["departments"] == DEPARTMENTS
    assert data["user"]["username"] == "tax01"
    assert data["has_user"] is True


@pytest.mark.parametrize("page", PAGES)
def test_template_renders_without_context(page: str) -> None:
    """The pages fetch /api/me and /api/departments themselves when the server passes nothing."""
    html = _render(page, user_known=False)
    data = json.loads(re.search(r'id="yz-boot">(.*?)</script>', html, re.S).group(1))  # type: ignore[union-attr]
    assert data == {"lang": "zh", "departments": [], "user": None, "has_user": False,
                    "idle_timeout": 0, "callback_keep_days": 30, "retention_days": 180,
                    "consent_notice_version": CONSENT_NOTICE_VERSION, "device": None,
                    "kiosk_idle": {"seconds": 60, "warning": 10},
                    "timezone": "Asia/Shanghai"}


class _InlineCode(HTMLParser):
    """What the Content-Security-Policy (server/http/security.py) would refuse in a page: an
    inline script with code, an on*= handler, a style attribute or element."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._script: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        self.found += [f"<{tag} {name}=>" for name in named
                       if name.startswith("on") or name == "style"]
        if tag == "style":
            self.found.append("<style>")
        self._script = named if tag == "script" else None

    def handle_data(self, data: str) -> None:
        script = self._script
        if script is not None and data.strip() and script.get("type") != "application/json":
            self.found.append(f"inline <script>: {data.strip()[:60]}")


@pytest.mark.parametrize("page", PAGES)
def test_pages_have_no_inline_script_or_style(page: str) -> None:
    parser = _InlineCode()
    parser.feed(_render(page, lang="zh", departments=DEPARTMENTS, user=STAFF_USER))
    assert parser.found == []
    scripts = re.findall(r"<script\b[^>]*>", _render(page))
    assert len(scripts) == 2  # the boot data, the page module
    assert all('type="application/json"' in tag or "src=" in tag for tag in scripts)


@pytest.mark.parametrize("page", sorted(REQUIRED_TESTIDS))
def test_page_has_every_testid(page: str) -> None:
    html = _render(page, lang="zh", departments=DEPARTMENTS, user=None)
    module = _page_module(page)
    for testid in REQUIRED_TESTIDS[page]:
        assert f'data-testid="{testid}"' in html, f"{page}: no data-testid={testid}"
    for testid in MODULE_TESTIDS.get(page, []):
        created = (f"dataset.testid = `{testid}`", f"dataset.testid = '{testid}'",
                   # common.js el(tag, {testid}) and staff.js actionButton(testid, …)
                   f"testid: '{testid}'", f"actionButton('{testid}'")
        assert any(c in module for c in created), f"{page}.js does not create {testid}"


def test_only_the_audit_page_shows_the_audit() -> None:
    """三权分立: the supervisor page has no audit card, and its module never asks for the log."""
    html = _render("supervisor", lang="zh", departments=DEPARTMENTS, user=None)
    assert "audit-" not in html and 'data-testid="audit"' not in html
    assert "/api/audit" not in _page_module("supervisor")
    assert "/api/audit" in _page_module("audit") and "/api/audit/verify" in _page_module("audit")


def test_string_tables_have_the_same_keys() -> None:
    tables = _string_tables()
    assert len(tables["zh"]) > 50
    assert set(tables["zh"]) == set(tables["en"])
    for lang, table in tables.items():
        empty = [key for key, text in table.items() if not text.strip()]
        assert not empty, f"{lang}: empty strings {empty}"


def test_every_used_string_key_exists() -> None:
    tables = _string_tables()
    used: set[str] = set()
    for template in TEMPLATES.glob("*.html"):
        text = template.read_text(encoding="utf-8")
        used |= set(re.findall(r'data-i18n(?:-placeholder|-title)?="([a-z0-9_]+)"', text))
        used |= set(re.findall(r"login_heading_key = '([a-z0-9_]+)'", text))
    for module in JS.glob("*.js"):
        used |= set(re.findall(r"\bt\('([a-z0-9_]+)'", module.read_text(encoding="utf-8")))
    # Keys built at run time from data: rating_<n>, presence_<state>, role_<role>, kind_<kind>.
    for n in range(1, 6):
        used.add(f"rating_{n}")
    used |= {f"presence_{s}" for s in ("offline", "available", "ringing", "in_call", "wrap_up",
                                       "away")}
    used |= {"role_applicant", "role_staff", "kind_audio", "kind_video"}
    used |= {f"account_role_{r}" for r in ("admin", "auditor", "supervisor", "staff", "guide")}
    used |= {f"away_reason_{r}" for r in ("rest", "meeting", "other", "missed")}
    used |= {f"day_{d}" for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    missing = sorted(k for k in used if k not in tables["zh"] or k not in tables["en"])
    assert not missing, f"string keys missing from i18n.js: {missing}"


def test_recording_notice_says_what_the_mission_requires() -> None:
    zh = _string_tables()["zh"]
    # The days are the configured retention_days (180 by default).
    assert zh["notice_text"].replace("{days}", "180") == \
        "本次视频咨询将全程录音录像，录像仅供督查人员依法调阅，保存180天。"
    assert [zh[f"rating_{n}"] for n in (5, 4, 3, 2, 1)] == [
        "非常满意", "满意", "基本满意", "不满意", "非常不满意"]
    assert zh["forbidden_recordings"] == "只有督查人员可以查看录像"


def test_front_end_dependencies_come_from_npm_with_a_lock_file() -> None:
    package = json.loads((WEB / "package.json").read_text(encoding="utf-8"))
    assert package["name"] == "yunzhen-web"
    assert package["private"] is True
    assert re.match(r"^\^?4\.", package["dependencies"]["socket.io-client"])
    lock = json.loads((WEB / "package-lock.json").read_text(encoding="utf-8"))
    assert lock["packages"]["node_modules/socket.io-client"]["version"].startswith("4.")
    # No third-party code pasted into the repository: only our own modules are in static/.
    ours = ["accounts.js", "admin.js", "audit.js", "common.js", "devices.js", "i18n.js", "kiosk.js",
            "matters.js", "replay.js", "room.js", "staff.js", "states.js", "supervisor.js"]
    ours += ["checklist.js"]  # the 一次性告知单 (issue 12)
    ours += ["cases.js", "ratings.js"]  # 好差评 per department and 差评 cases (issue 12)
    ours += ["stats.js"]  # statistics (issue 12), charts by Chart.js from npm
    ours += ["care.js", "speech.js"]  # 关怀模式 and spoken prompts at the kiosk (issue 13)
    ours += ["interpreter.js"]  # the kiosk's interpreter request (issue 13)
    # The shared screen (issue 13): privacy wipe, device check, network quality.
    ours += ["wipe.js", "devicecheck.js", "quality.js"]
    ours += ["booking.js", "bookings_admin.js", "desk_bookings.js"]  # appointments (issue 13)
    assert re.match(r"^\^?4\.", package["dependencies"]["chart.js"])
    assert lock["packages"]["node_modules/chart.js"]["version"].startswith("4.")
    ours += ["a11y.js"]  # the kiosk's focus and live region on each screen (issue 13)
    ours += ["hall_time.js"]  # dates and times in the hall's zone, whatever the browser's
    # axe-core runs in the browser tests only (tests/support/axe.py): a dev dependency, not served.
    assert "axe-core" in package["devDependencies"] and "axe-core" not in package["dependencies"]
    assert lock["packages"]["node_modules/axe-core"]["dev"] is True
    ours.sort()
    assert sorted(p.name for p in JS.iterdir()) == ours
    for module in JS.glob("*.js"):
        imports = re.findall(r"^import [^;]*? from '([^']+)';",
                             module.read_text(encoding="utf-8"), re.MULTILINE)
        for target in imports:
            assert target in {f"./{name}" for name in ours} | {
                "/static/vendor/socket.io/socket.io.esm.min.js"}, f"{module.name} imports {target}"


def test_one_peer_connection_per_page() -> None:
    """Every page reaches the SFU through room.js's RoomSession, which owns the only
    RTCPeerConnection."""
    for module in JS.glob("*.js"):
        count = module.read_text(encoding="utf-8").count("new RTCPeerConnection(")
        assert count == (1 if module.name == "room.js" else 0), module.name


def test_department_fields_for_search_and_hours_reach_the_page() -> None:
    """matters, open_now, next_open and hours pass through to the kiosk's boot data when the
    server gives them (and only then)."""
    depts = [{**DEPARTMENTS[0], "matters": ["发票申领", "个税汇算"], "open_now": False,
              "next_open": 1790000000.0, "hours": {"mon-fri": ["09:00-12:00", "13:30-17:00"]}},
             DEPARTMENTS[1]]
    html = _render("kiosk", lang="zh", departments=depts, user=None)
    data = json.loads(re.search(r'id="yz-boot">(.*?)</script>', html, re.S).group(1))  # type: ignore[union-attr]
    assert data["departments"] == depts


def test_new_screens_say_what_the_brief_asks() -> None:
    zh = _string_tables()["zh"]
    assert zh["dept_closed"] == "暂停服务"
    assert zh["closed_text"] == "当前不在服务时间（服务时间：{hours}）"
    assert zh["queue_full_text"] == "当前排队人数已满"
    assert zh["callback_done_text"] == "工作人员上班后会致电 {phone} 给您回电。"
    assert zh["queue_eta"] == "预计等待约 {n} 分钟"
    assert zh["queue_no_staff"] == "暂无工作人员在岗"
    assert zh["priority_lane"] == "优先通道：老年人、残疾人、孕妇"
    assert zh["priority_badge"] == "优先"
    assert zh["guide_mode"] == "导服"
    assert zh["away_reason_missed"] == "连续未接，已自动暂停接听"
    reasons = [zh[f"away_reason_{r}"] for r in ("rest", "meeting", "other")]
    assert reasons == ["休息", "会议", "其他"]
    assert zh["queue_longest"] == "最长等待 {t}"


def test_staff_away_reasons_are_the_three_choices() -> None:
    html = _render("staff", lang="zh", departments=DEPARTMENTS, user=None)
    select = re.search(r'<select data-testid="away-reason">(.*?)</select>', html, re.S)
    assert select is not None
    assert re.findall(r'<option value="([a-z]+)"', select.group(1)) == ["rest", "meeting", "other"]


def test_kiosk_sends_the_contract_payloads() -> None:
    """The kiosk names the events and fields of docs/protocol.md."""
    kiosk = (JS / "kiosk.js").read_text(encoding="utf-8")
    for needle in ("'ticket:create'", "payload.priority = true", "'callback:request'",
                   "{ department: state.callbackDept, name, phone, consent: true }",
                   "err.code === 'closed'", "err.code === 'queue_full'",
                   "case TicketStatus.ABANDONED", "eta_seconds", "'/api/logout'"):
        assert needle in kiosk, needle
    assert "ABANDONED: 'abandoned'" in (JS / "states.js").read_text(encoding="utf-8")
    staff = (JS / "staff.js").read_text(encoding="utf-8")
    for needle in ("'callback:list'", "'callback:done'", "'callback:new'", "longest_since",
                   "wrap_up_until", "payload.reason"):
        assert needle in staff, needle
    assert "'/api/wallboard'" in (JS / "supervisor.js").read_text(encoding="utf-8")
    admin = (JS / "admin.js").read_text(encoding="utf-8")
    assert "/api/admin/departments/" in admin and "/api/admin/queue-log.csv" in admin


def test_only_the_staff_desk_shares_its_screen() -> None:
    """_call.html is shared: the screen share button is the staff desk's alone."""
    kiosk = _render("kiosk", lang="zh", departments=DEPARTMENTS, user=None)
    staff = _render("staff", lang="zh", departments=DEPARTMENTS, user=None)
    assert 'data-testid="share-screen"' not in kiosk
    assert 'data-testid="share-screen"' in staff


def js_enum(name: str) -> dict[str, str]:
    """The members of ``export const <name> = Object.freeze({...})`` in states.js."""
    source = (JS / "states.js").read_text(encoding="utf-8")
    block = re.search(rf"export const {name} = Object\.freeze\(\{{(.*?)\}}\);", source, re.S)
    assert block is not None, name
    return dict(re.findall(r"(\w+): '([a-z_]+)'", block.group(1)))


@pytest.mark.parametrize("name", ["Role", "Presence", "TicketStatus"])
def test_the_pages_state_names_are_the_servers(name: str) -> None:
    from rooms.roles import Role
    from signaling.states import Presence, TicketStatus

    enum = {"Role": Role, "Presence": Presence, "TicketStatus": TicketStatus}[name]
    assert js_enum(name) == {member.name: member.value for member in enum}


def test_the_account_form_offers_the_five_roles_by_their_chinese_names() -> None:
    html = _render("admin", lang="zh", departments=DEPARTMENTS, user=None)
    select = re.search(r'<select data-testid="account-role"[^>]*>(.*?)</select>', html, re.S)
    assert select is not None
    roles = re.findall(r'<option value="([a-z]+)" data-i18n="([a-z_]+)"', select.group(1))
    zh = _string_tables()["zh"]
    assert [(value, zh[key]) for value, key in roles] == [
        ("admin", "系统管理员"), ("auditor", "安全审计员"), ("supervisor", "督查"),
        ("staff", "坐席"), ("guide", "导服")]

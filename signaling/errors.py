"""The one error catalogue: every refusal a client can get, over a socket or HTTP, with its code,
Chinese message, English message and HTTP status; `SignalError` carries one of them."""

from __future__ import annotations

from typing import Any, NamedTuple

from rooms.errors import RoomError


class ErrorText(NamedTuple):
    status: int  # the HTTP status; sockets answer in the acknowledgement instead
    zh: str
    en: str


# Keyed by name: the code a client sees, or `code.variant` where one code has several texts
# (the client branches on the code, and shows the message). A `{field}` in a text is filled in
# from the error's parameters. docs/protocol.md lists this table (a test keeps the two equal).
CATALOGUE: dict[str, ErrorText] = {
    "invalid_payload": ErrorText(400, "请求格式不正确。", "The request is malformed."),
    "invalid_payload.request": ErrorText(400, "请求无法处理。", "{reason}"),
    "invalid_payload.too_large": ErrorText(400, "请求内容过大。",
                                           "The request body is too large."),
    "invalid_payload.not_json": ErrorText(400, "请求不是有效的 JSON。",
                                          "The request body is not valid JSON."),
    "invalid_payload.not_object": ErrorText(400, "请求格式不正确。",
                                            "The request must be a JSON object."),
    "invalid_payload.too_deep": ErrorText(400, "请求内容嵌套层数过多（最多 {max} 层）。",
                                          "The request nests deeper than {max} levels."),
    "invalid_payload.login": ErrorText(400, "请输入用户名和密码。",
                                       "Enter a username and a password."),
    "invalid_payload.department_id_differs": ErrorText(
        400, "部门编号与地址不一致。", "The id in the body differs from the URL."),
    "invalid_payload.department": ErrorText(400, "部门设置有误：{reason}",
                                            "Invalid department: {reason}"),
    "invalid_payload.log_dates": ErrorText(400, "请用 YYYY-MM-DD 格式填写起止日期。",
                                           "Give from and to as YYYY-MM-DD."),
    "invalid_payload.log_range": ErrorText(400, "日期范围不正确（最多一年）。",
                                           "The date range is wrong (a year at most)."),
    "invalid_payload.time": ErrorText(400, "{name} 应为 YYYY-MM-DD 日期或时间戳。",
                                      "{name} must be a YYYY-MM-DD date or epoch seconds."),
    "invalid_payload.time_order": ErrorText(400, "结束时间早于开始时间。", "to is before from."),
    "invalid_payload.seconds": ErrorText(400, "{name} 应为不小于 0 的秒数。",
                                         "{name} must be a number of seconds ≥ 0."),
    "invalid_payload.filters": ErrorText(400, "不认识的筛选条件：{filters}",
                                         "Unknown filter(s): {filters}"),
    "invalid_payload.department_id": ErrorText(400, "部门编号不正确。",
                                               "department is not a department id."),
    "invalid_payload.staff": ErrorText(400, "坐席名称过长。", "staff is too long."),
    "invalid_payload.rating": ErrorText(400, "评价应为 1–5 或 none。",
                                        "rating must be 1 to 5, or none."),
    "invalid_payload.duration_order": ErrorText(400, "最长时长小于最短时长。",
                                                "max_duration is below min_duration."),
    "invalid_payload.incomplete": ErrorText(400, "incomplete 应为 1 或 0。",
                                            "incomplete must be 1 or 0."),
    "invalid_payload.hold": ErrorText(400, "hold 应为 true 或 false。",
                                      "hold must be true or false."),
    "invalid_payload.invite_department": ErrorText(400, "请选择要邀请的部门。",
                                                   "department must be a department id."),
    "invalid_payload.note": ErrorText(400, "备注最多 {max} 个字。",
                                      "note must be text of at most {max} characters."),
    "invalid_payload.limit": ErrorText(400, "limit 应为 1 到 {max} 之间的整数。",
                                       "limit must be a whole number from 1 to {max}."),
    "invalid_payload.text_filter": ErrorText(400, "{name} 最多 {max} 个字符。",
                                             "{name} must be at most {max} characters."),
    "unauthenticated": ErrorText(401, "请先登录。", "Please log in first."),
    "bad_credentials": ErrorText(401, "用户名或密码错误。", "Wrong username or password."),
    "forbidden": ErrorText(403, "您没有权限进行此操作。", "You are not allowed to do this."),
    "forbidden.reviewers": ErrorText(403, "只有督查人员可以查看录像。",
                                     "You are not allowed to do this."),
    "forbidden.observe_scope": ErrorText(403, "您只能旁听所管辖部门的会话。",
                                         "You may only listen in on rooms of your departments."),
    "forbidden.invite_outsider": ErrorText(
        403, "只有正在会话中的工作人员可以邀请其他部门。",
        "Only staff in this room may invite another department."),
    "forbidden.join_other_guide": ErrorText(403, "您只能加入自己引导的会话。",
                                            "You may only join consultations you started."),
    "forbidden.join_uninvited": ErrorText(403, "您的部门没有被邀请加入这个会话。",
                                          "Your department is not invited to this room."),
    "forbidden.room_token": ErrorText(403, "会话凭证无效。", "The room token is not valid."),
    "forbidden.leave_uninvited": ErrorText(403, "您不是受邀加入这个会话的。",
                                           "You did not join this room by invitation."),
    "not_found": ErrorText(404, "没有找到相关记录。", "Not found."),
    "not_found.request": ErrorText(404, "请求无法处理。", "{reason}"),
    "not_found.department": ErrorText(404, "没有这个部门。", "No such department."),
    "not_found.recording": ErrorText(404, "没有找到这个录像。", "No such recording."),
    "not_found.alert": ErrorText(404, "没有这条告警。", "No such alert."),
    "not_found.room": ErrorText(404, "没有这个进行中的会话。", "No such live room."),
    "not_ready": ErrorText(404, "合成视频尚未导出完成。", "The composite video is not ready."),
    "unknown_department": ErrorText(400, "没有这个部门，请重新选择。",
                                    "There is no such department."),
    "unknown_department.invite": ErrorText(400, "没有这个部门。", "No such department."),
    "invalid_payload.booking_rules": ErrorText(400, "预约设置有误：{reason}",
                                               "Invalid booking rules: {reason}"),
    "invalid_payload.booking": ErrorText(400, "请填写姓名和手机号码。",
                                         "Enter a name and a phone number."),
    "booking_slot": ErrorText(409, "这个时段已不可预约，请另选时段。",
                              "This slot cannot be booked (any more); choose another."),
    "booking_full": ErrorText(409, "这个时段已约满，请另选时段。",
                              "This slot is fully booked; choose another."),
    "booking_unknown": ErrorText(404, "没有找到这个预约码，请核对后重新输入。",
                                 "No booking has this code; check it and try again."),
    "booking_used": ErrorText(409, "这个预约码已使用或已失效。",
                              "This booking code has been used or has lapsed."),
    "booking_early": ErrorText(409, "您预约的是 {time}，请于 {opens} 后再取号。",
                               "Your booking is for {time}; take your ticket from {opens}."),
    "booking_late": ErrorText(409, "您预约的 {time} 时段已过，请重新预约或现场取号。",
                              "Your {time} slot has passed; book again or take a walk-in "
                              "ticket."),
    "consent_required": ErrorText(400, "视频咨询需要同意录音录像。",
                                  "Video consultation requires consent to recording."),
    "consent_required.callback": ErrorText(
        400, "请先勾选同意：您的电话号码仅用于本次回电。",
        "Please agree first: your phone number is used only to call you back."),
    "consent_required.booking": ErrorText(
        400, "请先勾选同意：您的姓名和电话仅用于本次预约。",
        "Please agree first: your name and phone number are used only for this booking."),
    "not_offered": ErrorText(409, "这个呼叫不是分配给您的，或已被取消。",
                             "This call is not offered to you, or it was withdrawn."),
    "bad_state": ErrorText(409, "当前状态下不能进行此操作。",
                           "This cannot be done in the current state."),
    "room_full": ErrorText(409, "会话人数已满（最多 8 人发言、4 人旁听），暂时无法加入。",
                           "The room is full (at most 8 speaking and 4 listening); you cannot "
                           "join now."),
    "unsupported_codec": ErrorText(400, "您的浏览器或设备不支持本服务使用的视频编码，"
                                        "请换用其他浏览器，或到大厅窗口办理。",
                                   "Your browser or device does not support this service's "
                                   "video codec; please use another browser, or ask at a "
                                   "service window."),
    "closed": ErrorText(409, "当前不在服务时间，您可以留下电话，工作人员上班后给您回电。",
                        "Outside service hours; leave a phone number and staff will call you "
                        "back."),
    "queue_full": ErrorText(503, "当前排队人数已满，您可以留下电话，工作人员会给您回电。",
                            "The queue is full; leave a phone number and staff will call you "
                            "back."),
    "other_node": ErrorText(409, "该会话由另一个服务进程承载，正在转到该进程。",
                            "This room is hosted by another server process; ask at its base."),
    "in_room.department": ErrorText(409, "该部门已在会话中。", "That department is in the room."),
    "in_room.self": ErrorText(409, "您已在这个会话中。", "You are in this room already."),
    "pending": ErrorText(409, "已邀请该部门，正在等待加入。",
                         "That department is invited already."),
    "too_many_invites": ErrorText(409, "待加入的邀请过多，请稍后再试。",
                                  "Too many pending invitations."),
    "no_interpreter": ErrorText(409, "该语种暂无翻译在岗，通话照常进行。",
                                "No interpreter with that skill is available; the call goes on."),
    "taken": ErrorText(409, "同事已加入该会商。",
                       "A colleague has joined this consultation already."),
    "busy.in_call": ErrorText(409, "您正在通话中，不能加入会商。",
                              "You are in a call and cannot join."),
    "busy.exports": ErrorText(503, "导出任务太多，请稍后再试。",
                              "Too many exports are running; try again later."),
    "limit.device_ticket": ErrorText(409, "本机已有一个正在办理的号，请先完成或取消。",
                                     "This kiosk already has a ticket in progress; finish or "
                                     "cancel it first."),
    "device_revoked": ErrorText(403, "本设备已被停用，请联系管理员。",
                                "This kiosk has been revoked; ask an administrator."),
    "invalid_payload.device": ErrorText(400, "设备信息有误：{reason}",
                                        "Invalid device: {reason}"),
    "not_found.device": ErrorText(404, "没有这台设备。", "No such device."),
    "bad_state.device_revoked": ErrorText(409, "该设备已经停用。",
                                          "The device is revoked already."),
    "unavailable": ErrorText(503, "服务暂时不可用，正在恢复，请稍候再试。",
                             "The service is briefly unavailable and recovering; please try "
                             "again in a moment."),
    "invalid_payload.content_type": ErrorText(415, "请求须为 JSON（application/json）。",
                     "The request body must be application/json."),
    "invalid_payload.account": ErrorText(400, "账号信息有误：{reason}",
                     "Invalid account: {reason}"),
    "weak_password.length": ErrorText(400, "密码至少 {min} 位。",
                     "The password must have at least {min} characters."),
    "weak_password.classes": ErrorText(400,
                                       "密码须包含大写字母、小写字母、数字、符号中的至少三类。",
                     "The password needs three of: lower case, upper case, digits, symbols."),
    "weak_password.username": ErrorText(400, "密码不能与用户名相同或包含用户名。",
                     "The password must not be or contain the username."),
    "weak_password.reused": ErrorText(400, "不能使用最近 {count} 次用过的密码。",
                     "The password must differ from the last {count}."),
    "bad_credentials.current_password": ErrorText(400, "当前密码不正确。",
                     "The current password is wrong."),
    "bad_totp": ErrorText(401, "动态验证码不正确，请查看验证器应用中的最新验证码。",
                     "The code is wrong; enter the current code from the authenticator app."),
    "totp_required": ErrorText(401, "请输入验证器应用中的 6 位动态验证码。",
                     "Enter the 6-digit code from the authenticator app."),
    "session_expired": ErrorText(401, "长时间未操作，登录已失效，请重新登录。",
                     "The session has expired; please log in again."),
    "password_change_required": ErrorText(403, "请先修改密码。",
                     "Change your password first."),
    "totp_enrollment_required": ErrorText(403, "请先绑定动态验证码（双因素认证）。",
                     "Set up the second factor first."),
    "forbidden.origin": ErrorText(403, "请求来源不被允许。",
                     "Requests from this origin are not allowed."),
    "forbidden.audit": ErrorText(403, "只有安全审计员可以查看审计日志。",
                     "Only the security auditor may read the audit log."),
    "forbidden.self": ErrorText(403, "不能停用自己的账号或更改自己的角色。",
                     "You cannot disable your own account or change your own role."),
    "not_found.account": ErrorText(404, "没有这个账号。",
                     "No such account."),
    "exists.account": ErrorText(409, "该用户名已被使用。",
                     "That username is taken."),
    "locked": ErrorText(429, "账号已被锁定，请 {minutes} 分钟后再试，或联系管理员解锁。",
                     "The account is locked; try again in {minutes} min, or ask an "
                     "administrator to unlock it."),
    "throttled": ErrorText(429, "登录尝试过于频繁，请 {minutes} 分钟后再试。",
                     "Too many sign-in attempts; try again in {minutes} min."),
    "invalid_payload.reserved_event": ErrorText(
        400, "不能发送这个事件名（保留给连接本身）。",
        "This event name is reserved for the connection itself."),
    "limit.tickets_per_socket": ErrorText(
        429, "您已经取了一个号，请办理完或取消后再取新号。",
        "You already hold a ticket; finish or cancel it before taking another."),
    "limit.tickets_per_address": ErrorText(
        429, "您所在的网络已有 {max} 个号在排队，请等其中一个办理完后再取号。",
        "Your network already holds {max} open tickets; take another when one is done."),
    "limit.ticket_creations": ErrorText(
        429, "取号过于频繁，请 {seconds} 秒后再试。",
        "Too many tickets taken; try again in {seconds} s."),
    "limit.callbacks": ErrorText(
        429, "回电申请过于频繁，请 {seconds} 秒后再试。",
        "Too many call-back requests; try again in {seconds} s."),
    "limit.callbacks_per_phone": ErrorText(
        429, "这个电话号码今天已申请 {max} 次回电，工作人员会尽快给您回电，请勿重复申请。",
        "This phone number has asked for {max} call-backs today; staff will call back soon."),
    "limit.bookings": ErrorText(429, "预约过于频繁，请 {seconds} 秒后再试。",
                                "Too many bookings; try again in {seconds} s."),
    "limit.bookings_per_phone": ErrorText(
        429, "这个电话号码今天已预约 {max} 次，请勿重复预约。",
        "This phone number has made {max} bookings today."),
    "limit.sockets_per_address": ErrorText(
        429, "您所在网络的连接过多，请稍后再试。",
        "Too many connections from your network; try again later."),
    "limit.rate": ErrorText(429, "操作过于频繁，请稍候再试。",
                            "Too many requests; slow down and try again."),
    "unavailable.redis_memory": ErrorText(
        503, "服务暂时无法保存新的数据，请稍后再试，或到大厅窗口办理。",
        "The service cannot store more data right now; try again later."),
    "forbidden.notice_read_only": ErrorText(403, "只有会话中的工作人员可以编辑告知单。",
                     "Only staff in this room may edit the notice."),
    "forbidden.notice_department": ErrorText(403, "您只能编辑本部门的告知事项。",
                     "You may only edit your own department's part of the notice."),
    "bad_state.notice_sealed": ErrorText(409, "告知单已封存，不能再修改。",
                     "The notice is sealed and cannot change."),
    "bad_state.notice_signed": ErrorText(409, "本部门的告知事项已签字确认，不能再修改。",
                     "Your department's part is signed and cannot change."),
    "bad_state.notice_duplicate": ErrorText(409, "告知单中已有这个事项。",
                     "That matter is in the notice already."),
    "bad_state.notice_empty": ErrorText(409, "请先添加至少一个事项再签字。",
                     "Add at least one matter before signing."),
    "bad_state.notice_pending": ErrorText(409, "告知单正在封存，请稍候。",
                     "The notice is being sealed; try again in a moment."),
    "not_found.notice": ErrorText(404, "没有找到这份告知单。",
                     "No such notice."),
    "not_found.notice_matter": ErrorText(404, "告知单中没有这个事项或材料。",
                     "No such matter or material in the notice."),
    "limit.notice": ErrorText(409, "告知单内容已达上限（最多 {max} 项）。",
                     "The notice is full (at most {max} entries)."),
    "limit.notice_size": ErrorText(409, "告知单内容过多（最多 {max} KB）。",
                     "The notice is too large (at most {max} KB)."),
    "invalid_payload.matter": ErrorText(400, "事项信息有误：{reason_zh}",
                                        "Invalid matter: {reason}"),
    "invalid_payload.matter_id_differs": ErrorText(400, "事项编号与地址不一致。",
                                                   "The matter id in the body differs from the "
                                                   "URL."),
    "not_found.matter": ErrorText(404, "没有这个事项。", "No such matter."),
    # 好差评 and 差评 cases (signaling/ratings.py, signaling/cases.py)
    "invalid_payload.ratings": ErrorText(400, "评价内容不正确：{reason}",
                                         "Invalid rating: {reason}"),
    "forbidden.rating_department": ErrorText(403, "该部门没有参与本次办理，不能评价。",
                                             "That department took no part in this "
                                             "consultation."),
    "invalid_payload.case_step": ErrorText(400, "整改步骤填写有误：{reason}",
                                           "Invalid case step: {reason}"),
    "not_found.case": ErrorText(404, "没有这个整改工单。", "No such case."),
    "forbidden.cases": ErrorText(403, "只有督查人员可以处理整改工单。",
                                 "Only supervisors handle rectification cases."),
    "forbidden.case_appeal_self": ErrorText(403, "申诉须由另一位督查人员裁定。",
                                            "Another supervisor must decide the appeal."),
    "bad_state.case_step": ErrorText(409, "工单当前为“{state}”，不能进行这一步。",
                                     "This step cannot be taken while the case is {state}."),
    "invalid_payload.stats_dates": ErrorText(400, "请用 YYYY-MM-DD 格式填写起止日期。",
                                             "Give from and to as YYYY-MM-DD dates."),
    "invalid_payload.stats_range": ErrorText(400, "日期范围不正确（最多 {max} 天）。",
                                             "The date range is wrong ({max} days at most)."),
    "invalid_payload.stats_group": ErrorText(400, "group 应为 day、week 或 month。",
                                             "group must be day, week or month."),
    "forbidden.stats_scope": ErrorText(403, "您只能查看所管辖部门的统计。",
                                       "You may only see the statistics of your departments."),
    "invalid_payload.speech": ErrorText(400, "不是可以朗读的提示语。",
                                        "Not a prompt the kiosk speaks."),
    "not_found.speech": ErrorText(404, "没有这段语音。", "No such prompt audio."),
    "unavailable.speech": ErrorText(503, "语音提示暂时不可用。",
                                    "Spoken prompts are briefly unavailable."),
    "internal": ErrorText(500, "服务器内部错误，请稍后再试。",
                          "Internal server error; please try again."),
}


def code_of(name: str) -> str:
    """The code clients see for a catalogue name (`not_found.room` → `not_found`)."""
    return name.partition(".")[0]


class SignalError(Exception):
    """A refusal from the catalogue, by name. `detail` adds specifics in English for developers;
    `params` fill the `{fields}` of its texts; `extra` adds fields to the answer."""

    def __init__(self, name: str, /, detail: str = "", extra: dict[str, Any] | None = None,
                 **params: object) -> None:
        if name not in CATALOGUE:
            name = "internal"
        super().__init__(f"{name}: {detail}" if detail else name)
        self.name = name
        self.code = code_of(name)
        self.detail = detail
        self.extra = extra or {}
        text = CATALOGUE[name]
        self.status = text.status
        # Only a text with parameters is formatted: the others stay exactly as written.
        self.message = text.zh.format(**params) if params else text.zh
        self.message_en = text.en.format(**params) if params else text.en

    def to_dict(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message,
                                 "message_en": self.message_en}
        if self.detail:
            error["detail"] = self.detail
        error.update(self.extra)
        return {"ok": False, "error": error}


def from_room_error(exc: RoomError) -> SignalError:
    """The answer to a refusal of the room layer: its code, with its text as the detail."""
    return SignalError(exc.code, str(exc))

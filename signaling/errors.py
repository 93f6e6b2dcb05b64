"""Structured errors sent to clients: a code, a Chinese message to show, and its English text."""

from __future__ import annotations

from typing import Any

MESSAGES: dict[str, tuple[str, str]] = {
    "invalid_payload": ("请求格式不正确。", "The request is malformed."),
    "unauthenticated": ("请先登录。", "Please log in first."),
    "forbidden": ("您没有权限进行此操作。", "You are not allowed to do this."),
    "not_found": ("没有找到相关记录。", "Not found."),
    "unknown_department": ("没有这个部门，请重新选择。", "There is no such department."),
    "consent_required": ("视频咨询需要同意录音录像。",
                         "Video consultation requires consent to recording."),
    "not_offered": ("这个呼叫不是分配给您的，或已被取消。",
                    "This call is not offered to you, or it was withdrawn."),
    "bad_state": ("当前状态下不能进行此操作。", "This cannot be done in the current state."),
    "bad_credentials": ("用户名或密码错误。", "Wrong username or password."),
    "room_full": ("会话人数已满（最多 8 人发言、4 人旁听），暂时无法加入。",
                  "The room is full (at most 8 speaking and 4 listening); you cannot join now."),
    "unsupported_codec": ("您的浏览器或设备不支持本服务使用的视频编码，"
                          "请换用其他浏览器，或到大厅窗口办理。",
                          "Your browser or device does not support this service's video codec; "
                          "please use another browser, or ask at a service window."),
    "closed": ("当前不在服务时间，您可以留下电话，工作人员上班后给您回电。",
               "Outside service hours; leave a phone number and staff will call you back."),
    "queue_full": ("当前排队人数已满，您可以留下电话，工作人员会给您回电。",
                   "The queue is full; leave a phone number and staff will call you back."),
    "internal": ("服务器内部错误，请稍后再试。", "Internal server error; please try again."),
}


class SignalError(Exception):
    """An error answered to a client; `detail` adds specifics in English for developers."""

    def __init__(self, code: str, detail: str = "", extra: dict[str, Any] | None = None) -> None:
        if code not in MESSAGES:
            code = "internal"
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail
        self.extra = extra or {}

    def to_dict(self) -> dict[str, Any]:
        zh, en = MESSAGES[self.code]
        error: dict[str, Any] = {"code": self.code, "message": zh, "message_en": en}
        if self.detail:
            error["detail"] = self.detail
        error.update(self.extra)
        return {"ok": False, "error": error}

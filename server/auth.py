"""Who is asking: the login session behind a request, and the role checks every handler uses."""

from __future__ import annotations

from aiohttp import web

from server.keys import STORE
from signaling.store import SESSION_COOKIE, User

__all__ = ["SESSION_COOKIE", "ApiError", "current_user", "require_user"]
REVIEWER_ROLES = ("supervisor", "admin")


class ApiError(web.HTTPException):
    """A JSON error answer: {ok: false, error: {code, message, message_en}}."""

    def __init__(self, status: int, code: str, message: str, message_en: str) -> None:
        self.status_code = status
        super().__init__(
            text=web.json_response({"ok": False, "error": {
                "code": code, "message": message, "message_en": message_en}}).text,
            content_type="application/json",
        )


async def current_user(request: web.Request) -> User | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    return await request.app[STORE].session_user(token)


async def require_user(request: web.Request, roles: tuple[str, ...]) -> User:
    user = await current_user(request)
    if user is None:
        raise ApiError(401, "unauthenticated", "请先登录。", "Please log in first.")
    if user.role not in roles:
        raise ApiError(403, "forbidden", "只有督查人员可以查看录像。" if roles == REVIEWER_ROLES
                       else "您没有权限进行此操作。", "You are not allowed to do this.")
    return user

"""What an administrator does to accounts (the admin page and `python -m server accounts`):
create, edit, disable and enable, unlock, reset a password or the second factor. Each change is
checked against the departments that exist, audited with the account's state before and after, and
ends the account's sessions (live sockets included, in every process) when it must apply at once."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from recordings.audit import Audit
from rooms.roles import Role
from signaling.accounts import Accounts, User, check_profile
from signaling.errors import SignalError
from signaling.sessions import Sessions
from signaling.store import Store

logger = logging.getLogger(__name__)

# The roles whose accounts belong to departments: staff answer their pools' queues; a supervisor
# with departments sees only those (none: every department). The others have none.
POOL_ROLES = frozenset({Role.STAFF, Role.SUPERVISOR})


@dataclass(frozen=True)
class Actor:
    """Who makes a change, as the audit log records it: an admin's username (or `cli:<os user>`)
    and the address the request came from (`local` for the command line)."""

    who: str
    remote: str


@dataclass(frozen=True)
class Profile:
    """What an admin sets on an account; a field left None keeps its value (an edit)."""

    display_name: str | None = None
    role: str | None = None
    departments: tuple[str, ...] | None = None


def check_pools(role: str, departments: tuple[str, ...]) -> None:
    if role == Role.STAFF and not departments:
        raise SignalError("invalid_payload.account", reason="坐席至少属于一个部门")
    if role not in POOL_ROLES and departments:
        raise SignalError("invalid_payload.account", reason=f"{role} 账号不属于部门")


class AccountAdmin:
    def __init__(self, accounts: Accounts, sessions: Sessions, store: Store,
                 audit: Audit) -> None:
        self.accounts = accounts
        self.sessions = sessions
        self.store = store
        self.audit = audit

    async def pools(self) -> tuple[list[str], list[str]]:
        """The department ids, and the backup groups (AB岗) the departments name that are no
        department themselves: what an account's departments may be."""
        departments = await self.store.departments()
        ids = [d.id for d in departments]
        groups = sorted({t.group for d in departments for t in d.backups} - set(ids))
        return ids, groups

    async def _check(self, display_name: str, role: str, departments: Iterable[str]) -> None:
        ids, groups = await self.pools()
        check_profile(display_name, role, departments, [*ids, *groups])
        check_pools(role, tuple(departments))

    async def _user(self, username: str) -> User:
        user = await self.accounts.user(username)
        if user is None:
            raise SignalError("not_found.account")
        return user

    async def create(self, actor: Actor, username: str, profile: Profile) -> tuple[User, str]:
        """A new account and its one-time password (shown once, changed at first sign-in)."""
        display_name = (profile.display_name or "").strip()
        role, departments = profile.role or "", tuple(profile.departments or ())
        await self._check(display_name, role, departments)
        user, password = await self.accounts.create(username, display_name=display_name,
                                                    role=role, departments=departments)
        await self.audit.append(actor.who, "account_create", remote=actor.remote,
                                target=username, after=user.audit_view())
        logger.info("%s created account %s (%s)", actor.who, username, role)
        return user, password

    async def update(self, actor: Actor, username: str, profile: Profile) -> User:
        """A new name, role or departments. A role or department change ends the account's
        sessions, so its desk and rooms follow the change at once."""
        current = await self._user(username)
        display_name = current.display_name if profile.display_name is None \
            else profile.display_name.strip()
        role = current.role if profile.role is None else profile.role
        departments = current.departments if profile.departments is None \
            else profile.departments
        if role != current.role and username == actor.who:
            raise SignalError("forbidden.self")
        await self._check(display_name, role, departments)
        before, after = await self.accounts.update(username, display_name=display_name,
                                                   role=role, departments=departments)
        await self.audit.append(actor.who, "account_update", remote=actor.remote,
                                target=username, before=before.audit_view(),
                                after=after.audit_view())
        if (before.role, set(before.departments)) != (after.role, set(after.departments)):
            await self.sessions.end_user(username, "role_changed")
        logger.info("%s changed account %s", actor.who, username)
        return after

    async def set_disabled(self, actor: Actor, username: str, disabled: bool) -> User:
        """Disabling ends every session of the account at once; nobody disables themselves."""
        if disabled and username == actor.who:
            raise SignalError("forbidden.self")
        before, after = await self.accounts.set_disabled(username, disabled)
        if disabled:
            await self.sessions.end_user(username, "disabled")
        await self.audit.append(actor.who, "account_disable" if disabled else "account_enable",
                                remote=actor.remote, target=username,
                                before=before.audit_view(), after=after.audit_view())
        logger.info("%s %s account %s", actor.who, "disabled" if disabled else "enabled",
                    username)
        return after

    async def unlock(self, actor: Actor, username: str) -> User:
        before = await self._user(username)
        await self.accounts.unlock(username)
        await self.audit.append(actor.who, "account_unlock", remote=actor.remote,
                                target=username,
                                detail=f"locked for {before.locked_for} s more" if before.locked_for
                                else "was not locked")
        logger.info("%s unlocked account %s", actor.who, username)
        return await self._user(username)

    async def reset_password(self, actor: Actor, username: str) -> tuple[User, str]:
        """A new one-time password; the account's sessions end at once."""
        password = await self.accounts.reset_password(username)
        await self.sessions.end_user(username, "password_reset")
        await self.audit.append(actor.who, "password_reset", remote=actor.remote,
                                target=username)
        logger.info("%s reset the password of %s", actor.who, username)
        return await self._user(username), password

    async def reset_totp(self, actor: Actor, username: str) -> User:
        """Forget the second factor; the person sets up a new one at the next sign-in."""
        before = await self._user(username)
        await self.accounts.reset_totp(username)
        await self.audit.append(actor.who, "totp_reset", remote=actor.remote, target=username,
                                detail="enrolled" if before.totp_enrolled else "none enrolled")
        logger.info("%s reset the second factor of %s", actor.who, username)
        return await self._user(username)

import asyncio
import os
import threading

from signaling import accounts
from signaling.accounts import hash_password, verify_password


def test_passwords_are_stored_hashed_and_verified() -> None:
    stored = hash_password("demo12345")
    assert "demo12345" not in stored
    assert stored.startswith("scrypt$")
    assert verify_password("demo12345", stored)
    assert not verify_password("demo12346", stored)
    assert hash_password("demo12345") != stored  # salted


def test_a_corrupt_hash_never_verifies() -> None:
    assert not verify_password("x", "")
    assert not verify_password("x", "scrypt$1$2$3$!!$??")
    assert not verify_password("x", "md5$abc")


def test_a_second_factor_secret_is_sealed_for_its_account_and_key() -> None:
    from signaling import totp

    key, other = bytes(range(32)), bytes(range(1, 33))
    secret = totp.new_secret()
    sealed = totp.seal(key, secret, "chenjing")
    assert secret not in sealed
    assert totp.unseal(key, sealed, "chenjing") == secret
    assert totp.unseal(other, sealed, "chenjing") is None
    assert totp.unseal(key, sealed, "wangfang") is None  # not moved to another account
    assert totp.unseal(key, secret, "chenjing") is None  # a plain value is no sealed one


async def test_passwords_are_hashed_below_the_event_loops_priority() -> None:
    def nice() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    here = nice()
    there = await asyncio.get_running_loop().run_in_executor(accounts._HASHING, nice)
    assert there == max(here, accounts.HASHING_NICE)
    assert nice() == here  # the loop's own thread is left as it was


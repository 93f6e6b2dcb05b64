"""The storage watch: free space under the recordings directory, checked while the server runs,
raising a ``low_space`` alert for supervisors when it is below the configured minimum (a room's
recording cut short by a failed write is alerted by the signaling layer when the recorder says
so)."""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path

from recordings.alerts import Alerts
from recordings.archive import REDIS_UNAVAILABLE

logger = logging.getLogger(__name__)

# Free space is looked at every 30 s (statvfs is cheap, but a disk does not fill in less).
SPACE_CHECK_S = 30.0


def free_mb(path: Path) -> float:
    """Free space for unprivileged writers under ``path`` (its nearest existing parent)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free / (1024 * 1024)


async def watch_free_space(alerts: Alerts, directory: Path, minimum_mb: int,
                           interval: float = SPACE_CHECK_S) -> None:
    """Raise an alert while free space is low (at start, then every ``interval``), and let the
    next one be raised once space was freed. A minimum of 0 turns the check off."""
    subject = str(directory.resolve())
    while minimum_mb > 0:
        try:
            free = await asyncio.to_thread(free_mb, directory)
            if free >= minimum_mb:
                await alerts.clear("low_space", subject)
            elif await alerts.raise_once(
                    "low_space", subject,
                    detail=f"{free:.0f} MB free under {subject} (minimum {minimum_mb} MB)"):
                logger.warning("recordings: only %.0f MB free under %s", free, subject)
        except REDIS_UNAVAILABLE:
            pass  # the service's Redis watch logs the outage; checked again next round
        except Exception:
            logger.exception("storage alerts: check failed; trying again")
        await asyncio.sleep(interval)

"""The integrity chain of the archive: file hashes sealed into ``manifest.json`` links, each
link naming the hash of the one before it (across the whole archive), and the check of it all.

A recording directory's ``manifest.json`` is ``{"version": 1, "recording_id", "links": [...]}``.
A link is ``{seq, kind, recording_id, at, files: {name: sha256}, prev, hash}``; ``hash`` is the
SHA-256 of the link's other fields as canonical JSON, ``prev`` the hash of link ``seq - 1``
(empty for the first link of the archive). A recording gets a ``close`` link when it is indexed
(every file in its directory) and a ``rating`` link when the applicant rates it afterwards
(``rating.json`` only), and a ``notice`` link for the sealed 一次性告知单 (``notice.json``) when it
comes after the recording was indexed: files sealed once are never rewritten, later facts are new
files with links of their own. The file expected of a recording is the last link that names it.

Recordings removed by retention leave their links in ``<root>/purged.jsonl`` so that the chain
stays checkable through them. Everything here works from files alone; Redis only adds the head
(the newest link) to compare against.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
RATING = "rating.json"
NOTICE = "notice.json"
PURGED = "purged.jsonl"
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_CHUNK = 1024 * 1024


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def hash_files(directory: Path, names: list[str] | None = None) -> dict[str, str]:
    """SHA-256 of the named files, or of every file in the directory but the manifest."""
    if names is None:
        names = sorted(p.name for p in directory.iterdir() if p.is_file() and p.name != MANIFEST)
    return {name: sha256_file(directory / name) for name in names}


def link_hash(link: dict[str, Any]) -> str:
    body = {k: v for k, v in link.items() if k != "hash"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def make_link(*, seq: int, kind: str, recording_id: str, at: float, files: dict[str, str],
              prev: str) -> dict[str, Any]:
    link: dict[str, Any] = {"seq": seq, "kind": kind, "recording_id": recording_id, "at": at,
                            "files": dict(sorted(files.items())), "prev": prev}
    link["hash"] = link_hash(link)
    return link


def read_manifest(directory: Path) -> dict[str, Any] | None:
    path = directory / MANIFEST
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("links"), list):
        raise ValueError("not a manifest")
    return data


def append_link(directory: Path, link: dict[str, Any]) -> None:
    """Add a link to the recording's manifest (written whole, then renamed into place)."""
    manifest = read_manifest(directory) or {"version": 1, "recording_id": link["recording_id"],
                                            "links": []}
    manifest["links"] = [x for x in manifest["links"] if x.get("seq") != link["seq"]] + [link]
    tmp = directory / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, directory / MANIFEST)


def record_purge(root: Path, recording_id: str, at: float, links: list[dict[str, Any]]) -> None:
    """Keep the chain positions of a recording that retention removes."""
    entry = {"recording_id": recording_id, "at": at,
             "links": [{"seq": x["seq"], "hash": x["hash"], "prev": x["prev"]} for x in links]}
    with (root / PURGED).open("a", encoding="utf-8") as f:
        f.write(json.dumps(entry, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


@dataclass(frozen=True)
class Problem:
    recording_id: str  # "" for the archive as a whole
    kind: str  # changed, removed, added, no_manifest, bad_manifest, link_altered, chain, head
    detail: str

    def __str__(self) -> str:
        where = self.recording_id or "archive"
        return f"{where}: {self.kind}: {self.detail}"


@dataclass
class Report:
    recordings: int
    links: int
    problems: list[Problem]

    @property
    def ok(self) -> bool:
        return not self.problems


def _purged_links(root: Path, problems: list[Problem]) -> list[dict[str, Any]]:
    path = root / PURGED
    if not path.is_file():
        return []
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            for x in entry["links"]:
                out.append({"seq": int(x["seq"]), "hash": str(x["hash"]), "prev": str(x["prev"]),
                            "recording_id": str(entry["recording_id"]), "purged": True})
        except (ValueError, KeyError, TypeError):
            problems.append(Problem("", "bad_manifest", f"{PURGED} line {n} is unreadable"))
    return out


def verify(root: Path, recording_id: str | None = None,
           head: dict[str, str] | None = None) -> Report:
    """Check the files of one recording (or all) against their manifests, and the chain.

    Names every file changed, removed or added, and every broken chain link. With
    ``recording_id``, only problems touching that recording are reported. ``head`` is Redis'
    ``yz:manifest:head`` (seq, hash) when known."""
    problems: list[Problem] = []
    links: list[dict[str, Any]] = []
    dirs = sorted(p for p in root.iterdir() if p.is_dir() and _ID.match(p.name)) \
        if root.is_dir() else []
    if recording_id is not None and not any(d.name == recording_id for d in dirs):
        problems.append(Problem(recording_id, "removed", "the recording directory is missing"))
    for directory in dirs:
        rid = directory.name
        try:
            manifest = read_manifest(directory)
        except (ValueError, UnicodeDecodeError):
            problems.append(Problem(rid, "bad_manifest", f"{MANIFEST} is unreadable"))
            continue
        if manifest is None:
            problems.append(Problem(rid, "no_manifest", f"no {MANIFEST}: never sealed"))
            continue
        expected: dict[str, str] = {}
        for link in manifest["links"]:
            if not isinstance(link, dict) or link.get("hash") != link_hash(link) \
                    or link.get("recording_id") != rid:
                seq = link.get("seq") if isinstance(link, dict) else "?"
                problems.append(Problem(rid, "link_altered",
                                        f"link {seq} does not match its own hash"))
            if isinstance(link, dict):
                links.append({**link, "recording_id": rid})
                expected.update(link.get("files") or {})
        if recording_id is not None and rid != recording_id:
            continue
        present = sorted(p.name for p in directory.iterdir() if p.name != MANIFEST)
        for name in sorted(expected):
            path = directory / name
            if not path.is_file():
                problems.append(Problem(rid, "removed", name))
            elif sha256_file(path) != expected[name]:
                problems.append(Problem(rid, "changed", name))
        for name in present:
            if name not in expected:
                problems.append(Problem(rid, "added", name))
    links.extend(_purged_links(root, problems))
    links.sort(key=lambda x: (int(x.get("seq") or 0), x["recording_id"]))
    chain: list[Problem] = []
    prev: dict[str, Any] | None = None
    for link in links:
        seq = int(link.get("seq") or 0)
        if prev is None:
            if link.get("prev") != "" or seq != 1:
                chain.append(Problem(link["recording_id"], "chain",
                                     f"link {seq} has no predecessor (links before it are "
                                     "missing)"))
        elif seq == prev["seq"]:
            chain.append(Problem(link["recording_id"], "chain",
                                 f"link {seq} is claimed twice ({prev['recording_id']} and "
                                 f"{link['recording_id']})"))
        elif seq != prev["seq"] + 1:
            chain.append(Problem(link["recording_id"], "chain",
                                 f"links {prev['seq'] + 1}..{seq - 1} are missing before link "
                                 f"{seq} (after {prev['recording_id']})"))
        elif link.get("prev") != prev["hash"]:
            chain.append(Problem(link["recording_id"], "chain",
                                 f"link {seq} does not follow link {prev['seq']} "
                                 f"({prev['recording_id']})"))
        prev = {**link, "seq": seq}
    if head is not None and head.get("hash"):
        last = prev
        if last is None or str(last["seq"]) != str(head.get("seq")) \
                or last["hash"] != head.get("hash"):
            where = f"link {last['seq']} ({last['recording_id']})" if last else "no link"
            chain.append(Problem(head.get("recording_id", ""), "head",
                                 f"the head in Redis is link {head.get('seq')} of "
                                 f"{head.get('recording_id', '?')}, the files end at {where}"))
    if recording_id is not None:
        chain = [p for p in chain if p.recording_id == recording_id
                 or recording_id in p.detail]
    problems.extend(chain)
    if recording_id is not None:
        problems = [p for p in problems if p.recording_id in (recording_id, "")
                    or recording_id in p.detail]
    count = 1 if recording_id is not None else len(dirs)
    return Report(recordings=count, links=len(links), problems=problems)

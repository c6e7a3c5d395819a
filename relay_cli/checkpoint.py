"""Where an interrupted `relay backfill` resumes: one small JSON file per backfill.

The file is named by what the backfill is (the stack, the sources, the options as typed) and
holds the window it resolved (so `--since 2h` means the same two hours when resumed), each
source's cursor after its last finished page, and the sources it finished. It lives under
$XDG_CACHE_HOME (~/.cache)/conversion-relay/backfill and is removed when the backfill ends.
The claims make a resumed page harmless: what was relayed is a duplicate the second time.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from relay.backfill.history import Window


def state_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "conversion-relay" / "backfill"


class FileCheckpoint:
    def __init__(self, identity: dict[str, Any], window: Window, *, restart: bool = False):
        digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
        self.path = state_dir() / f"{digest}.json"
        self._state: dict[str, Any] = {"identity": identity, "cursors": {}, "done": []}
        self.resumed_at: str | None = None
        if not restart and self.path.is_file():
            try:
                saved = json.loads(self.path.read_text(encoding="utf-8"))
                window = Window(
                    datetime.fromisoformat(saved["since"]), datetime.fromisoformat(saved["until"])
                )
                self._state.update(cursors=dict(saved["cursors"]), done=list(saved["done"]))
                self.resumed_at = saved.get("saved_at")
            except (OSError, ValueError, KeyError, TypeError):
                pass  # an unreadable checkpoint: start over (the claims keep it safe)
        self.window = window

    def cursor(self, source: str) -> str | None:
        return self._state["cursors"].get(source)

    def done(self, source: str) -> bool:
        return source in self._state["done"]

    def save(self, source: str, cursor: str | None) -> None:
        if cursor is None:
            self._state["cursors"].pop(source, None)
            if source not in self._state["done"]:
                self._state["done"].append(source)
        else:
            self._state["cursors"][source] = cursor
        self.path.parent.mkdir(parents=True, exist_ok=True)
        state = {
            **self._state,
            "since": self.window.since.isoformat(),
            "until": self.window.until.isoformat(),
            "saved_at": datetime.now().astimezone().isoformat(timespec="seconds"),
        }
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(state, indent=2), encoding="utf-8")
        temporary.replace(self.path)  # atomic: an interrupt never leaves half a file

    def finish(self) -> None:
        self.path.unlink(missing_ok=True)

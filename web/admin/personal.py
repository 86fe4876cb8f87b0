"""The console's two POSTs about a person's data: the export of everything drip holds about
the subscriber of a subscription, as a JSON download, and its erasure (drip.privacy: personal
data removed, the counts kept).

Both go through Actions.as_operator: the session and the form's CSRF token are checked first
(403, nothing changed, otherwise) and the operator's line of the audit log is written in the
same transaction. Erasing asks for the address typed again, so one click cannot erase, and
waits while a worker is sending to that person (409): what the worker writes afterwards would
name them again."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ... import console, privacy
from ...runtime import Runtime
from ..body import read_fields
from .actions import Actions, _subscription
from .pages import _id


class PersonalData:
    def __init__(self, runtime: Runtime, actions: Actions) -> None:
        self.rt, self.actions = runtime, actions

    async def export(self, request: Request) -> Response:
        sub_id = _id(request.path_params["id"])
        fields = (await read_fields(request))[1]
        found: list[dict[str, Any]] = []

        def act(db: Session, who: str, now: datetime) -> tuple[str, int]:
            data = privacy.export(db, _subscription(db, sub_id).subscriber.email)
            if data is None:
                raise HTTPException(404)
            found.append(data)
            return "export", sub_id

        await run_in_threadpool(self.actions.as_operator, request, fields, act)
        name = f"drip-subscription-{sub_id}.json"  # never the address: file names get shared
        return Response(json.dumps(found[0], indent=2, ensure_ascii=False),
                        media_type="application/json", headers={
                            "Content-Disposition": f'attachment; filename="{name}"',
                            "Cache-Control": "no-store"})  # fmt: skip

    async def erase(self, request: Request) -> Response:
        sub_id = _id(request.path_params["id"])
        fields = (await read_fields(request))[1]
        typed = fields.get("confirm", "")

        def act(db: Session, who: str, now: datetime) -> tuple[str, int]:
            self._erase(db, sub_id, typed, now)
            return "erase", sub_id

        await run_in_threadpool(self.actions.as_operator, request, fields, act)
        return RedirectResponse(f"/admin/subscriptions/{sub_id}?done=erase", status_code=303)

    def _erase(self, db: Session, sub_id: int, typed: str, now: datetime) -> None:
        """Erase the subscriber of `sub_id` if `typed` is their address; 4xx otherwise."""
        subscriber = _subscription(db, sub_id).subscriber
        email = subscriber.email
        if privacy.is_erased(email):
            raise HTTPException(409, "This subscriber has been erased already.")
        if " ".join(typed.split()).casefold() != email.casefold():
            raise HTTPException(400, "Type the subscriber's address to confirm the erasure.")
        for sub in console.subscriptions_of(db, subscriber.id):
            if sub.leased_until is not None and sub.leased_until > now:
                raise HTTPException(409, "A lesson is being sent to this subscriber right "
                                         "now: try again.")  # fmt: skip
        if privacy.erase(db, email, now, self.rt.courses) is None:
            raise HTTPException(404)

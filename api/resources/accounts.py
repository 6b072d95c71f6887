"""`/admin/accounts`: the operator opens an account (API.md §3).

The same composition as `licentric account create`: one account, its `live` and `test`
environments, each with a full-access API key, a response-signing secret and an Ed25519
key. The document is returned once; the secrets in it are stored only hashed or
encrypted. Only the operator token reaches this resource (`Auth.OPERATOR`); it is 404
while `LICENTRIC_ADMIN_TOKEN` is unset.
"""

from __future__ import annotations

import falcon

from api.auth import Auth
from api.operations import operation
from api.schemas import accounts as schemas
from api.services import Services
from ledger.accounts import open_account


class AccountCollection:
    auth = Auth.OPERATOR

    def __init__(self, services: Services) -> None:
        self._services = services

    @operation(
        summary="Open an account (operator token)",
        description="Returns the account's API keys and signing secrets: the only time.",
        body=schemas.CREATE,
        responses={201: schemas.OPENED_ACCOUNT},
    )
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        services = self._services
        opened = open_account(
            services.ledger,
            name=req.context.body["name"],
            master_key=services.master_key,
            pepper=services.pepper,
            at=services.clock(),
            new_id=services.new_id,
        )
        resp.set_header("Cache-Control", "no-store")
        resp.status = 201
        resp.media = opened.document()

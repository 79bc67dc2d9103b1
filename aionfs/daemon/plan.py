"""Which plan the key is on: given, or learnt from the service and remembered.

The plan sets the request budget (FREE 10, STARTER 30, PROFESSIONAL 100,
ENTERPRISE 500 a minute) and the upload batch size. A plan given on the
command line, in the environment or in the config file is used as it is.
Otherwise the mount asks the service once at start (`GET /usage/summary` →
`plan.name`), remembers the answer in the metadata store, and starts from
the remembered plan when the service cannot be asked (offline). A 429 still
lowers the rate below any plan's (api/ratelimit.py).
"""

from __future__ import annotations

import logging

import trio

from ..api import AionClient, answer_after
from ..api.errors import ApiError
from ..api.settings import PLAN_LIMITS
from ..config import Profile
from ..store import Store

log = logging.getLogger(__name__)

#: the store's meta key holding the plan learnt from the service
META_KEY = "plan"
#: how long the mount waits for the answer before going on with what it knows
ASK_WAIT = 15.0


async def settle_plan(client: AionClient, store: Store, profile: Profile) -> None:
    """Set the client's plan: the profile's if given, else the service's."""
    given = profile.source.get("plan")
    if given is not None:
        client.use_plan(profile.plan, given)
        return
    remembered = store.get_meta(META_KEY)
    if remembered in PLAN_LIMITS:
        client.use_plan(remembered, "the service (remembered)")
    try:
        with answer_after(ASK_WAIT):
            name = await client.plan_name()
    except (ApiError, trio.TooSlowError) as exc:
        log.info("the plan could not be asked (%s): %s", exc, client.settings.plan)
        return
    if name not in PLAN_LIMITS:
        log.warning("the service names the plan %r, which aionfs does not know: working "
                    "within %s (set --plan to choose)", name, client.settings.plan)
        return
    client.use_plan(name, "the service")
    if remembered != name:
        with store.transaction():
            store.set_meta(META_KEY, name)
        log.info("plan: %s (%d requests a minute), learnt from the service", name,
                 PLAN_LIMITS[name][0])

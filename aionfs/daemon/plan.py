"""Which plan the key is on: given, or learnt from the service and remembered.

The plan sets the request budget (FREE 10, STARTER 30, PROFESSIONAL 100,
ENTERPRISE 500 a minute) and the upload batch size. A plan given on the
command line, in the environment or in the config file is used as it is.
Otherwise the mount asks the service once at start (`GET /usage/summary` →
`plan.name`), remembers the answer in the metadata store, and starts from
the remembered plan when the service cannot be asked (offline). A 429 still
lowers the rate below any plan's (api/ratelimit.py). `aionfs doctor` asks
the same way (`ask_service`), without remembering.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

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


@dataclass(frozen=True)
class ServicePlan:
    """What the service said about the key's plan, for the mount and for doctor."""

    #: a plan aionfs knows (a PLAN_LIMITS key); None when the service could not tell
    name: str | None
    #: when `name` is None: why, in words for the user
    why_not: str = ""
    #: the service answered (None then means its answer names no plan aionfs knows)
    answered: bool = True


async def ask_service(client: AionClient) -> ServicePlan:
    """The key's plan per the service: one `GET /usage/summary`, at most ASK_WAIT.

    Never raises for the service's sake (an error, a refused key, no answer):
    the caller goes on with the plan it has and says why."""
    try:
        with answer_after(ASK_WAIT):
            name = await client.plan_name()
    except (ApiError, trio.TooSlowError) as exc:
        return ServicePlan(None, f"it could not be asked: {exc or f'no answer in {ASK_WAIT:g} s'}",
                           answered=False)
    if name is None:
        return ServicePlan(None, "its answer names no plan")
    if name not in PLAN_LIMITS:
        return ServicePlan(None, f"it names the plan {name!r}, which aionfs does not know")
    return ServicePlan(name)


def given_origin(source: str) -> str:
    """Where a plan the profile gives came from, as the user would set it again:
    `--plan`, `$AIONFS_PLAN` or the profile (its `config (path)` source)."""
    if source == "command line":
        return "--plan"
    if source == "environment":
        return "$AIONFS_PLAN"
    if source.startswith("config"):
        return "the profile"
    return source


async def settle_plan(client: AionClient, store: Store, profile: Profile) -> None:
    """Set the client's plan: the profile's if given, else the service's."""
    given = profile.source.get("plan")
    if given is not None:
        client.use_plan(profile.plan, given)
        return
    remembered = store.get_meta(META_KEY)
    if remembered in PLAN_LIMITS:
        client.use_plan(remembered, "the service (remembered)")
    asked = await ask_service(client)
    if asked.name is None:
        # an unreachable service is the offline case, said elsewhere; a strange answer is news
        log.log(logging.WARNING if asked.answered else logging.INFO,
                "the plan is unknown to the service (%s): working within %s (set --plan to "
                "choose)", asked.why_not, client.settings.plan)
        return
    name = asked.name
    client.use_plan(name, "the service")
    if remembered != name:
        with store.transaction():
            store.set_meta(META_KEY, name)
        log.info("plan: %s (%d requests a minute), learnt from the service", name,
                 PLAN_LIMITS[name][0])

"""Handlers of the orchestration API, ``/prophecy/api/v1/automate/…``: runs, schedules and
deployments of every project under the server's root.

Same rules as the Studio API (the same base handler: authentication, authorization on the
``prophecy`` resource, JSON errors); each handler parses its input and calls `Automate`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from prophecy_jupyter.automate.service import Automate, deployment_view, run_view
from prophecy_jupyter.automate.store import RunFilter
from prophecy_jupyter.errors import Issue, ValidationError
from prophecy_jupyter.server.handlers import ProphecyHandler, authorized_to
from prophecy_jupyter.workspace import _fabric_name, _field, _parameters, _request

RUN_FILTERS = frozenset({"project", "status", "target", "trigger", "schedule", "kind"})
MAX_LIST = 500


def _bad(message: str, field: str) -> ValidationError:
    return ValidationError([Issue("argument", message, field=field)])


class AutomateHandler(ProphecyHandler):
    @property
    def automate(self) -> Automate:
        automate: Automate = self.settings["prophecy_automate"]
        return automate


class AutomateRunsHandler(AutomateHandler):
    query_arguments = RUN_FILTERS | {"limit", "before"}

    @web.authenticated
    @authorized
    async def get(self) -> None:
        values = {k: self.get_query_argument(k, None) for k in RUN_FILTERS}
        limit = self.get_query_argument("limit", "50")
        if not limit.isdigit() or not 1 <= int(limit) <= MAX_LIST:
            raise _bad(f"limit must be an integer from 1 to {MAX_LIST}", "limit")
        before = self.get_query_argument("before", None)
        try:
            moment = None if before is None else dt.datetime.fromisoformat(before).timestamp()
        except ValueError:
            raise _bad("before must be an ISO 8601 time", "before") from None
        where = RunFilter(**values, before=moment, limit=int(limit))
        found = await self.call(self.automate.runs, where)
        await self.reply({"runs": [run_view(r) for r in found]})

    @web.authenticated
    @authorized_to("execute")
    async def post(self) -> None:
        body = _request(
            self.request.body,
            frozenset({"project", "pipeline", "notebook", "fabric", "parameters"}),
        )
        run = await self.call(
            lambda: self.automate.trigger(
                _field(body, "project", str, "a string") or "",
                pipeline=_field(body, "pipeline", str, "a string"),
                notebook=_field(body, "notebook", str, "a string"),
                fabric=_fabric_name(body),
                parameters=_parameters(body),
            )
        )
        self.set_header("Location", self.api_url("automate", "runs", run.id))
        await self.reply(run_view(run), 202)


class AutomateRunHandler(AutomateHandler):
    query_arguments = frozenset()

    @web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        await self.reply(run_view(await self.call(self.automate.run, run_id)))


class AutomateRunCancelHandler(AutomateHandler):
    query_arguments = frozenset()

    @web.authenticated
    @authorized_to("execute")
    async def post(self, run_id: str) -> None:
        await self.reply(run_view(await self.call(self.automate.cancel, run_id)), 202)


class AutomateRunLogsHandler(AutomateHandler):
    query_arguments = frozenset()

    @web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        await self.reply({"lines": await self.call(self.automate.logs, run_id)})


class AutomateRunNotebookHandler(AutomateHandler):
    query_arguments = frozenset()

    @web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        content = await self.call(self.automate.notebook, run_id)
        self.set_header("Content-Type", "application/x-ipynb+json")
        await self.finish(content)


class AutomateSchedulesHandler(AutomateHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        project = self.get_query_argument("project", None)
        await self.reply({"schedules": await self.call(self.automate.schedules, project)})


class _ScheduleSwitch(AutomateHandler):
    enabled: bool

    @web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        view = await self.call(self.automate.set_enabled, self.project, name, self.enabled)
        await self.reply(view)


class AutomateScheduleEnableHandler(_ScheduleSwitch):
    enabled = True


class AutomateScheduleDisableHandler(_ScheduleSwitch):
    enabled = False


class AutomateScheduleTriggerHandler(AutomateHandler):
    @web.authenticated
    @authorized_to("execute")
    async def post(self, name: str) -> None:
        body = _request(self.request.body, frozenset({"parameters"}))
        run = await self.call(self.automate.trigger_schedule, self.project, name, _parameters(body))
        self.set_header("Location", self.api_url("automate", "runs", run.id))
        await self.reply(run_view(run), 202)


class AutomateDeploymentsHandler(AutomateHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        project = self.get_query_argument("project", None)
        found = await self.call(self.automate.deployments, project)
        await self.reply({"deployments": [deployment_view(d) for d in found]})

    @web.authenticated
    @authorized_to("execute")
    async def post(self) -> None:
        body: dict[str, Any] = _request(self.request.body, frozenset({"project", "fabric"}))
        project = _field(body, "project", str, "a string") or ""
        fabric = _fabric_name(body)
        if fabric is None:
            raise _bad("fabric is required", "/fabric")
        deployment = await self.call(self.automate.deploy, project, fabric)
        await self.reply(deployment_view(deployment), 201)


AUTOMATE_ROUTES: tuple[tuple[str, type[ProphecyHandler]], ...] = (
    ("/automate/runs", AutomateRunsHandler),
    ("/automate/runs/{run_id}", AutomateRunHandler),
    ("/automate/runs/{run_id}/cancel", AutomateRunCancelHandler),
    ("/automate/runs/{run_id}/logs", AutomateRunLogsHandler),
    ("/automate/runs/{run_id}/notebook", AutomateRunNotebookHandler),
    ("/automate/schedules", AutomateSchedulesHandler),
    ("/automate/schedules/{name}/enable", AutomateScheduleEnableHandler),
    ("/automate/schedules/{name}/disable", AutomateScheduleDisableHandler),
    ("/automate/schedules/{name}/trigger", AutomateScheduleTriggerHandler),
    ("/automate/deployments", AutomateDeploymentsHandler),
)

"""RestApi: the JSON records of an HTTP API (through an ``http`` connection) as a gem's rows.

The records are fetched while the pipeline compiles, across every page, and handed to the
engine as an Arrow table (`GemContext.fetched`): top-level fields become columns, nested
objects and arrays JSON text (see `records_table`). When the front door says it needs only
some rows (`GemContext.fetch_limit`, for validation and previews), no page is asked for
past them. ``$name`` in the path, a parameter value or a header value reads a pipeline
parameter.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Literal

from pydantic import Field
from sqlglot import exp

from prophecy_jupyter.connectors.http import (
    DEFAULT_MAX_PAGES,
    HttpClient,
    HttpConnectorError,
    Pagination,
    records_table,
)
from prophecy_jupyter.gems.base import GemContext, GemKind, GemOutput, Properties


class PaginationProps(Properties):
    style: Literal["none", "page", "offset", "cursor", "link"] = Field(
        default="none",
        description="page: a page number; offset: offset and limit; cursor: the next cursor "
        'from a response field; link: the Link header\'s rel="next"',
    )
    page_param: str = Field(default="page", min_length=1, description="page: its parameter")
    start: int = Field(default=1, ge=0, description="page: the first page's number")
    size_param: str | None = Field(
        default=None, description="page: the parameter the page size is sent as, if any"
    )
    size: int | None = Field(
        default=None, ge=1, le=100_000, description="page/offset: rows per page"
    )
    offset_param: str = Field(default="offset", min_length=1)
    limit_param: str = Field(default="limit", min_length=1)
    cursor_param: str = Field(default="cursor", min_length=1, description="cursor: its parameter")
    cursor_path: str = Field(
        default="next_cursor", description="cursor: where the next cursor is in a response"
    )
    max_pages: int = Field(
        default=DEFAULT_MAX_PAGES,
        ge=1,
        le=100_000,
        description="Fail rather than ask for more pages than this",
    )


class RestApiProps(Properties):
    connection: str = Field(min_length=1, description="Name of an http connection")
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    path: str = Field(default="", description="Path under the connection's base_url")
    params: dict[str, str] = Field(default_factory=dict, description="Query parameters")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra headers")
    body: Any = Field(default=None, description="JSON body (POST, PUT, PATCH)")
    records: str = Field(
        default="",
        description="Where the rows are in a response, e.g. data.items; empty: the response",
    )
    pagination: PaginationProps = Field(default_factory=PaginationProps)


_PARAMETER = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


class RestApi(GemKind):
    kind = "RestApi"
    category = "Source/Target"
    summary = "Read JSON records from an HTTP API, across pages"
    Props = RestApiProps
    min_inputs = 0
    max_inputs = 0

    def build(self, props: RestApiProps, ctx: GemContext) -> GemOutput | None:
        connection = ctx.connection(props.connection, "connection")
        if connection is None:
            return None
        if connection.kind != "http":
            ctx.issue(
                "wrong_connection",
                f"connection '{props.connection}' is a {connection.kind} connection; "
                "an http one is needed",
                "connection",
            )
            return None
        path = _bound(props.path, ctx, "path")
        params = {k: _bound(v, ctx, "params", k) for k, v in props.params.items()}
        headers = {k: _bound(v, ctx, "headers", k) for k, v in props.headers.items()}
        if path is None or None in params.values() or None in headers.values():
            return None
        paging = Pagination(**props.pagination.model_dump())
        try:
            with HttpClient.from_connection(connection) as client:
                records = client.records(
                    props.method,
                    path,
                    {k: v for k, v in params.items() if v is not None},
                    {k: v for k, v in headers.items() if v is not None},
                    props.body,
                    props.records,
                    paging,
                    # At least one record: the columns come from the records.
                    None if ctx.fetch_limit is None else max(ctx.fetch_limit, 1),
                )
        except HttpConnectorError as exc:
            field = "pagination" if "max_pages" in str(exc) else _field_of(exc)
            ctx.issue("unreadable_source", str(exc), field)
            return None
        if not records:
            where = f"at '{props.records}'" if props.records else "in the response"
            ctx.issue(
                "no_records",
                f"the API returned no records {where}, so its columns are unknown",
                "records",
            )
            return None
        key = hashlib.sha1(
            json.dumps([props.model_dump(), path, params, ctx.fetch_limit], default=str).encode()
        ).hexdigest()
        return ctx.fetched(records_table(records), key, "path")


def _field_of(exc: HttpConnectorError) -> str:
    if exc.status is None:
        return "connection" if "connection '" in str(exc) else "path"
    return "path"


def _bound(text: str, ctx: GemContext, *path: str) -> str | None:
    """``text`` with each ``$name`` replaced by the pipeline parameter's value (as text:
    it goes into a URL or a header, never into SQL)."""
    missing = []

    def value(match: re.Match[str]) -> str:
        literal = ctx.parameters.get(match.group(1).lower())
        if literal is None:
            missing.append(match.group(1))
            return match.group(0)
        return _text(literal)

    bound = _PARAMETER.sub(value, text)
    if missing:
        known = ", ".join(sorted(ctx.parameters)) or "none declared"
        ctx.issue("unknown_parameter", f"unknown parameter ${missing[0]} ({known})", *path)
        return None
    return bound


def _text(literal: exp.Expr) -> str:
    """A parameter's literal as the plain value it stands for."""
    node = literal
    while isinstance(node, (exp.Cast, exp.Paren)):
        node = node.this
    if isinstance(node, exp.Neg):
        return "-" + _text(node.this)
    if isinstance(node, exp.Boolean):
        return "true" if node.this else "false"
    if isinstance(node, exp.Null):
        return ""
    return str(node.name) if isinstance(node, exp.Literal) else node.sql()


GEMS: list[type[GemKind]] = [RestApi]

"""HTTP APIs: one client per ``http`` connection, JSON records across pages, rows as Arrow.

.. code-block:: yaml

    name: billing
    kind: http
    options:
      base_url: https://api.example.com/v2
      auth: bearer                 # bearer (secret token) | header (secret api_key, sent in
                                   # api_key_header, default X-API-Key) | basic (username
                                   # option, secret password) | none
      timeout_seconds: 30
      header.Accept: application/json   # header.<Name>: sent with every request
    secrets: [token]

Requests only go to the connection's own origin: a gem's path is relative to ``base_url``
and a ``Link`` header pointing at another host is refused, so a credential is never sent
anywhere the connection does not name. Errors carry the status and a short excerpt of the
body, with every secret value masked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit

import pyarrow as pa
import requests

from prophecy_jupyter.connections import ResolvedConnection
from prophecy_jupyter.errors import ProphecyError

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
PaginationStyle = Literal["none", "page", "offset", "cursor", "link"]
DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_PAGES = 100


class HttpConnectorError(ProphecyError):
    """A request failed or its answer was not what the gem expects; no secret inside."""

    code = "http"

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def scrub(message: str, secrets: Mapping[str, str]) -> str:
    """``message`` with every secret value masked."""
    for value in secrets.values():
        if len(value) >= 3:
            message = message.replace(value, "***")
    return message


@dataclass
class Pagination:
    """How to ask for the next page, and when to stop.

    - ``page``: ``page_param`` counts up from ``start`` (with ``size_param``=``size`` if
      given); stops at an empty page or one shorter than ``size``.
    - ``offset``: ``offset_param`` advances by ``size`` (sent as ``limit_param``); stops at
      a page shorter than ``size``.
    - ``cursor``: the next cursor is read at ``cursor_path`` of each response and sent as
      ``cursor_param``; stops when it is missing or empty.
    - ``link``: follows the ``Link: <…>; rel="next"`` header; stops when there is none.

    ``max_pages`` is a guard: an API that never stops is an error, not a silent truncation.
    """

    style: PaginationStyle = "none"
    page_param: str = "page"
    start: int = 1
    size_param: str | None = None
    size: int | None = None
    offset_param: str = "offset"
    limit_param: str = "limit"
    cursor_param: str = "cursor"
    cursor_path: str = "next_cursor"
    max_pages: int = DEFAULT_MAX_PAGES


@dataclass
class HttpClient:
    """Requests to one API: base URL, default headers, authentication and timeout."""

    name: str
    base_url: str
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float = DEFAULT_TIMEOUT
    auth: tuple[str, str] | None = field(default=None, repr=False)
    secrets: dict[str, str] = field(default_factory=dict, repr=False)
    session: requests.Session = field(default_factory=requests.Session, repr=False)

    @classmethod
    def from_connection(cls, connection: ResolvedConnection) -> HttpClient:
        if connection.kind != "http":
            raise HttpConnectorError(
                f"connection '{connection.name}' is a {connection.kind} connection, not http"
            )
        base_url = str(connection.option("base_url", "")).strip()
        parts = urlsplit(base_url)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise HttpConnectorError(
                f"connection '{connection.name}' needs a base_url such as https://host/path"
            )
        headers = {
            key.removeprefix("header."): str(value)
            for key, value in connection.options.items()
            if key.startswith("header.")
        }
        secrets = dict(connection.secrets)
        auth_kind = str(connection.option("auth", "bearer" if "token" in secrets else "none"))
        basic: tuple[str, str] | None = None
        if auth_kind == "bearer":
            token = _secret(connection, "token")
            headers["Authorization"] = f"Bearer {token}"
        elif auth_kind == "header":
            name = str(connection.option("api_key_header", "X-API-Key"))
            headers[name] = _secret(connection, "api_key")
        elif auth_kind == "basic":
            username = connection.option("username")
            if not isinstance(username, str) or not username:
                raise HttpConnectorError(
                    f"connection '{connection.name}': basic auth needs a 'username' option"
                )
            basic = (username, _secret(connection, "password"))
        elif auth_kind != "none":
            raise HttpConnectorError(
                f"connection '{connection.name}': auth must be bearer, header, basic or none"
            )
        try:
            timeout = float(connection.option("timeout_seconds", DEFAULT_TIMEOUT))
        except (TypeError, ValueError):
            raise HttpConnectorError(
                f"connection '{connection.name}': timeout_seconds must be a number"
            ) from None
        return cls(
            connection.name,
            base_url.rstrip("/") + "/",
            headers,
            max(timeout, 0.1),
            basic,
            secrets,
        )

    def __repr__(self) -> str:
        # Headers may carry the credential (Authorization, an API key): never shown.
        return f"HttpClient({self.name!r}, {self.base_url!r}, timeout={self.timeout:g})"

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.session.close()

    # -- one request -----------------------------------------------------------------------
    def url(self, path: str) -> str:
        """``path`` under the base URL; a path naming another scheme or host is refused."""
        if urlsplit(path).scheme or path.startswith("//"):
            raise HttpConnectorError(f"path '{path}' must be relative to the connection's base_url")
        return urljoin(self.base_url, path.lstrip("/"))

    def _same_origin(self, url: str) -> bool:
        mine, theirs = urlsplit(self.base_url), urlsplit(url)
        return (mine.scheme, mine.netloc) == (theirs.scheme, theirs.netloc)

    def request(
        self,
        method: Method,
        url: str,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        redirect_ok: bool = False,
    ) -> requests.Response:
        """One request to a URL of this API; a network failure or a 4xx/5xx answer raises
        `HttpConnectorError` with the status and a short excerpt of the body. Redirects are
        not followed (the credential would go along): a 3xx is an error too, unless
        ``redirect_ok``, when the caller follows it as it sees fit."""
        if not self._same_origin(url):
            raise HttpConnectorError(f"refusing to send a request outside {self.base_url}")
        merged = {**self.headers, **(headers or {})}
        try:
            response = self.session.request(
                method,
                url,
                params=dict(params) if params else None,
                headers=merged,
                json=body,
                auth=self.auth,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.Timeout:
            raise self._error(
                f"{method} {_shown(url)} timed out after {self.timeout:g} s"
            ) from None
        except requests.RequestException as exc:
            reason = type(exc).__name__
            raise self._error(f"{method} {_shown(url)} failed: {reason}: {exc}") from None
        if response.status_code >= 400 or (response.status_code >= 300 and not redirect_ok):
            excerpt = " ".join(response.text[:300].split())
            detail = f": {excerpt}" if excerpt else ""
            raise self._error(
                f"{method} {_shown(url)} answered {response.status_code} {response.reason}{detail}",
                response.status_code,
            )
        return response

    def _error(self, message: str, status: int | None = None) -> HttpConnectorError:
        return HttpConnectorError(
            scrub(f"API '{self.name}': {message}", self.secrets), status=status
        )

    # -- records across pages --------------------------------------------------------------
    def records(
        self,
        method: Method,
        path: str,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        records_path: str = "",
        pagination: Pagination | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Every record the request returns, following ``pagination``; at most ``limit``
        (then no further page is asked for)."""
        out: list[dict[str, Any]] = []
        for page in self.pages(method, path, params, headers, body, records_path, pagination):
            out.extend(page)
            if limit is not None and len(out) >= limit:
                return out[:limit]
        return out

    def pages(
        self,
        method: Method,
        path: str,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        records_path: str = "",
        pagination: Pagination | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        paging = pagination or Pagination()
        base = dict(params or {})
        url = self.url(path)
        state: dict[str, Any] = {"page": paging.start, "offset": 0, "cursor": None}
        for number in range(1, max(paging.max_pages, 1) + 2):
            if number > paging.max_pages:
                raise self._error(
                    f"stopped after max_pages={paging.max_pages} pages and more remain; "
                    "raise max_pages if that many are expected"
                )
            query = dict(base) if url == self.url(path) else {}
            query.update(_page_params(paging, state))
            response = self.request(method, url, query, headers, body)
            document = _json(response, self._error)
            page = _records(document, records_path, self._error)
            yield page
            advanced = _advance(paging, state, page, document, response)
            if advanced is None:
                return
            if advanced != "":  # a Link header names the next URL itself
                if not self._same_origin(advanced):
                    raise self._error(f"refusing to follow a next link outside {self.base_url}")
                url = advanced


def _secret(connection: ResolvedConnection, name: str) -> str:
    value = connection.secrets.get(name)
    if not value:
        raise HttpConnectorError(
            f"connection '{connection.name}' needs the secret '{name}' "
            f"(set it in the secret store or PROPHECY_SECRET_… environment variable)"
        )
    return value


def _shown(url: str) -> str:
    """A URL as errors show it: without its query, which may carry a key."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _page_params(paging: Pagination, state: Mapping[str, Any]) -> dict[str, Any]:
    if paging.style == "page":
        params: dict[str, Any] = {paging.page_param: state["page"]}
        if paging.size_param and paging.size:
            params[paging.size_param] = paging.size
        return params
    if paging.style == "offset":
        return {paging.offset_param: state["offset"], paging.limit_param: paging.size or 100}
    if paging.style == "cursor" and state["cursor"] is not None:
        return {paging.cursor_param: state["cursor"]}
    return {}


def _advance(
    paging: Pagination,
    state: dict[str, Any],
    page: list[dict[str, Any]],
    document: Any,
    response: requests.Response,
) -> str | None:
    """Move ``state`` to the next page: ``None`` when there is none, ``""`` to ask the same
    URL with new parameters, or the next URL (Link pagination)."""
    if paging.style == "page":
        if not page or (paging.size and len(page) < paging.size):
            return None
        state["page"] += 1
        return ""
    if paging.style == "offset":
        size = paging.size or 100
        if len(page) < size:
            return None
        state["offset"] += size
        return ""
    if paging.style == "cursor":
        cursor = lookup(document, paging.cursor_path)
        if cursor in (None, "") or not page:
            return None
        state["cursor"] = cursor
        return ""
    if paging.style == "link":
        following = response.links.get("next", {}).get("url")
        return urljoin(response.url, following) if following else None
    return None


def _json(response: requests.Response, error: Callable[[str], HttpConnectorError]) -> Any:
    try:
        return response.json()
    except ValueError:
        kind = response.headers.get("Content-Type", "no content type")
        raise error(f"the answer is not JSON ({kind})") from None


_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def lookup(document: Any, path: str) -> Any:
    """The value at a dotted path (``data.items``, ``$.results[0].rows``); ``None`` where
    the path does not lead anywhere. An empty path (or ``$``) is the document itself."""
    current = document
    text = path.strip().removeprefix("$").lstrip(".")
    for match in _STEP.finditer(text):
        key, index = match.groups()
        if key is not None and isinstance(current, dict):
            current = current.get(key)
        elif index is not None and isinstance(current, list) and int(index) < len(current):
            current = current[int(index)]
        else:
            return None
    return current


def _records(
    document: Any, path: str, error: Callable[[str], HttpConnectorError]
) -> list[dict[str, Any]]:
    found = lookup(document, path)
    where = f"at '{path}'" if path.strip() else "in the answer"
    if found is None:
        raise error(f"no records {where}; set the records path to where the rows are")
    if isinstance(found, dict):
        found = [found]
    if not isinstance(found, list):
        raise error(f"the records {where} are a {type(found).__name__}, not a list")
    return [item if isinstance(item, dict) else {"value": item} for item in found]


def records_table(records: list[dict[str, Any]]) -> pa.Table:
    """Records as an Arrow table: one column per top-level key (in order of first
    appearance), scalars typed from their values, nested objects and arrays as JSON text.

    JSON text rather than structs because APIs do not promise every record the same nested
    shape; a struct column would fail on the first record that differs, while JSON text
    reads any shape (and the engine's JSON functions take it apart)."""
    names: dict[str, None] = {}
    for record in records:
        names.update(dict.fromkeys(record))
    arrays = []
    for name in names:
        values = [record.get(name) for record in records]
        arrays.append(_column(values))
    return pa.Table.from_arrays(arrays, names=list(names))


def _column(values: list[Any]) -> pa.Array:
    if any(isinstance(v, (dict, list)) for v in values):
        return pa.array(
            [None if v is None else json.dumps(v, ensure_ascii=False) for v in values],
            type=pa.string(),
        )
    present = [v for v in values if v is not None]
    if not present:
        return pa.array(values, type=pa.string())
    if all(isinstance(v, bool) for v in present):
        return pa.array(values, type=pa.bool_())
    if all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        try:
            return pa.array(values, type=pa.int64())
        except OverflowError:
            return pa.array([None if v is None else str(v) for v in values], type=pa.string())
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return pa.array(values, type=pa.float64())
    return pa.array([None if v is None else _scalar_text(v) for v in values], type=pa.string())


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)

"""Tableau: publish a Hyper or CSV extract as a data source through Tableau's REST API.

.. code-block:: yaml

    name: tableau
    kind: tableau
    options:
      server_url: https://tableau.example.com
      site: finance               # the site's content URL ("" for the default site)
      token_name: prophecy-etl    # a personal access token's name
      api_version: "3.21"
    secrets: [token]              # the personal access token's secret

Sign in (``auth/signin``) returns a session token sent as ``X-Tableau-Auth``; the file goes
up in one ``multipart/mixed`` request (Tableau's single-request limit is 64 MB; larger
extracts need its chunked upload sessions, not done here); the session is signed out after.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from prophecy_jupyter.connections import ResolvedConnection
from prophecy_jupyter.connectors.http import HttpConnectorError, scrub

SINGLE_REQUEST_LIMIT = 64 * 1024 * 1024


@dataclass
class Tableau:
    """One ``tableau`` connection."""

    connection: ResolvedConnection = field(repr=False)
    timeout: float = 60.0

    def __repr__(self) -> str:
        return f"Tableau({self.connection.name!r})"

    @property
    def api(self) -> str:
        server = str(self.connection.option("server_url", "")).rstrip("/")
        if not server.startswith(("http://", "https://")):
            raise self._error("needs a server_url such as https://tableau.example.com")
        return f"{server}/api/{self.connection.option('api_version', '3.21')}"

    def _error(self, message: str, status: int | None = None) -> HttpConnectorError:
        text = f"Tableau '{self.connection.name}': {message}"
        return HttpConnectorError(scrub(text, self.connection.secrets), status)

    def _call(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        try:
            response = requests.request(method, url, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise self._error(f"{method} {url} failed: {type(exc).__name__}") from None
        if response.status_code >= 400:
            excerpt = " ".join(response.text[:300].split())
            raise self._error(
                f"{method} {url} answered {response.status_code}: {excerpt}", response.status_code
            )
        return response

    def sign_in(self) -> tuple[str, str]:
        """(session token, site id)."""
        secret = self.connection.secrets.get("token")
        name = self.connection.option("token_name")
        if not secret or not name:
            raise self._error("needs the option 'token_name' and the secret 'token'")
        body = {
            "credentials": {
                "personalAccessTokenName": str(name),
                "personalAccessTokenSecret": secret,
                "site": {"contentUrl": str(self.connection.option("site", ""))},
            }
        }
        response = self._call(
            "POST", f"{self.api}/auth/signin", json=body, headers={"Accept": "application/json"}
        )
        try:
            credentials = response.json()["credentials"]
            return str(credentials["token"]), str(credentials["site"]["id"])
        except (ValueError, KeyError, TypeError):
            raise self._error("sign-in answered without a session token") from None

    def publish(
        self, file: Path, name: str, project_id: str, overwrite: bool = True
    ) -> dict[str, Any]:
        """Publish ``file`` (``.hyper`` or ``.csv``) as the data source ``name`` in the
        project ``project_id``; returns Tableau's description of it."""
        if file.suffix.lower() not in {".hyper", ".csv"}:
            raise self._error(f"only .hyper and .csv files are published, not {file.name}")
        data = file.read_bytes()
        if len(data) > SINGLE_REQUEST_LIMIT:
            raise self._error(f"{file.name} is over the 64 MB a single upload takes")
        token, site = self.sign_in()
        try:
            payload = json.dumps({"datasource": {"name": name, "project": {"id": project_id}}})
            boundary = uuid.uuid4().hex
            body = _multipart(
                boundary,
                [
                    ("request_payload", None, "application/json", payload.encode()),
                    ("tableau_datasource", file.name, "application/octet-stream", data),
                ],
            )
            response = self._call(
                "POST",
                f"{self.api}/sites/{site}/datasources",
                params={"overwrite": "true" if overwrite else "false"},
                data=body,
                headers={
                    "X-Tableau-Auth": token,
                    "Accept": "application/json",
                    "Content-Type": f"multipart/mixed; boundary={boundary}",
                },
            )
            try:
                described: dict[str, Any] = response.json()["datasource"]
            except (ValueError, KeyError, TypeError):
                raise self._error("publishing answered without a data source") from None
            return described
        finally:
            with contextlib.suppress(requests.RequestException):  # it expires by itself
                requests.post(
                    f"{self.api}/auth/signout",
                    headers={"X-Tableau-Auth": token},
                    timeout=self.timeout,
                )


def _multipart(boundary: str, parts: list[tuple[str, str | None, str, bytes]]) -> bytes:
    """A ``multipart/mixed`` body as Tableau reads it (named parts, like form data)."""
    out = bytearray()
    for name, filename, content_type, data in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename.replace(chr(34), "_")}"'
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
        out += f"Content-Type: {content_type}\r\n\r\n".encode()
        out += data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out)

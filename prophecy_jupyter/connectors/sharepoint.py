"""SharePoint files through Microsoft Graph: an app's client-credentials token, then the
file's content from a site's document library.

.. code-block:: yaml

    name: finance-site
    kind: sharepoint
    options:
      tenant_id: 0000-…              # the Entra ID tenant
      client_id: 1111-…              # the app registration
      site_id: contoso.sharepoint.com,2222-…,3333-…
      # graph_url / token_url: other clouds (defaults: Microsoft Graph's public endpoints)
    secrets: [client_secret]

Graph answers a file's ``/content`` with a redirect to a short-lived, pre-authenticated
download URL on another host: that URL is fetched without the token, which never leaves
the Graph origin.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote

import requests

from prophecy_jupyter.connections import ResolvedConnection
from prophecy_jupyter.connectors.http import HttpClient, HttpConnectorError, scrub

GRAPH_URL = "https://graph.microsoft.com/v1.0"
TOKEN_URL = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"


@dataclass
class SharePoint:
    """One ``sharepoint`` connection."""

    connection: ResolvedConnection = field(repr=False)
    timeout: float = 30.0

    def __repr__(self) -> str:
        return f"SharePoint({self.connection.name!r})"

    def _option(self, key: str) -> str:
        value = self.connection.option(key)
        if not isinstance(value, str) or not value:
            raise HttpConnectorError(
                f"sharepoint connection '{self.connection.name}' needs the option '{key}'"
            )
        return value

    def _error(self, message: str, status: int | None = None) -> HttpConnectorError:
        text = f"SharePoint '{self.connection.name}': {message}"
        return HttpConnectorError(scrub(text, self.connection.secrets), status)

    def token(self) -> str:
        """An access token for Graph (OAuth 2 client credentials)."""
        secret = self.connection.secrets.get("client_secret")
        if not secret:
            raise self._error("the secret 'client_secret' is not set")
        url = str(
            self.connection.option("token_url")
            or TOKEN_URL.format(tenant=quote(self._option("tenant_id"), safe=""))
        )
        try:
            response = requests.post(
                url,
                data={
                    "grant_type": "client_credentials",
                    "client_id": self._option("client_id"),
                    "client_secret": secret,
                    "scope": "https://graph.microsoft.com/.default",
                },
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise self._error(f"cannot sign in: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise self._error(f"sign-in answered {response.status_code}", response.status_code)
        try:
            token = response.json()["access_token"]
        except (ValueError, KeyError, TypeError):
            raise self._error("sign-in answered without an access token") from None
        return str(token)

    def read_file(self, path: str) -> bytes:
        """The bytes of ``path`` (e.g. ``Reports/2024/sales.csv``) in the site's default
        document library."""
        parts = [p for p in path.strip("/").split("/") if p]
        if not parts or any(p in {".", ".."} for p in parts):
            raise self._error(f"'{path}' is not a file path in the library")
        token = self.token()
        graph = ResolvedConnection(
            self.connection.name,
            "http",
            {
                "base_url": str(self.connection.option("graph_url", GRAPH_URL)),
                "timeout_seconds": self.timeout,
            },
            {"token": token, **self.connection.secrets},
        )
        site = quote(self._option("site_id"), safe=",.")
        item = "/".join(quote(p, safe="") for p in parts)
        with HttpClient.from_connection(graph) as client:
            url = client.url(f"sites/{site}/drive/root:/{item}:/content")
            response = client.request("GET", url, redirect_ok=True)
            if response.status_code in {301, 302, 303, 307, 308}:
                location = response.headers.get("Location")
                if not location:
                    raise self._error("the download redirect has no location")
                try:
                    download = requests.get(location, timeout=self.timeout)
                except requests.RequestException as exc:
                    raise self._error(f"cannot download: {type(exc).__name__}") from None
                if download.status_code != 200:
                    raise self._error(
                        f"download answered {download.status_code}", download.status_code
                    )
                return download.content
            return response.content

"""Livy endpoints of an existing sparkmagic configuration, offered as fabrics.

sparkmagic keeps its settings in ``~/.sparkmagic/config.json`` (``$SPARKMAGIC_CONF_DIR`` and
``$SPARKMAGIC_CONF_FILE`` move it, as they move it for sparkmagic). Each of its kernels'
credentials — ``kernel_python_credentials``, ``kernel_scala_credentials``,
``kernel_r_credentials``: ``url``, ``auth`` (``None``, ``Basic_Access``, ``Kerberos``),
``username``, ``password`` (or the older ``base64_password``) — names a Livy server, and
``session_configs`` the sessions it starts there (``driverMemory``, ``executorCores``,
``conf``…). Endpoints that the project has no Livy fabric for yet are *offered*: listed
beside the project's fabrics, and made fabrics by `import_endpoints`, their password going
to the secret store, never into the fabric's file.

Reading a configuration needs nothing beyond the standard library (no sparkmagic install).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prophecy_jupyter.errors import EngineError
from prophecy_jupyter.fabrics import Fabric, FabricStore, OptionValue

SOURCE = "sparkmagic"
CREDENTIALS = {
    "kernel_python_credentials": ("python", "pyspark"),
    "kernel_scala_credentials": ("scala", "spark"),
    "kernel_r_credentials": ("r", "sparkr"),
}
"""sparkmagic's credentials sections: the language named in the fabric, the session kind."""
AUTH = {"none": "none", "basic_access": "basic", "kerberos": "kerberos"}
SESSION_SETTINGS = (
    "driverMemory",
    "driverCores",
    "executorMemory",
    "executorCores",
    "numExecutors",
    "queue",
    "proxyUser",
    "heartbeatTimeoutInSecond",
)
LIST_SETTINGS = ("jars", "pyFiles", "files", "archives")


@dataclass(frozen=True)
class Endpoint:
    """A Livy server of the sparkmagic configuration, as the fabric it would become."""

    fabric: Fabric
    password: str | None
    languages: tuple[str, ...]

    @property
    def url(self) -> str:
        return str(self.fabric.options["url"])


def config_path(path: Path | str | None = None) -> Path:
    """The sparkmagic configuration file: ``path``, else where sparkmagic looks for it."""
    if path is not None:
        return Path(path).expanduser()
    folder = os.environ.get("SPARKMAGIC_CONF_DIR") or "~/.sparkmagic"
    name = os.environ.get("SPARKMAGIC_CONF_FILE") or "config.json"
    return Path(folder).expanduser() / name


def _option(value: Any) -> OptionValue:
    if isinstance(value, (str, bool, int, float)):
        return value
    return json.dumps(value, sort_keys=True)


def _password(credentials: dict[str, Any]) -> str | None:
    password = credentials.get("password")
    if password:
        return str(password)
    encoded = credentials.get("base64_password")
    if encoded:
        try:
            return base64.b64decode(str(encoded), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
    return None


def read_config(path: Path | str | None = None) -> list[Endpoint]:
    """The distinct Livy endpoints of a sparkmagic configuration (none if it has no file).

    Credentials of several kernels that name the same server, user and password make one
    endpoint: ``sparkmagic`` when the configuration has one, else ``sparkmagic-python``,
    ``sparkmagic-scala``…
    """
    file = config_path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise EngineError(f"cannot read the sparkmagic configuration {file}: {exc}") from None
    try:
        config = json.loads(text)
    except ValueError as exc:
        raise EngineError(
            f"the sparkmagic configuration {file} is not valid JSON: {exc.msg} (line {exc.lineno})"  # type: ignore[attr-defined]
        ) from None
    if not isinstance(config, dict):
        raise EngineError(f"the sparkmagic configuration {file} is not a JSON object")
    session = config.get("session_configs") or {}
    settings: dict[str, OptionValue] = {}
    if isinstance(session, dict):
        for key in SESSION_SETTINGS:
            if session.get(key) not in (None, ""):
                settings[key] = _option(session[key])
        for key in LIST_SETTINGS:
            values = session.get(key)
            if isinstance(values, list) and values:
                settings[key] = ",".join(str(v) for v in values)
        conf = session.get("conf")
        if isinstance(conf, dict):
            for key, value in conf.items():
                if str(key).startswith("spark."):
                    settings[str(key)] = _option(value)
    if config.get("ignore_ssl_errors") is True:
        settings["verify"] = False
    headers = config.get("custom_headers")
    if isinstance(headers, dict):
        for key, value in headers.items():
            settings[f"header.{key}"] = str(value)

    found: dict[tuple[str, str, str | None, str | None], tuple[list[str], dict[str, Any]]] = {}
    for section, (language, kind) in CREDENTIALS.items():
        credentials = config.get(section)
        if not isinstance(credentials, dict) or not credentials.get("url"):
            continue
        url = str(credentials["url"]).rstrip("/")
        user = str(credentials.get("username") or "") or None
        password = _password(credentials)
        declared = str(credentials.get("auth") or ("Basic_Access" if user else "None"))
        auth = AUTH.get(declared.lower(), "none")
        same = (url, auth, user if auth == "basic" else None, password if auth == "basic" else None)
        if same in found:
            found[same][0].append(language)
        else:
            found[same] = ([language], {"kind": kind, "password": password})
    endpoints: list[Endpoint] = []
    for (url, auth, user, password), (languages, extra) in found.items():
        name = SOURCE if len(found) == 1 else f"{SOURCE}-{languages[0]}"
        options: dict[str, OptionValue] = {"url": url, "kind": extra["kind"], **settings}
        if auth != "none":
            options["auth"] = auth
        if user:
            options["user"] = user
        secret = password if auth == "basic" and password else None
        fabric = Fabric(
            name=name,
            kind="livy",
            description=f"Livy server of the sparkmagic configuration ({', '.join(languages)})",
            options=options,
            secrets=["password"] if secret else [],
        )
        endpoints.append(Endpoint(fabric, secret, tuple(languages)))
    return endpoints


def _same(a: str, b: object) -> bool:
    return a.rstrip("/") == str(b).rstrip("/")


def offered(store: FabricStore, path: Path | str | None = None) -> list[Endpoint]:
    """The endpoints of the sparkmagic configuration the project has no Livy fabric for."""
    endpoints = read_config(path)
    if not endpoints:
        return []
    stored = [f for f in store.list() if f.kind == "livy"]
    return [e for e in endpoints if not any(_same(e.url, f.options.get("url", "")) for f in stored)]


def import_endpoints(
    store: FabricStore, path: Path | str | None = None, names: list[str] | None = None
) -> list[Fabric]:
    """Make fabrics of the offered endpoints (all, or those named); passwords go to the
    secret store. A name the project already uses gets a number (``sparkmagic-2``)."""
    chosen = offered(store, path)
    if names:
        unknown = sorted(set(names) - {e.fabric.name for e in chosen})
        if unknown:
            raise EngineError(
                f"the sparkmagic configuration offers no endpoint '{unknown[0]}' "
                "(or it is imported already)"
            )
        chosen = [e for e in chosen if e.fabric.name in names]
    taken = {f.name for f in store.list()}
    made: list[Fabric] = []
    for endpoint in chosen:
        name = endpoint.fabric.name
        number = 2
        while name in taken:
            name = f"{endpoint.fabric.name}-{number}"
            number += 1
        fabric = endpoint.fabric.model_copy(update={"name": name})
        store.put(fabric, {"password": endpoint.password} if endpoint.password else None)
        taken.add(name)
        made.append(fabric)
    return made

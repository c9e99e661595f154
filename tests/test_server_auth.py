"""Every route is authenticated, authorized as ``prophecy`` and protected against XSRF."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import requests
import yaml

from prophecy_jupyter.server import OPENAPI_SPEC, ROUTES
from prophecy_jupyter.server.handlers import ProphecyHandler
from prophecy_jupyter.server.launcher import ServerProcess
from tests.test_server_support import shop_server

DENY_PROPHECY = '''
from jupyter_server.auth import Authorizer


class DenyProphecy(Authorizer):
    """Allows everything except the Studio's resource."""

    def is_authorized(self, handler, user, action, resource):
        return resource != "prophecy"


c.ServerApp.authorizer_class = DenyProphecy
'''

SAMPLE_ARGUMENTS = {"name": "customer_totals", "run_id": "0" * 32}


def sample_path(template: str, handler: type[ProphecyHandler]) -> str:
    """A concrete path for a route template; fabric routes get a fabric's name."""
    values = {**SAMPLE_ARGUMENTS, **({"name": "in-memory"} if "fabrics" in template else {})}
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], template)


EVERY_CALL = [
    (method, sample_path(template, handler))
    for template, handler in ROUTES
    for method in handler.allowed_methods()
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with shop_server(tmp_path_factory.mktemp("auth")) as running:
        yield running


@pytest.fixture(scope="module")
def denied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp("denied")
    config = base / "deny_prophecy.py"
    config.write_text(DENY_PROPHECY)
    with shop_server(base, args=[f"--config={config}"]) as running:
        yield running


def assert_json_error(response: requests.Response, status: set[int]) -> str:
    assert response.status_code in status, (response.request.method, response.url, response.text)
    assert response.headers["Content-Type"].startswith("application/json")
    code: str = response.json()["error"]["code"]
    return code


def test_every_operation_of_the_spec_is_called_here() -> None:
    spec = yaml.safe_load(OPENAPI_SPEC.read_text(encoding="utf-8"))
    operations = [
        m for ops in spec["paths"].values() for m in ops if m in {"get", "post", "put", "delete"}
    ]
    assert len(EVERY_CALL) == len(operations) == len(set(EVERY_CALL))


@pytest.mark.parametrize(("method", "path"), EVERY_CALL)
def test_a_request_without_credentials_is_refused(
    server: ServerProcess, method: str, path: str
) -> None:
    response = requests.request(method, server.api + path, json={}, timeout=30)
    assert assert_json_error(response, {401}) == "unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("method", "path"), EVERY_CALL)
def test_a_request_with_a_wrong_token_is_refused(
    server: ServerProcess, method: str, path: str
) -> None:
    headers = {"Authorization": "token not-the-token"}
    response = requests.request(method, server.api + path, json={}, headers=headers, timeout=30)
    assert assert_json_error(response, {401}) == "unauthorized"


def test_refused_writes_change_nothing(server: ServerProcess) -> None:
    pipeline = server.root / "pipelines" / "customer_totals.pipeline.json"
    before = pipeline.read_bytes()
    for method, path, body in [
        ("PUT", "", {}),
        ("DELETE", "", {}),
        ("POST", "/rename", {"name": "renamed"}),
    ]:
        headers = {"If-Match": "*"}
        requests.request(
            method,
            f"{server.api}/pipelines/customer_totals{path}",
            json=body,
            headers=headers,
            timeout=30,
        )
    assert pipeline.read_bytes() == before
    assert not (pipeline.parent / "renamed.pipeline.json").exists()


@pytest.mark.parametrize(("method", "path"), EVERY_CALL)
def test_an_authorizer_that_denies_prophecy_is_obeyed(
    denied: ServerProcess, method: str, path: str
) -> None:
    response = requests.request(
        method, denied.api + path, json={}, headers=denied.headers, timeout=30
    )
    assert assert_json_error(response, {403}) == "forbidden"
    assert "prophecy" in response.json()["error"]["message"]


def test_the_denying_authorizer_still_lets_the_user_reach_the_rest_of_jupyter(
    denied: ServerProcess,
) -> None:
    response = requests.get(f"{denied.url}api/status", headers=denied.headers, timeout=30)
    assert response.status_code == 200


def login(server: ServerProcess) -> requests.Session:
    """A browser-like session: logged in with the token through the login form (a cookie)."""
    session = requests.Session()
    session.get(f"{server.url}login", timeout=30)
    xsrf = session.cookies["_xsrf"]
    answer = session.post(
        f"{server.url}login",
        data={"password": server.token, "_xsrf": xsrf},
        allow_redirects=False,
        timeout=30,
    )
    assert answer.status_code == 302
    return session


def test_a_cookie_session_reads_without_an_xsrf_token(server: ServerProcess) -> None:
    with login(server) as session:
        assert session.get(f"{server.api}/pipelines", timeout=30).status_code == 200


@pytest.mark.parametrize(("method", "path"), [(m, p) for m, p in EVERY_CALL if m != "GET"])
def test_a_cookie_session_cannot_write_without_the_xsrf_token(
    server: ServerProcess, method: str, path: str
) -> None:
    with login(server) as session:
        response = session.request(method, server.api + path, json={}, timeout=30)
        assert assert_json_error(response, {403}) == "forbidden"
        assert "_xsrf" in response.json()["error"]["message"]


def test_a_cookie_session_writes_with_the_xsrf_token(server: ServerProcess) -> None:
    with login(server) as session:
        headers = {"X-XSRFToken": session.cookies["_xsrf"]}
        response = session.post(
            f"{server.api}/pipelines/customer_totals/validate", headers=headers, timeout=30
        )
        assert response.status_code == 200
        assert response.json()["valid"] is True


def test_the_token_never_reaches_the_log(server: ServerProcess) -> None:
    requests.get(f"{server.api}/gems?token={server.token}", timeout=30)
    requests.get(f"{server.api}/gems", headers=server.headers, timeout=30)
    assert server.token not in server.log_text()

"""Credentials of a project's Git remotes: kept in the per-user secret store, handed to one
git process at a time, and never written anywhere Git or a user could read them back.

A token or an SSH key given for a remote is saved in the `SecretStore` (next to the fabrics'
secrets, under ``git:<remote>``), never in ``.git/config``, the remote's URL, a log or an
error. Each git command that talks to the remote gets them through its own environment:

- HTTPS: ``GIT_ASKPASS`` names a small script, made for that command in a private temporary
  folder, that answers git's username and password prompts from two environment variables
  set only for that child process; git's credential helpers are switched off for that
  command (through ``GIT_CONFIG_COUNT``, not the user's configuration), so that no helper
  answers in our place or stores the token in ``~/.git-credentials``;
- SSH: ``GIT_SSH_COMMAND`` points ssh at the key, written to a 0600 file in a private
  temporary folder that is removed as soon as the command ends.

Whatever git prints passes through `scrub` before it reaches an exception or an answer.
Environment variables named as the fabrics' (``PROPHECY_SECRET_GIT_ORIGIN_TOKEN``…) win
over the store, for machines that get their secrets from their environment.
"""

from __future__ import annotations

import base64
import os
import re
import shlex
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from prophecy_jupyter.errors import Issue, ValidationError
from prophecy_jupyter.fabrics import SecretStore, secret_env_name
from prophecy_jupyter.model.project import Project, ProjectConfig

NAMESPACE = "git:"
DEFAULT_USERNAME = "git"
"""The user name sent with a token when none was given: hosts that authenticate by token
(GitHub, GitLab, Gitea…) accept any non-empty name."""
USERNAME_ENV = "PROPHECY_GIT_USERNAME"
PASSWORD_ENV = "PROPHECY_GIT_PASSWORD"
MASK = "***"
KNOWN_HOSTS = "prophecy_known_hosts"
"""ssh's known-hosts file of a repository, inside its git folder, so that trusting a host
for a project's remote never edits the user's ``~/.ssh/known_hosts``."""

_ASKPASS = """#!/bin/sh
# Answers git's prompts for one command, from variables set for that command only.
case "$1" in
  [Uu]sername*) printf '%s\\n' "$PROPHECY_GIT_USERNAME" ;;
  *) printf '%s\\n' "$PROPHECY_GIT_PASSWORD" ;;
esac
"""
_URL_PASSWORD = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s:]*:[^/@\s]*@")


@dataclass(frozen=True)
class GitCredentials:
    """What a remote needs to authenticate: a user name and token (HTTPS), or a private key
    (SSH). ``host`` is where they were given for: they are only ever sent there."""

    username: str | None = None
    token: str | None = None
    ssh_key: str | None = None
    host: str | None = None

    def __repr__(self) -> str:  # never the values, whatever prints it
        return f"GitCredentials(username={self.username!r}, token={self.token is not None}, " + (
            f"ssh_key={self.ssh_key is not None}, host={self.host!r})"
        )

    @property
    def empty(self) -> bool:
        return not (self.token or self.ssh_key)

    def secrets(self) -> list[str]:
        """The values that must never be shown, in every spelling git might print them."""
        found = [s for s in (self.token, self.ssh_key) if s]
        if self.token:
            pair = f"{self.username or DEFAULT_USERNAME}:{self.token}".encode()
            found.append(base64.b64encode(pair).decode("ascii"))
        if self.ssh_key:
            found.extend(line for line in self.ssh_key.splitlines() if len(line) >= 16)
        return found

    def public(self) -> dict[str, str | bool | None]:
        """What may be shown about them: the user name and which secrets are set."""
        return {
            "username": self.username,
            "token": self.token is not None,
            "ssh_key": self.ssh_key is not None,
        }


def host_of(url: str) -> str | None:
    """The host a URL points at (``github.com``), for HTTPS, SSH and scp-like URLs; None for
    a local path."""
    if "://" in url:
        try:
            return urlsplit(url).hostname
        except ValueError:
            return None
    scp = re.match(r"^(?:[^@/]+@)?([^:/]+):(?!/)", url)  # git@github.com:org/repo.git
    return scp.group(1) if scp else None


def split_url(url: str) -> tuple[str, str | None, str | None]:
    """``url`` without a password in it, and the user name and password it held.

    ``https://me:TOKEN@host/repo.git`` is how tokens are often pasted; the token goes to the
    secret store and the URL Git keeps is ``https://host/repo.git``. A user name alone (as
    in ``ssh://git@host/repo``) is not secret and stays in the URL.
    """
    if "://" not in url:
        return url, None, None
    try:
        parts = urlsplit(url)
    except ValueError:
        raise ValidationError([Issue("url", "the remote URL is not a valid URL")]) from None
    if parts.password is None:
        return url, None, None
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=host)), parts.username or None, parts.password


def scrub(text: str, secrets: list[str] | tuple[str, ...] = ()) -> str:
    """``text`` with every secret value, and any password written in a URL, masked."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return _URL_PASSWORD.sub(lambda m: f"{m.group('scheme')}{MASK}@", text)


def _store_key(root: Path) -> Project:
    """The `SecretStore` keys secrets by a project's folder; a repository's credentials are
    kept under its working tree's folder, shared by every project inside it."""
    return Project(root, ProjectConfig(name=root.name or "repository"))


class CredentialStore:
    """The credentials of one repository's remotes, in the per-user secret store."""

    def __init__(self, root: Path, secrets: SecretStore | None = None) -> None:
        self.root = root
        self.secrets = secrets or SecretStore()

    @staticmethod
    def key(remote: str) -> str:
        return NAMESPACE + remote

    def get(self, remote: str, url: str | None = None) -> GitCredentials:
        """The credentials of ``remote``; stored ones only if they were given for the host
        ``url`` points at (a remote moved to another host does not get them)."""
        stored = self.secrets.get(_store_key(self.root), self.key(remote))
        if url is not None and stored.get("host") != (host_of(url) or ""):
            stored = {}
        values = {
            name: os.environ.get(secret_env_name(self.key(remote), name), stored.get(name))
            for name in ("username", "token", "ssh_key")
        }
        return GitCredentials(
            username=values["username"] or None,
            token=values["token"] or None,
            ssh_key=values["ssh_key"] or None,
            host=stored.get("host"),
        )

    def save(self, remote: str, url: str, credentials: GitCredentials) -> None:
        """Replace what is stored for ``remote`` (nothing stored when ``credentials`` hold
        no secret)."""
        self.forget(remote)
        if credentials.empty:
            return
        values: dict[str, str | None] = {
            "username": credentials.username,
            "token": credentials.token,
            "ssh_key": credentials.ssh_key,
            "host": host_of(url) or "",
        }
        self.secrets.update(_store_key(self.root), self.key(remote), values)

    def forget(self, remote: str) -> None:
        self.secrets.forget(_store_key(self.root), self.key(remote))


def ssh_command(key_file: Path, known_hosts: Path) -> str:
    """The ``GIT_SSH_COMMAND`` that authenticates with ``key_file`` only: no agent's or
    default keys, no prompt (a server has no one to answer), hosts trusted on first use and
    remembered in ``known_hosts``."""
    options = [
        "ssh",
        "-i",
        str(key_file),
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "IdentityAgent=none",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=accept-new",
        "-o",
        f"UserKnownHostsFile={known_hosts}",
    ]
    return " ".join(shlex.quote(part) for part in options)


@contextmanager
def git_environment(
    credentials: GitCredentials | None, known_hosts: Path
) -> Iterator[dict[str, str]]:
    """Environment variables for one git command that talks to a remote.

    Git never prompts on a terminal (there may be none); with credentials, git's credential
    helpers are off for this command and the files holding what git needs (the askpass
    script, the SSH key) live in a private temporary folder removed when the block ends.
    """
    env: dict[str, str] = {"GIT_TERMINAL_PROMPT": "0"}
    if credentials is None or credentials.empty:
        yield env
        return
    folder = Path(tempfile.mkdtemp(prefix="prophecy-git-"))  # mode 0700
    try:
        env.update(_no_credential_helpers(os.environ))
        if credentials.token:
            script = folder / "askpass"
            _write_private(script, _ASKPASS, 0o700)
            env["GIT_ASKPASS"] = str(script)
            env[USERNAME_ENV] = credentials.username or DEFAULT_USERNAME
            env[PASSWORD_ENV] = credentials.token
        if credentials.ssh_key:
            key = folder / "id_key"
            text = credentials.ssh_key.replace("\r\n", "\n")
            _write_private(key, text if text.endswith("\n") else text + "\n", 0o600)
            env["GIT_SSH_COMMAND"] = ssh_command(key, known_hosts)
            env["GIT_SSH_VARIANT"] = "ssh"
        yield env
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _no_credential_helpers(environ: Mapping[str, str]) -> dict[str, str]:
    """``credential.helper`` emptied for one command through ``GIT_CONFIG_*`` variables,
    after whatever such variables the caller's environment already holds."""
    try:
        count = int(environ.get("GIT_CONFIG_COUNT", "0"))
    except ValueError:
        count = 0
    return {
        "GIT_CONFIG_COUNT": str(count + 1),
        f"GIT_CONFIG_KEY_{count}": "credential.helper",
        f"GIT_CONFIG_VALUE_{count}": "",
    }


def _write_private(path: Path, text: str, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(text)
    os.chmod(path, mode)  # whatever the umask

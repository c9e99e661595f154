"""`prophecy git …` and `prophecy diff`: version control of a project from a terminal.

Each command is one call of the `Vcs` facade (`prophecy_jupyter.vcs.service`), the same the
Studio's Git panel makes through the REST API, on the project of ``--project`` (default: the
current folder). Pipelines are shown as what changed in them (gems, connections), merges of
pipelines are gem by gem, and tokens are taken from environment variables only
(``--token-env VAR``), so that they never appear in a shell's history or a process list.

Errors are the core's typed errors, printed as one line by the CLI's `reported`; exit codes
are the CLI's: 0 success, 1 an error or a merge left with conflicts, 2 usage.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from prophecy_jupyter.cli_common import echo_json, json_format, reported, with_options
from prophecy_jupyter.vcs.pipeline_diff import render_diff
from prophecy_jupyter.vcs.service import Vcs

if TYPE_CHECKING:
    from prophecy_jupyter.automate.store import Deployment
    from prophecy_jupyter.cli import Context


# `prophecy_jupyter.cli` imports this module at its end to register the commands, so this
# one imports it only when a command runs.
def _vcs(ctx: Context) -> Vcs:
    return Vcs(ctx.project.root)


def _short(sha: str | None) -> str:
    return (sha or "-")[:10]


def _secret_from_env(variable: str | None, option: str) -> str | None:
    """The value of the environment variable an option names (a usage error if unset)."""
    if variable is None:
        return None
    value = os.environ.get(variable)
    if not value:
        raise click.BadParameter(f"${variable} is not set", param_hint=option)
    return value


def _key_file(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise click.BadParameter(
            f"cannot read {path}: {exc.strerror}", param_hint="--ssh-key-file"
        ) from None


credential_options = (
    click.option("--username", default=None, help="User name sent with the token."),
    click.option(
        "--token-env",
        default=None,
        metavar="VAR",
        help="Environment variable holding the HTTPS token (kept in the secret store).",
    ),
    click.option(
        "--ssh-key-file",
        default=None,
        type=click.Path(dir_okay=False, path_type=Path),
        help="Private key for an SSH remote (its text is kept in the secret store).",
    ),
)


@click.group(name="git")
def git_group() -> None:
    """Version control of the project: status, pipeline-aware diffs and merges, branches,
    remotes, releases and their deployments."""


# -- repositories --------------------------------------------------------------------------
@git_group.command(name="init")
@click.option("--branch", default="main", show_default=True, help="The first branch.")
@click.pass_obj
def git_init(ctx: Context, branch: str) -> None:
    """Make the project folder a Git repository."""
    with reported(ctx):
        made = _vcs(ctx).init(branch)
    click.echo(f"initialized a Git repository in {made['root']} (branch {made['branch']})")


@git_group.command(name="clone")
@click.argument("url")
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@click.option("--branch", default=None, help="The branch to check out.")
@with_options(*credential_options)
@click.pass_obj
def git_clone(
    ctx: Context,
    url: str,
    dest: Path,
    branch: str | None,
    username: str | None,
    token_env: str | None,
    ssh_key_file: Path | None,
) -> None:
    """Clone a repository into DEST, keeping its credentials in the secret store."""
    token = _secret_from_env(token_env, "--token-env")
    with reported(ctx):
        done = Vcs.clone(
            url,
            dest,
            username=username,
            token=token,
            ssh_key=_key_file(ssh_key_file),
            branch=branch,
        )
    where = f"; project in {done['project']}" if done["project"] else "; it holds no project"
    click.echo(f"cloned into {done['root']} (branch {done['branch']}){where}")


@git_group.command(name="remote")
@click.argument("url", required=False)
@click.option("--name", default="origin", show_default=True, help="The remote's name.")
@with_options(*credential_options)
@click.pass_obj
def git_remote(
    ctx: Context,
    url: str | None,
    name: str,
    username: str | None,
    token_env: str | None,
    ssh_key_file: Path | None,
) -> None:
    """Set a remote's URL and credentials; without URL, list the remotes."""
    token = _secret_from_env(token_env, "--token-env")
    with reported(ctx):
        vcs = _vcs(ctx)
        if url is None:
            remotes = vcs.remotes()
        else:
            remotes = [
                vcs.set_remote(
                    url,
                    name=name,
                    username=username,
                    token=token,
                    ssh_key=_key_file(ssh_key_file),
                )
            ]
    if not remotes:
        click.echo("no remote: prophecy git remote URL")
    for remote in remotes:
        held = [k for k in ("token", "ssh_key") if remote["credentials"][k]]
        user = remote["credentials"]["username"]
        creds = ", ".join(held + ([f"user {user}"] if user else [])) or "no credentials"
        click.echo(f"{remote['name']}  {remote['url']}  ({creds})")


# -- status and diff -----------------------------------------------------------------------
@git_group.command(name="status")
@json_format
@click.pass_obj
def git_status(ctx: Context, fmt: str) -> None:
    """The branch and the project's changes, by part of the project."""
    with reported(ctx):
        status = _vcs(ctx).status()
    if fmt == "json":
        echo_json(status)
        return
    line = f"on branch {status['branch'] or '(no branch)'}"
    if status["upstream"]:
        line += f", {status['ahead']} ahead and {status['behind']} behind {status['upstream']}"
    click.echo(line)
    if status["merging"]:
        click.echo("a merge is in progress: prophecy git merge --resolve … or --abort")
    if not status["changes"]:
        click.echo("nothing to commit")
        return
    group = None
    for change in status["changes"]:
        if change["group"] != group:
            group = change["group"]
            click.echo(f"{group}:")
        renamed = f" (from {change['from']})" if change.get("from") else ""
        click.echo(f"  {change['status']:<11}{change['path']}{renamed}")


def _print_diff(ctx: Context, rev: str | None, path: str | None, fmt: str) -> None:
    with reported(ctx):
        entries = _vcs(ctx).file_diffs(rev, path)
    if fmt == "json":
        echo_json([entry.to_dict() for entry in entries])
        return
    if not entries:
        click.echo("no changes")
    for entry in entries:
        if entry.pipeline is not None:
            click.echo(f"pipeline {entry.pipeline.name} ({entry.path})")
            click.echo(render_diff(entry.pipeline))
        else:
            click.echo(entry.patch or "", nl=False)


diff_arguments = (
    click.argument("rev", required=False),
    click.option("--path", default=None, help="Only this file or folder of the project."),
    json_format,
)


@git_group.command(name="diff")
@with_options(*diff_arguments)
@click.pass_obj
def git_diff(ctx: Context, rev: str | None, path: str | None, fmt: str) -> None:
    """What changed since REV (default: the last commit): gems and connections of each
    pipeline, lines of any other file."""
    _print_diff(ctx, rev, path, fmt)


@click.command(name="diff")
@with_options(*diff_arguments)
@click.pass_obj
def diff_alias(ctx: Context, rev: str | None, path: str | None, fmt: str) -> None:
    """What changed since REV (default: the last commit), as `prophecy git diff`."""
    _print_diff(ctx, rev, path, fmt)


# -- commits and branches ------------------------------------------------------------------
def _author(text: str | None) -> tuple[str | None, str | None]:
    if text is None:
        return None, None
    name, _, email = text.partition("<")
    if not email.endswith(">") or not name.strip():
        raise click.BadParameter("write it as 'Name <email>'", param_hint="--author")
    return name.strip(), email[:-1].strip()


@git_group.command(name="commit")
@click.option("-m", "--message", required=True, help="The commit message.")
@click.option("--author", default=None, metavar="'NAME <EMAIL>'", help="Who wrote it.")
@click.argument("paths", nargs=-1)
@click.pass_obj
def git_commit(ctx: Context, message: str, author: str | None, paths: tuple[str, ...]) -> None:
    """Commit the project's changes, or only PATHS (files or folders of the project)."""
    name, email = _author(author)
    with reported(ctx):
        done = _vcs(ctx).commit(message, list(paths) or None, name, email)
    count = len(done["files"])
    click.echo(f"committed {_short(done['commit'])}: {done['message']} ({count} files)")


@git_group.command(name="branch")
@click.argument("name", required=False)
@click.option("--start", default=None, help="Where the new branch starts (default: HEAD).")
@click.option("--switch", "switch_to", is_flag=True, help="Switch to the new branch.")
@json_format
@click.pass_obj
def git_branch(
    ctx: Context, name: str | None, start: str | None, switch_to: bool, fmt: str
) -> None:
    """List the branches, or create NAME (and switch to it with --switch)."""
    with reported(ctx):
        vcs = _vcs(ctx)
        if name is not None:
            made = vcs.create_branch(name, start)
            click.echo(f"created branch {name} at {_short(made['commit'])}")
            if switch_to:
                vcs.switch(name)
                click.echo(f"switched to {name}")
            return
        listed = vcs.branches()
    if fmt == "json":
        echo_json(listed)
        return
    for branch in listed["branches"]:
        mark = "*" if not branch["remote"] and branch["name"] == listed["current"] else " "
        click.echo(f"{mark} {branch['name']:<30} {_short(branch['commit'])}")


@git_group.command(name="switch")
@click.argument("name")
@click.pass_obj
def git_switch(ctx: Context, name: str) -> None:
    """Check out another branch (refused while the project has uncommitted changes)."""
    with reported(ctx):
        done = _vcs(ctx).switch(name)
    click.echo(f"switched to {done['current']} at {_short(done['commit'])}")


# -- remotes -------------------------------------------------------------------------------
@git_group.command(name="pull")
@click.option("--remote", default="origin", show_default=True)
@click.pass_obj
def git_pull(ctx: Context, remote: str) -> None:
    """Fetch and merge the current branch's counterpart on the remote (pipelines gem by
    gem)."""
    with reported(ctx):
        done = _vcs(ctx).pull(remote)
    _print_merge(done, f"pulled {done['source']}", done["source"])


@git_group.command(name="push")
@click.option("--remote", default="origin", show_default=True)
@click.option("--branch", default=None, help="The branch to push (default: the current one).")
@click.pass_obj
def git_push(ctx: Context, remote: str, branch: str | None) -> None:
    """Push a branch and make the remote's its upstream."""
    with reported(ctx):
        done = _vcs(ctx).push(remote, branch)
    click.echo(f"pushed {done['branch']} to {done['remote']} ({_short(done['commit'])})")


# -- merges --------------------------------------------------------------------------------
def _choices(specs: Sequence[str]) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """``FILE:PATH=side`` (one conflict of a pipeline) and ``FILE=side`` (a whole file)."""
    choices: dict[str, dict[str, Any]] = {}
    text: dict[str, str] = {}
    for spec in specs:
        target, sep, side = spec.rpartition("=")
        if not sep or side not in ("ours", "theirs", "working") or not target:
            raise click.BadParameter(
                f"{spec!r}: write FILE:PATH=ours|theirs or FILE=ours|theirs",
                param_hint="--resolve",
            )
        file, colon, path = target.partition(":")
        if colon:
            choices.setdefault(file, {})[path] = side
        else:
            text[file] = side
    return choices, text


def _value(value: Any) -> str:
    shown = json.dumps(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def _print_merge(done: dict[str, Any], what: str, branch: str | None) -> None:
    if done["merged"]:
        how = (
            "already up to date"
            if done.get("up_to_date")
            else "fast-forward"
            if done.get("fast_forward")
            else "merged"
        )
        click.echo(f"{what}: {how} ({_short(done['commit'])})")
        return
    for entry in done["conflicts"]:
        click.echo(f"conflicts in {entry['path']} (pipeline {entry['pipeline']}):")
        for conflict in entry["conflicts"]:
            click.echo(
                f"  {conflict['path']}: {conflict['reason']} "
                f"(ours {_value(conflict['ours'])}, theirs {_value(conflict['theirs'])})"
            )
    for path in done["text_conflicts"]:
        click.echo(f"conflict in {path}")
    again = branch or "BRANCH"
    click.echo(
        f"resolve: prophecy git merge {again} --resolve FILE:PATH=ours|theirs "
        "(FILE=ours|theirs for a whole file); or prophecy git merge --abort"
    )
    sys.exit(1)


@git_group.command(name="merge")
@click.argument("branch", required=False)
@click.option(
    "--resolve",
    "resolves",
    multiple=True,
    metavar="FILE:PATH=SIDE",
    help="Settle a conflict: FILE:PATH=ours|theirs for a pipeline's conflict at PATH, "
    "FILE=ours|theirs for a whole file.",
)
@click.option("--abort", is_flag=True, help="Undo the merge in progress.")
@click.pass_obj
def git_merge(ctx: Context, branch: str | None, resolves: tuple[str, ...], abort: bool) -> None:
    """Merge BRANCH into the current branch, pipelines gem by gem; with --resolve, settle
    the conflicts of the merge in progress (starting it first if there is none)."""
    choices, text = _choices(resolves)
    with reported(ctx):
        vcs = _vcs(ctx)
        if abort:
            vcs.abort_merge()
            click.echo("merge aborted")
            return
        merging = vcs.status()["merging"]
        if not merging:
            if branch is None:
                raise click.UsageError("name the BRANCH to merge")
            done = vcs.merge(branch)
            if done["merged"] or not resolves:
                _print_merge(done, f"merge of {branch}", branch)
                return
        elif not resolves:
            _print_merge(vcs.merge_state(), "merge", branch)
            return
        done = vcs.resolve_merge(choices, text)
    _print_merge(done, "merge resolved", branch)


# -- releases ------------------------------------------------------------------------------
@git_group.command(name="release")
@click.argument("version")
@click.option("-m", "--notes", default="", help="Release notes.")
@click.option("--push", is_flag=True, help="Push the release's tag to the remote.")
@click.option("--remote", default="origin", show_default=True)
@click.pass_obj
def git_release(ctx: Context, version: str, notes: str, push: bool, remote: str) -> None:
    """Tag the current commit as release VERSION of the project (<project>/<VERSION>)."""
    with reported(ctx):
        made = _vcs(ctx).release(version, notes, push=push, remote=remote)
    pushed = f", pushed to {remote}" if made["pushed"] else ""
    click.echo(f"released {made['tag']} at {_short(made['commit'])}{pushed}")


@git_group.command(name="releases")
@json_format
@click.pass_obj
def git_releases(ctx: Context, fmt: str) -> None:
    """The project's releases, newest first."""
    with reported(ctx):
        found = _vcs(ctx).releases()
    if fmt == "json":
        echo_json(found)
        return
    if not found:
        click.echo("no release yet: prophecy git release VERSION -m NOTES")
    for release in found:
        notes = release["notes"].splitlines()[0] if release["notes"] else ""
        click.echo(
            f"{release['version']:<12} {_short(release['commit'])}  {release['created']}  {notes}"
        )


root_option = click.option(
    "--root",
    default=None,
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="The folder Automate serves (its run store holds the deployments); default: the "
    "project folder.",
)


def _deploy(ctx: Context, version: str, fabric: str, root: Path | None, rollback: bool) -> None:
    from prophecy_jupyter.automate.service import Automate
    from prophecy_jupyter.workspace import relative_name

    with reported(ctx):
        project = ctx.project
        automate = Automate(root or project.root)
        try:
            name = relative_name(automate.root, project.root)
        except ValueError:
            raise click.BadParameter(
                f"the project {project.root} is not inside {automate.root}", param_hint="--root"
            ) from None
        vcs = _vcs(ctx)
        action = vcs.rollback if rollback else vcs.deploy
        made: Deployment = action(version, fabric, automate, name)
    verb = "rolled back" if rollback else "deployed"
    commit = _short(made.manifest.get("commit"))
    click.echo(f"{verb} fabric '{made.fabric}' to release {version} ({commit}): {made.id}")


@git_group.command(name="deploy")
@click.argument("version")
@click.option("--fabric", required=True, help="The fabric the release's schedules run on.")
@root_option
@click.pass_obj
def git_deploy(ctx: Context, version: str, fabric: str, root: Path | None) -> None:
    """Deploy release VERSION to a fabric: its files, as tagged, become what the fabric's
    schedules run."""
    _deploy(ctx, version, fabric, root, rollback=False)


@git_group.command(name="rollback")
@click.argument("version")
@click.option("--fabric", required=True, help="The fabric to roll back.")
@root_option
@click.pass_obj
def git_rollback(ctx: Context, version: str, fabric: str, root: Path | None) -> None:
    """Deploy an earlier release VERSION again."""
    _deploy(ctx, version, fabric, root, rollback=True)


def register(group: click.Group) -> None:
    """Add `prophecy git` and `prophecy diff` to the `prophecy` group."""
    group.add_command(git_group)
    group.add_command(diff_alias)

"""Directory: the files and folders at a location, as rows a pipeline can filter and join
(e.g. to pick which files a later run reads)."""

from __future__ import annotations

from pydantic import Field

from prophecy_jupyter.errors import ProphecyError
from prophecy_jupyter.gems.base import GemContext, GemKind, GemOutput, LocalPath, Properties
from prophecy_jupyter.gems.sources import CONNECTION_NAME, gem_store


class DirectoryProps(Properties):
    path: str = Field(
        default=".",
        min_length=1,
        description="Folder to list, relative to the project folder (or to the connection's "
        "root); . is the root itself",
    )
    connection: str | None = Field(
        default=None,
        pattern=CONNECTION_NAME,
        description="Name of a files connection (S3, GCS, Azure, SFTP, a folder) to list; "
        "empty lists the project's own files",
    )
    recursive: bool = Field(
        default=False, description="List every sub-folder's content too, not only the folder's"
    )
    pattern: str | None = Field(
        default=None,
        min_length=1,
        description="Glob the names must match, e.g. *.csv (default: every name)",
    )


class Directory(GemKind):
    kind = "Directory"
    category = "Source/Target"
    summary = "List files and folders (name, path, size, modified, type) locally or remotely"
    Props = DirectoryProps
    min_inputs = 0
    max_inputs = 0

    def build(self, props: DirectoryProps, ctx: GemContext) -> GemOutput | None:
        from prophecy_jupyter.connectors.files import list_entries

        store = gem_store(ctx, props.connection, props.path)
        if store is None:
            return None
        try:
            with store:
                listing = list_entries(store, props.path, props.recursive, props.pattern)
        except ProphecyError as exc:
            ctx.issue("unreadable_source", str(exc), "path")
            return None
        return ctx.fetched(listing, props.model_dump_json(), "path")

    def local_paths(self, props: DirectoryProps) -> list[LocalPath]:
        return [LocalPath("path", props.path, "list")] if props.connection is None else []


GEMS: list[type[GemKind]] = [Directory]

"""Files in and out of a pipeline through fsspec: local folders, S3, GCS, Azure and SFTP.

A ``files`` connection names a protocol, where its root is (a folder, a bucket and prefix, a
container) and how to sign in; a gem names a path inside that root. Reads return one Arrow
table (a glob reads every matching file and unions them); writes take one and never leave a
half-written file behind: on a file system that can rename (local, SFTP) the file is written
beside its final name and renamed over it, and an object store receives the complete
object in a single upload, which it publishes only once whole.

Every failure is an `EngineError` (or a `Conflict`) of one line, with the connection's
secret values scrubbed from it: backends put URLs, arguments and server replies in their
messages, and some of those carry credentials.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
import io
import json
import os
import posixpath
import re
import tempfile
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from prophecy_jupyter.errors import Conflict, EngineError, ProphecyError

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

    from prophecy_jupyter.connections import ResolvedConnection

FileFormat = Literal["csv", "parquet", "json", "excel", "xml"]
WriteMode = Literal["overwrite", "append", "error_if_exists", "merge"]
PROTOCOLS = ("file", "s3", "gcs", "abfs", "sftp")
OBJECT_STORES = frozenset({"s3", "gcs", "abfs"})
"""Protocols without a rename: a write is one upload of the complete object."""
DEFAULT_TIMEOUT = 30.0
"""Seconds to wait for a server to answer before the read or write fails."""
SECRET_NAMES: Mapping[str, tuple[str, ...]] = {
    "file": (),
    "s3": ("key", "secret", "token"),
    "gcs": ("token",),
    "abfs": ("account_key", "sas_token", "connection_string", "client_secret"),
    "sftp": ("password", "private_key", "passphrase"),
}
"""The secrets each protocol understands (a connection declares those it uses)."""
PACKAGES = {"s3": "s3fs", "gcs": "gcsfs", "abfs": "adlfs", "sftp": "paramiko"}
XML_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
MAGIC = re.compile(r"[*?\[]")


# -- options ------------------------------------------------------------------------------
@dataclass(frozen=True)
class FileOptions:
    """How a file's rows are laid out, beyond its format."""

    header: bool = True
    """csv and excel: the first line holds the column names."""
    delimiter: str = ","
    sheet: str | None = None
    """excel: the worksheet (reads default to the first, writes to ``Sheet1``)."""
    row_path: str | None = None
    """xml: an XPath selecting the row elements (default: every child of the root)."""
    root_tag: str = "rows"
    row_tag: str = "row"


# -- the store ----------------------------------------------------------------------------
@dataclass
class FileStore:
    """An fsspec file system with the root that paths are relative to."""

    fs: AbstractFileSystem
    root: str
    protocol: str
    label: str
    """How messages name the store: ``connection 'lake'`` or ``the project folder``."""
    secrets: tuple[str, ...] = field(default=(), repr=False)
    timeout: float | None = None
    """Seconds a metadata call may take on an asynchronous backend, retries included."""

    def close(self) -> None:
        """Let go of the session the store holds open (an SSH connection)."""
        client = getattr(self.fs, "client", None) if self.protocol == "sftp" else None
        if client is not None:
            client.close()

    def __enter__(self) -> FileStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, method: str, *args: Any, slow: bool = False, **kwargs: Any) -> Any:
        """``fs.<method>(…)`` bounded by the timeout on the asynchronous backends, whose own
        retries could otherwise go on for minutes against an endpoint that is down. A
        ``slow`` call (a listing that may walk a whole bucket) gets ten times as long."""
        coroutine = getattr(self.fs, f"_{method}", None)
        if self.timeout and getattr(self.fs, "async_impl", False) and coroutine is not None:
            from fsspec.asyn import sync

            deadline = self.timeout * (10 if slow else 1)
            return sync(self.fs.loop, coroutine, *args, timeout=deadline, **kwargs)
        return getattr(self.fs, method)(*args, **kwargs)

    def location(self, path: str) -> str:
        """The full fsspec path of ``path``, which must stay inside the root."""
        return _under(self.root, path)

    def relative(self, full: str) -> str:
        """``full`` (as the file system spells it) relative to the root."""
        root = self.root.rstrip("/")
        if root and (full == root or full.startswith(root + "/")):
            return full[len(root) :].lstrip("/")
        return full

    def scrub(self, text: str) -> str:
        return scrub(text, self.secrets)

    def cache_identity(self) -> str:
        """What distinguishes this store's files from another's, secrets hashed."""
        digest = hashlib.sha256("\0".join(self.secrets).encode()).hexdigest()[:16]
        return f"{self.protocol}\0{self.label}\0{self.root}\0{digest}"


def relative_path_problem(path: str) -> str | None:
    """Why ``path`` cannot name a file inside a store's root, or ``None``."""
    if "\x00" in path:
        return "the path contains a NUL character"
    posix = path.replace("\\", "/")
    if posix.startswith("/") or re.match(r"^[A-Za-z]:", posix) or "://" in posix:
        return f"path {path!r} must be relative to the connection's root"
    if ".." in PurePosixPath(posix).parts:
        return f"path {path!r} leaves the connection's root ('..')"
    return None


def project_path_problem(root: Path, path: str) -> str | None:
    """Why a local ``path`` is not a file of the project at ``root``, or ``None``: the
    same rule as every other path a request names (no ``..``, resolving inside the folder,
    symbolic links followed)."""
    if "\x00" in path:
        return "the path contains a NUL character"
    scheme, sep, _ = path.partition("://")
    if sep and scheme.isalnum() and scheme.lower() != "file":
        return f"{path!r} is remote: name a files connection to read or write it"
    local = path.removeprefix("file://")
    outside = ".." in Path(local).parts
    if not outside:
        try:
            outside = not (root / local).resolve().is_relative_to(root.resolve())
        except (OSError, RuntimeError, ValueError):
            outside = True
    return f"{path!r} is outside the project folder" if outside else None


def scrub(text: str, secrets: tuple[str, ...] | list[str]) -> str:
    """``text`` on one line with every secret value (and its URL-encoded form) masked."""
    from urllib.parse import quote, quote_plus

    line = " ".join(text.split())
    for secret in sorted(secrets, key=len, reverse=True):
        if not secret:
            continue
        for spelling in {secret, quote(secret, safe=""), quote_plus(secret)}:
            line = line.replace(spelling, "***")
    return line


def local_store(root: Path) -> FileStore:
    """The project folder as a store, for files a gem names without a connection."""
    from fsspec.implementations.local import LocalFileSystem

    return FileStore(LocalFileSystem(), root.resolve().as_posix(), "file", "the project folder")


def open_store(connection: ResolvedConnection, base: Path | None = None) -> FileStore:
    """The file system a ``files`` connection describes; a relative local root is taken
    inside ``base`` (the project folder)."""
    if connection.kind != "files":
        raise EngineError(
            f"connection '{connection.name}' is a {connection.kind} connection, "
            "not a files connection"
        )
    protocol, kwargs = filesystem_arguments(connection, base)
    secrets = tuple(v for v in connection.secrets.values() if v)
    label = f"connection '{connection.name}'"
    try:
        fs = _filesystem_class(protocol)(**kwargs)
    except ImportError:
        package = PACKAGES.get(protocol, protocol)
        raise EngineError(
            f"{label}: the {protocol} protocol needs the {package} package (pip install {package})"
        ) from None
    except ProphecyError:
        raise
    except Exception as exc:
        raise EngineError(scrub(f"{label}: cannot connect: {_reason(exc)}", secrets)) from None
    timeout = float(connection.option("timeout", DEFAULT_TIMEOUT))
    return FileStore(fs, _store_root(connection, base), protocol, label, secrets, timeout)


def _under(root: str, path: str) -> str:
    """``path`` joined to ``root``; it must stay inside it."""
    problem = relative_path_problem(path)
    if problem is not None:
        raise EngineError(problem)
    cleaned = posixpath.normpath(path.replace("\\", "/")) if path else "."
    if cleaned == ".":
        return root
    return f"{root.rstrip('/')}/{cleaned}" if root else cleaned


SPARK_SCHEMES = {"s3": "s3a", "gcs": "gs", "sftp": "sftp"}
"""The Hadoop file system scheme Spark reads each remote protocol through."""


def connection_url(
    connection: ResolvedConnection, path: str, base: Path | None = None, *, spark: bool = False
) -> str | None:
    """Where ``path`` of a ``files`` connection is, as a URL another program opens with its
    own credentials: fsspec's (pandas) or, with ``spark``, Hadoop's. Nothing secret is part
    of it, and nothing is contacted. ``None`` where no such URL can be told from the options
    (an Azure container without its account's name)."""
    protocol = str(connection.option("protocol", "file")).lower()
    location = _under(_store_root(connection, base), path)
    if protocol == "file":
        return location
    if protocol == "sftp":
        host, port = connection.option("host"), connection.option("port")
        where = f"{host}:{port}" if port else f"{host}"
        return f"sftp://{where}/{location.lstrip('/')}"
    if protocol == "abfs":
        if not spark:
            return f"abfs://{location}"
        account = connection.option("account_name")
        if not account:
            return None
        container, _, rest = location.partition("/")
        return f"abfss://{container}@{account}.dfs.core.windows.net/{rest}"
    return f"{SPARK_SCHEMES.get(protocol, protocol) if spark else protocol}://{location}"


def _filesystem_class(protocol: str) -> type[AbstractFileSystem]:
    """The fsspec implementation of a protocol; SFTP is always paramiko's, whichever other
    SSH file system happens to be installed and registered under the same name."""
    if protocol == "sftp":
        from fsspec.implementations.sftp import SFTPFileSystem

        class ClosingSFTPFileSystem(SFTPFileSystem):  # type: ignore[misc]
            """Closes its SSH client when signing in fails, which paramiko leaves open."""

            def _connect(self) -> None:
                try:
                    super()._connect()
                except BaseException:
                    client = getattr(self, "client", None)
                    if client is not None:
                        client.close()
                    raise

        return ClosingSFTPFileSystem
    import fsspec

    return fsspec.get_filesystem_class(protocol)  # type: ignore[no-any-return]


def filesystem_arguments(
    connection: ResolvedConnection, base: Path | None = None
) -> tuple[str, dict[str, Any]]:
    """The fsspec protocol and constructor arguments of a ``files`` connection.

    Options carry what may be committed (host, bucket, region…), secrets what may not; each
    secret goes to the one constructor argument that needs it.
    """
    protocol = str(connection.option("protocol", "file")).lower()
    if protocol not in PROTOCOLS:
        raise EngineError(
            f"connection '{connection.name}': protocol must be one of {', '.join(PROTOCOLS)}, "
            f"not {protocol!r}"
        )
    builders: dict[str, Callable[[ResolvedConnection, float], dict[str, Any]]] = {
        "file": lambda _c, _t: {},
        "s3": _s3_arguments,
        "gcs": _gcs_arguments,
        "abfs": _abfs_arguments,
        "sftp": _sftp_arguments,
    }
    timeout = float(connection.option("timeout", DEFAULT_TIMEOUT))
    kwargs = builders[protocol](connection, timeout)
    if protocol != "file":
        # A connection is opened afresh for each use: a cached instance would outlive a
        # change of credentials and hold a dead SFTP session.
        kwargs["skip_instance_cache"] = True
    return protocol, kwargs


def _store_root(connection: ResolvedConnection, base: Path | None) -> str:
    protocol = str(connection.option("protocol", "file")).lower()
    prefix = str(connection.option("root", "") or "").strip()
    if protocol == "file":
        folder = Path(prefix or ".")
        if not folder.is_absolute():
            folder = (base or Path.cwd()) / folder
        return folder.resolve().as_posix()
    if protocol == "sftp":
        return prefix.rstrip("/") if prefix not in {"", "/"} else prefix
    key = "container" if protocol == "abfs" else "bucket"
    bucket = str(connection.option(key) or connection.option("bucket") or "").strip("/")
    if not bucket:
        raise EngineError(f"connection '{connection.name}' needs a {key} option")
    return "/".join(p for p in (bucket, prefix.strip("/")) if p)


def _s3_arguments(connection: ResolvedConnection, timeout: float) -> dict[str, Any]:
    secrets = connection.secrets
    kwargs: dict[str, Any] = {
        "config_kwargs": {
            "connect_timeout": timeout,
            "read_timeout": timeout,
            "retries": {"max_attempts": int(connection.option("retries", 3))},
        }
    }
    if connection.option("endpoint_url"):
        kwargs["endpoint_url"] = str(connection.option("endpoint_url"))
    if connection.option("region"):
        kwargs["client_kwargs"] = {"region_name": str(connection.option("region"))}
    if connection.option("anonymous"):
        kwargs["anon"] = True
    for name in ("key", "secret", "token"):
        if secrets.get(name):
            kwargs[name] = secrets[name]
    return kwargs


def _gcs_arguments(connection: ResolvedConnection, timeout: float) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"timeout": timeout, "requests_timeout": timeout}
    if connection.option("project"):
        kwargs["project"] = str(connection.option("project"))
    if connection.option("endpoint_url"):
        kwargs["endpoint_url"] = str(connection.option("endpoint_url"))
    token = connection.secrets.get("token")
    if connection.option("anonymous"):
        kwargs["token"] = "anon"
    elif token:
        # A service account's JSON key, as downloaded from the console.
        try:
            kwargs["token"] = json.loads(token)
        except ValueError:
            raise EngineError(
                f"connection '{connection.name}': the token secret must be a service "
                "account's JSON key"
            ) from None
    return kwargs


def _abfs_arguments(connection: ResolvedConnection, timeout: float) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"connection_timeout": timeout, "read_timeout": timeout}
    for name in ("account_name", "account_host", "tenant_id", "client_id"):
        if connection.option(name):
            kwargs[name] = str(connection.option(name))
    if connection.option("anonymous"):
        kwargs["anon"] = True
    for name in SECRET_NAMES["abfs"]:
        if connection.secrets.get(name):
            kwargs[name] = connection.secrets[name]
    if "account_key" in kwargs and "account_name" in kwargs:
        # Named, so that the key also signs for an endpoint whose host does not carry the
        # account's name (a private endpoint, an emulator).
        from azure.core.credentials import AzureNamedKeyCredential

        kwargs["credential"] = AzureNamedKeyCredential(
            kwargs["account_name"], kwargs.pop("account_key")
        )
    return kwargs


def _sftp_arguments(connection: ResolvedConnection, timeout: float) -> dict[str, Any]:
    host = connection.option("host")
    if not host:
        raise EngineError(f"connection '{connection.name}' needs a host option")
    secrets = connection.secrets
    kwargs: dict[str, Any] = {
        "host": str(host),
        "port": int(connection.option("port", 22)),
        "timeout": timeout,
        "banner_timeout": timeout,
        "auth_timeout": timeout,
        # Only the credentials of the connection sign in, never whatever the server's
        # process finds in an agent or in ~/.ssh.
        "look_for_keys": False,
        "allow_agent": False,
    }
    username = secrets.get("username") or connection.option("username")
    if username:
        kwargs["username"] = str(username)
    if secrets.get("password"):
        kwargs["password"] = secrets["password"]
    if secrets.get("private_key"):
        kwargs["pkey"] = _private_key(connection)
    if connection.option("host_key"):
        kwargs["host_key_policy"] = _pinned_host_key(connection)
    return kwargs


def _private_key(connection: ResolvedConnection) -> Any:
    import paramiko

    text = connection.secrets["private_key"]
    passphrase = connection.secrets.get("passphrase") or None
    for key_class in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return key_class.from_private_key(io.StringIO(text), password=passphrase)
        except (paramiko.SSHException, ValueError):
            continue
    raise EngineError(
        f"connection '{connection.name}': the private_key secret is not an OpenSSH or PEM "
        "private key (or its passphrase is wrong)"
    )


def _pinned_host_key(connection: ResolvedConnection) -> Any:
    """A policy accepting only the server key the connection names (``ssh-ed25519 AAAA…``,
    as in ``known_hosts``), rather than trusting any key on first use."""
    import paramiko

    expected = str(connection.option("host_key")).split()
    name = connection.name

    class PinnedHostKey(paramiko.MissingHostKeyPolicy):
        def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
            offered = [key.get_name(), key.get_base64()]
            if offered != expected[:2]:
                raise EngineError(
                    f"connection '{name}': the server's host key ({key.get_name()}) is not "
                    "the host_key the connection names"
                )

    return PinnedHostKey()


# -- failures -----------------------------------------------------------------------------
def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, FileNotFoundError) and not text:
        text = "not found"
    if len(text) > 300:
        text = text[:297] + "…"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@contextmanager
def _failures(store: FileStore, action: str) -> Iterator[None]:
    """Any backend failure inside as one scrubbed `EngineError` line."""
    try:
        yield
    except ProphecyError as exc:
        if isinstance(exc, Conflict):
            raise
        raise EngineError(store.scrub(str(exc))) from None
    except FileNotFoundError as exc:
        raise EngineError(store.scrub(f"{action}: not found in {store.label}: {exc}")) from None
    except TimeoutError:
        raise EngineError(
            f"{action}: {store.label} did not answer within {store.timeout:g} s"
        ) from None
    except Exception as exc:
        raise EngineError(store.scrub(f"{action} in {store.label}: {_reason(exc)}")) from None


# -- reading ------------------------------------------------------------------------------
_CACHE: OrderedDict[tuple[object, ...], pa.Table] = OrderedDict()
CACHE_ENTRIES = 8
CACHE_BYTES = 64 * 1024 * 1024
"""Tables up to this size are kept between reads of unchanged files: a pipeline is
compiled on every edit, and a remote file must not be downloaded each time."""


def read_table(
    store: FileStore, path: str, fmt: FileFormat, options: FileOptions = FileOptions()
) -> pa.Table:
    """Every row of the file (or of every file a glob matches) as one Arrow table."""
    with _failures(store, f"cannot read {path!r}"):
        files = _matching_files(store, path)
        key = (store.cache_identity(), fmt, options, tuple(files))
        cached = _CACHE.get(key)
        if cached is not None:
            _CACHE.move_to_end(key)
            return cached
        tables = []
        for name, *_ in files:
            with store.fs.open(name, "rb") as handle:
                data = handle.read()
            tables.append(_parse(fmt, data, options, store.relative(name)))
        table = _union(tables, path)
        if table.nbytes <= CACHE_BYTES:
            _CACHE[key] = table
            while len(_CACHE) > CACHE_ENTRIES:
                _CACHE.popitem(last=False)
        return table


def _matching_files(store: FileStore, path: str) -> list[tuple[str, int, str]]:
    """(path, size, version) of each file ``path`` names: one, or what a glob matches."""
    location = store.location(path)
    if MAGIC.search(path):
        found = store.call("glob", location, detail=True, slow=True)
        assert isinstance(found, dict)
        files = [
            (name, int(info.get("size") or 0), _version(info))
            for name, info in sorted(found.items())
            if info.get("type") != "directory"
        ]
        if not files:
            raise EngineError(f"no file in {store.label} matches {path!r}")
        return files
    info = store.call("info", location)
    if info.get("type") == "directory":
        raise EngineError(f"{path!r} is a folder; name a file, or a glob such as {path}/*")
    return [(location, int(info.get("size") or 0), _version(info))]


def _version(info: Mapping[str, Any]) -> str:
    for key in ("ETag", "etag", "md5Hash", "generation", "mtime", "LastModified", "updated"):
        if info.get(key) is not None:
            return str(info[key])
    return ""


def _union(tables: list[pa.Table], path: str) -> pa.Table:
    if len(tables) == 1:
        return tables[0]
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise EngineError(f"the files {path!r} matches have different columns: {exc}") from None


def _parse(fmt: FileFormat, data: bytes, options: FileOptions, name: str) -> pa.Table:
    try:
        return _READERS[fmt](data, options)
    except ProphecyError:
        raise
    except Exception as exc:
        raise EngineError(f"{name} is not a readable {fmt} file: {_reason(exc)}") from None


def _read_csv(data: bytes, options: FileOptions) -> pa.Table:
    if len(options.delimiter) != 1:
        raise EngineError("a csv delimiter read through a connector is one character")
    table = pacsv.read_csv(
        io.BytesIO(data),
        read_options=pacsv.ReadOptions(autogenerate_column_names=not options.header),
        parse_options=pacsv.ParseOptions(delimiter=options.delimiter),
        # An empty field is NULL and a quoted empty one ("") the empty string: how the
        # writer below (and DuckDB) tell them apart.
        convert_options=pacsv.ConvertOptions(
            strings_can_be_null=True, quoted_strings_can_be_null=False
        ),
    )
    if not options.header:
        # As DuckDB names them, so a file reads the same whichever way it is reached.
        table = table.rename_columns([f"column{i}" for i in range(table.num_columns)])
    return table


def _read_json(data: bytes, options: FileOptions) -> pa.Table:
    """A JSON array of objects, one object, or newline-delimited objects."""
    head = data.lstrip()[:1]
    if head in {b"[", b"{"}:
        try:
            parsed = json.loads(data)
        except ValueError:
            parsed = None  # several objects, one per line
        if isinstance(parsed, list):
            return pa.Table.from_pylist(
                [r if isinstance(r, dict) else {"value": r} for r in parsed]
            )
        if isinstance(parsed, dict):
            return pa.Table.from_pylist([parsed])
    return pajson.read_json(io.BytesIO(data))


def _read_parquet(data: bytes, options: FileOptions) -> pa.Table:
    return pq.read_table(io.BytesIO(data))


def _read_excel(data: bytes, options: FileOptions) -> pa.Table:
    import openpyxl

    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        if options.sheet is None:
            sheet = book.worksheets[0]
        elif options.sheet in book.sheetnames:
            sheet = book[options.sheet]
        else:
            raise EngineError(
                f"the workbook has no sheet {options.sheet!r} "
                f"(sheets: {', '.join(book.sheetnames)})"
            )
        rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    finally:
        book.close()
    while rows and all(v is None for v in rows[-1]):
        rows.pop()
    width = max((len(r) for r in rows), default=0)
    rows = [r + [None] * (width - len(r)) for r in rows]
    if options.header and rows:
        names = _unique_names([None if v is None else str(v) for v in rows[0]])
        rows = rows[1:]
    else:
        names = [f"column{i}" for i in range(width)]
    columns = [_column([r[i] for r in rows]) for i in range(width)]
    return pa.table(columns, names=names)


def _unique_names(names: list[str | None]) -> list[str]:
    seen: set[str] = set()
    result = []
    for i, name in enumerate(names):
        base = name.strip() if name and name.strip() else f"column{i}"
        candidate, n = base, 1
        while candidate.lower() in seen:
            candidate, n = f"{base}_{n}", n + 1
        seen.add(candidate.lower())
        result.append(candidate)
    return result


def _column(values: list[Any]) -> pa.Array:
    """One column of cells; a column mixing kinds of value (numbers and text) is text."""
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
        return pa.array([None if v is None else str(v) for v in values], pa.string())


def _read_xml(data: bytes, options: FileOptions) -> pa.Table:
    """Rows are elements (``row_path``, else the root's children); columns are their
    attributes and the text of their child elements. Entities are not expanded and nothing
    is fetched over the network while parsing."""
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    root = etree.fromstring(data, parser)
    if options.row_path:
        try:
            found = root.xpath(options.row_path)
        except etree.XPathError as exc:
            raise EngineError(
                f"row_path {options.row_path!r} is not a valid XPath: {exc}"
            ) from None
        if not isinstance(found, list):
            raise EngineError(f"row_path {options.row_path!r} selects no elements")
        rows = [e for e in found if isinstance(e, etree._Element)]
    else:
        rows = [e for e in root if isinstance(e.tag, str)]
    records: list[dict[str, str | None]] = []
    names: dict[str, None] = {}
    for element in rows:
        record: dict[str, str | None] = {}
        for key, value in element.attrib.items():
            record[etree.QName(key).localname] = value
        for child in element:
            if isinstance(child.tag, str):
                record[etree.QName(child).localname] = "".join(child.itertext())
        names.update(dict.fromkeys(record))
        records.append(record)
    columns = [_typed_text([r.get(n) for r in records]) for n in names]
    return pa.table(columns, names=list(names))


def _typed_text(values: list[str | None]) -> pa.Array:
    """Text values as integers, numbers or booleans when every one of them is one."""
    present = [v.strip() for v in values if v is not None and v.strip() != ""]
    clean = [None if v is None or v.strip() == "" else v.strip() for v in values]
    if present:
        for cast in (int, float):
            try:
                return pa.array([None if v is None else cast(v) for v in clean])
            except (ValueError, OverflowError, pa.ArrowInvalid):
                continue
        if all(v.lower() in {"true", "false"} for v in present):
            return pa.array([None if v is None else v.lower() == "true" for v in clean])
    return pa.array(values, pa.string())


_READERS: dict[str, Callable[[bytes, FileOptions], pa.Table]] = {
    "csv": _read_csv,
    "json": _read_json,
    "parquet": _read_parquet,
    "excel": _read_excel,
    "xml": _read_xml,
}


# -- writing ------------------------------------------------------------------------------
def write_table(
    store: FileStore,
    path: str,
    fmt: FileFormat,
    table: pa.Table,
    mode: WriteMode = "overwrite",
    options: FileOptions = FileOptions(),
) -> int:
    """Write ``table`` as the file ``path``; returns the rows written.

    ``append`` rewrites the file with its old rows followed by the new ones (a file has no
    cheaper append that stays atomic); ``error_if_exists`` raises `Conflict` when the file
    is there. Whatever fails, the old file (or none) is what remains.
    """
    if mode == "merge":
        raise EngineError("merge is not available for files written through a connector")
    with _failures(store, f"cannot write {path!r}"):
        location = store.location(path)
        exists = store.call("exists", location)
        if exists and mode == "error_if_exists":
            raise Conflict(f"file {path} already exists (mode error_if_exists)")
        rows = int(table.num_rows)
        if exists and mode == "append":
            table = _appended(read_table(store, path, fmt, options), table, path)
        _put(store, location, lambda sink: serialise(table, fmt, sink, options))
        _CACHE.clear()
        return rows


def _appended(old: pa.Table, new: pa.Table, path: str) -> pa.Table:
    try:
        return pa.concat_tables([old, new.select(old.column_names)], promote_options="permissive")
    except (KeyError, pa.ArrowInvalid, pa.ArrowTypeError):
        raise EngineError(
            f"cannot append to {path!r}: it has columns ({', '.join(old.column_names)}), "
            f"the rows have ({', '.join(new.column_names)})"
        ) from None


def _put(store: FileStore, location: str, serialise_into: Callable[[BinaryIO], None]) -> None:
    fs = store.fs
    if store.protocol in OBJECT_STORES:
        # Serialised locally first: an upload is then one complete object or nothing.
        with tempfile.TemporaryDirectory(prefix="prophecy-put-") as folder:
            local = Path(folder) / "object"
            with open(local, "wb") as sink:
                serialise_into(sink)
            fs.put_file(str(local), location)
        return
    parent, name = posixpath.split(location)
    if parent:
        fs.makedirs(parent, exist_ok=True)
    temp = posixpath.join(parent, f".{name}.{uuid.uuid4().hex}.tmp")
    try:
        with fs.open(temp, "wb") as sink:
            serialise_into(sink)
            sink.flush()
            fileno = getattr(sink, "fileno", None)
            if store.protocol == "file" and fileno is not None:
                os.fsync(fileno())
        fs.mv(temp, location)
    finally:
        if fs.exists(temp):
            fs.rm(temp)


def serialise(table: pa.Table, fmt: FileFormat, sink: BinaryIO, options: FileOptions) -> None:
    """Write ``table`` in ``fmt`` to a binary stream."""
    _WRITERS[fmt](table, sink, options)


def table_bytes(table: pa.Table, fmt: FileFormat, options: FileOptions = FileOptions()) -> bytes:
    buffer = io.BytesIO()
    serialise(table, fmt, buffer, options)
    return buffer.getvalue()


def _write_csv(table: pa.Table, sink: BinaryIO, options: FileOptions) -> None:
    pacsv.write_csv(
        _flat(table),
        sink,
        write_options=pacsv.WriteOptions(
            include_header=options.header, delimiter=options.delimiter[:1] or ","
        ),
    )


def _write_parquet(table: pa.Table, sink: BinaryIO, options: FileOptions) -> None:
    pq.write_table(table, sink)


def _write_json(table: pa.Table, sink: BinaryIO, options: FileOptions) -> None:
    """One object per line, as DuckDB writes JSON (and reads it back)."""
    for batch in table.to_batches(max_chunksize=10_000):
        lines = [
            json.dumps(row, default=_json_value, ensure_ascii=False) for row in batch.to_pylist()
        ]
        if lines:
            sink.write(("\n".join(lines) + "\n").encode())


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.timedelta):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"a {type(value).__name__} value cannot be written as JSON")


def _write_excel(table: pa.Table, sink: BinaryIO, options: FileOptions) -> None:
    import openpyxl

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet(options.sheet or "Sheet1")
    flat = _flat(table)
    if options.header:
        sheet.append(flat.column_names)
    for batch in flat.to_batches(max_chunksize=10_000):
        for row in batch.to_pylist():
            sheet.append([_excel_value(v) for v in row.values()])
    book.save(sink)


def _excel_value(value: Any) -> Any:
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        # Excel has no time zones: the instant, in UTC.
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    if isinstance(value, dt.time) and value.tzinfo is not None:
        return value.replace(tzinfo=None)
    if isinstance(value, bytes | uuid.UUID | dt.timedelta):
        return value.hex() if isinstance(value, bytes) else str(value)
    return value


def _write_xml(table: pa.Table, sink: BinaryIO, options: FileOptions) -> None:
    """``<rows><row><column>value</column>…</row>…</rows>``; a NULL is a missing element."""
    from lxml import etree

    flat = _flat(table)
    for tag in (options.root_tag, options.row_tag, *flat.column_names):
        if not XML_NAME.match(tag):
            raise EngineError(f"{tag!r} is not a valid XML element name")
    with etree.xmlfile(sink, encoding="utf-8") as document:
        document.write_declaration()
        with document.element(options.root_tag):
            for batch in flat.to_batches(max_chunksize=10_000):
                for row in batch.to_pylist():
                    element = etree.Element(options.row_tag)
                    for name, value in row.items():
                        if value is not None:
                            etree.SubElement(element, name).text = _xml_text(value)
                    document.write(element)
                    document.write("\n")


def _xml_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _flat(table: pa.Table) -> pa.Table:
    """Nested columns (lists, structs, maps) as JSON text, for the formats of flat cells."""
    nested = [
        i
        for i, f in enumerate(table.schema)
        if pa.types.is_nested(f.type) or pa.types.is_dictionary(f.type)
    ]
    for i in nested:
        name = table.column_names[i]
        column = table.column(i)
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        if pa.types.is_nested(column.type):
            text = [
                None if v is None else json.dumps(v, default=_json_value)
                for v in column.to_pylist()
            ]
            column = pa.chunked_array([pa.array(text, pa.string())])
        table = table.set_column(i, name, column)
    return table


_WRITERS: dict[str, Callable[[pa.Table, BinaryIO, FileOptions], None]] = {
    "csv": _write_csv,
    "json": _write_json,
    "parquet": _write_parquet,
    "excel": _write_excel,
    "xml": _write_xml,
}


# -- listing ------------------------------------------------------------------------------
LISTING_SCHEMA = pa.schema(
    [
        ("name", pa.string()),
        ("path", pa.string()),
        ("size", pa.int64()),
        ("modified", pa.timestamp("us")),
        ("type", pa.string()),
    ]
)


def list_entries(
    store: FileStore, path: str = ".", recursive: bool = False, pattern: str | None = None
) -> pa.Table:
    """The files and folders at ``path`` (the whole tree when ``recursive``) whose names
    match the glob ``pattern``: name, path (relative to the root), size in bytes (none for
    a folder), modification time (UTC) and type ``file`` or ``directory``."""
    with _failures(store, f"cannot list {path!r}"):
        location = store.location(path)
        if not store.call("isdir", location):
            what = "a file" if store.call("exists", location) else "not found"
            raise EngineError(f"{path!r} in {store.label} is not a folder ({what})")
        found = store.call(
            "find",
            location,
            maxdepth=None if recursive else 1,
            withdirs=True,
            detail=True,
            slow=True,
        )
        assert isinstance(found, dict)
        top = location.rstrip("/")
        records = []
        for spelled, info in sorted(found.items()):
            full = spelled.rstrip("/")
            if full == top or full == store.root.rstrip("/"):
                continue
            name = posixpath.basename(full)
            if pattern and not fnmatch.fnmatchcase(name, pattern):
                continue
            folder = info.get("type") == "directory"
            records.append(
                {
                    "name": name,
                    "path": store.relative(full),
                    "size": None if folder else int(info.get("size") or 0),
                    "modified": _modified(info),
                    "type": "directory" if folder else "file",
                }
            )
        return pa.Table.from_pylist(records, schema=LISTING_SCHEMA)


def _modified(info: Mapping[str, Any]) -> dt.datetime | None:
    """When an entry last changed, as naive UTC; each backend names and types it its way."""
    for key in ("mtime", "LastModified", "last_modified", "updated", "created"):
        value = info.get(key)
        if value is None:
            continue
        if isinstance(value, int | float):
            value = dt.datetime.fromtimestamp(value, dt.UTC)
        elif isinstance(value, str):
            try:
                value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
        if isinstance(value, dt.datetime):
            if value.tzinfo is not None:
                value = value.astimezone(dt.UTC).replace(tzinfo=None)
            return value
    return None

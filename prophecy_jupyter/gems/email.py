"""Email: send a pipeline's rows by mail, through an ``smtp`` connection.

The rows travel as a CSV attachment, as an HTML table in the message, or both. The mail
server, the sender and the credentials come from the connection (``host``, ``port``,
``starttls`` or ``ssl``, ``from``; secrets ``username`` and ``password``); the gem says who
receives what.
"""

from __future__ import annotations

import html
import re
import smtplib
import socket
import ssl
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from prophecy_jupyter.errors import EngineError
from prophecy_jupyter.gems.base import GemContext, GemKind, GemOutput, Properties, star_select
from prophecy_jupyter.gems.sources import CONNECTION_NAME

if TYPE_CHECKING:
    import pyarrow as pa
    from sqlglot import exp

    from prophecy_jupyter.connections import ConnectionResolver, ResolvedConnection
    from prophecy_jupyter.engines.base import Engine, TableDocs

ADDRESS = r"^[^@\s,;<>\"']+@[^@\s,;<>\"']+$"
DEFAULT_TIMEOUT = 30.0


class EmailProps(Properties):
    connection: str = Field(
        pattern=CONNECTION_NAME, description="Name of the smtp connection that sends the mail"
    )
    to: list[str] = Field(
        min_length=1, description="Recipients' addresses (name@example.com), one per entry"
    )
    cc: list[str] = Field(default_factory=list, description="Addresses that receive a copy")
    subject: str = Field(min_length=1, max_length=998, description="Subject line")
    body: str = Field(default="", description="Text of the message, above the rows")
    rows_as: Literal["attachment", "table", "both"] = Field(
        default="attachment",
        description="attachment: a CSV file; table: an HTML table in the message; both",
    )
    attachment_name: str = Field(
        default="rows.csv",
        pattern=r"^[^/\\\r\n]+$",
        description="File name of the CSV attachment",
    )
    max_table_rows: int = Field(
        default=100, ge=1, le=10_000, description="table: rows shown in the message at most"
    )


class EmailTarget(GemKind):
    kind = "Email"
    category = "Source/Target"
    summary = "Mail the rows (CSV attachment or HTML table) through an SMTP server"
    Props = EmailProps
    has_output = False

    def build(self, props: EmailProps, ctx: GemContext) -> GemOutput | None:
        ok = True
        for name, addresses in (("to", props.to), ("cc", props.cc)):
            for i, address in enumerate(addresses):
                if not re.match(ADDRESS, address):
                    ctx.issue("address", f"{address!r} is not an email address", name, i)
                    ok = False
        if "\r" in props.subject or "\n" in props.subject:
            ctx.issue("subject", "the subject must be one line", "subject")
            ok = False
        connection = ctx.connection(props.connection, "connection")
        if connection is None:
            ok = False
        elif connection.kind != "smtp":
            ctx.issue(
                "connection_kind",
                f"connection '{props.connection}' is a {connection.kind} connection; "
                "mail needs an smtp connection",
                "connection",
            )
            ok = False
        elif not connection.option("host") or not connection.option("from"):
            ctx.issue(
                "connection",
                f"connection '{props.connection}' needs the options host and from",
                "connection",
            )
            ok = False
        if not ok:
            return None
        return GemOutput(star_select(ctx.input), list(ctx.input.columns))

    def write(
        self,
        props: EmailProps,
        engine: Engine,
        query: exp.Query,
        connections: ConnectionResolver | None,
        docs: TableDocs | None = None,
    ) -> int:
        if connections is None:
            raise EngineError(f"connection '{props.connection}' needs a project")
        connection = connections(props.connection)
        table = engine.fetch(query, "arrow")
        send(connection, message(props, table, str(connection.option("from"))), props)
        return int(table.num_rows)


def message(props: EmailProps, table: pa.Table, sender: str) -> EmailMessage:
    """The mail: the body, then the rows as the properties ask."""
    from prophecy_jupyter.connectors.files import table_bytes

    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = ", ".join(props.to)
    if props.cc:
        mail["Cc"] = ", ".join(props.cc)
    mail["Subject"] = props.subject
    rows = int(table.num_rows)
    text = props.body or f"{rows} row{'' if rows == 1 else 's'}."
    mail.set_content(text)
    if props.rows_as in {"table", "both"}:
        mail.add_alternative(html_table(table, props.body, props.max_table_rows), subtype="html")
    if props.rows_as in {"attachment", "both"}:
        mail.add_attachment(
            table_bytes(table, "csv"),
            maintype="text",
            subtype="csv",
            filename=props.attachment_name,
        )
    return mail


def html_table(table: pa.Table, body: str, limit: int) -> str:
    """The body as paragraphs and the first ``limit`` rows as a table, every value escaped."""
    shown = table.slice(0, limit).to_pylist()
    head = "".join(f"<th>{html.escape(name)}</th>" for name in table.column_names)
    cells = "".join(
        "<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row.values()) + "</tr>" for row in shown
    )
    paragraphs = "".join(f"<p>{html.escape(p)}</p>" for p in body.split("\n\n") if p.strip())
    more = (
        f"<p>First {len(shown)} of {table.num_rows} rows.</p>"
        if table.num_rows > len(shown)
        else ""
    )
    return (
        f'<html><body>{paragraphs}<table border="1"><thead><tr>{head}</tr></thead>'
        f"<tbody>{cells}</tbody></table>{more}</body></html>"
    )


def _cell(value: Any) -> str:
    return "" if value is None else html.escape(str(value))


def send(connection: ResolvedConnection, mail: EmailMessage, props: EmailProps) -> None:
    """Hand the mail to the connection's server; a refusal is an `EngineError` without
    the password in it."""
    if connection.kind != "smtp":
        raise EngineError(f"connection '{connection.name}' is not an smtp connection")
    use_ssl = bool(connection.option("ssl", False))
    starttls = bool(connection.option("starttls", False))
    port = int(connection.option("port", 465 if use_ssl else 587 if starttls else 25))
    host = str(connection.option("host"))
    timeout = float(connection.option("timeout", DEFAULT_TIMEOUT))
    username = connection.secrets.get("username") or connection.option("username")
    password = connection.secrets.get("password", "")
    # The machine's name as it knows it: asking DNS for a full name may stall the send.
    local = socket.gethostname()
    try:
        server: smtplib.SMTP
        if use_ssl:
            context = ssl.create_default_context()
            server = smtplib.SMTP_SSL(
                host, port, local_hostname=local, timeout=timeout, context=context
            )
        else:
            server = smtplib.SMTP(host, port, local_hostname=local, timeout=timeout)
        with server:
            if starttls:
                server.starttls(context=ssl.create_default_context())
            if username:
                server.login(str(username), password)
            server.send_message(mail, to_addrs=[*props.to, *props.cc])
    except (smtplib.SMTPException, OSError) as exc:
        secrets = [v for v in connection.secrets.values() if v]
        from prophecy_jupyter.connectors.files import scrub

        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise EngineError(
            scrub(f"cannot send mail through connection '{connection.name}': {reason}", secrets)
        ) from None


GEMS: list[type[GemKind]] = [EmailTarget]

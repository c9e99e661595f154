"""DataCleansing: the routine text and NULL clean-up done on nearly every raw input.

Every column keeps its name, position and type, so downstream schemas do not move when the
cleansing options change.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from sqlglot import exp

from prophecy_jupyter.compiler.columns import Column
from prophecy_jupyter.gems.base import (
    GemContext,
    GemKind,
    GemOutput,
    Properties,
    column_ref,
    quoted,
)
from prophecy_jupyter.gems.reshape import (
    ColumnName,
    is_number,
    is_text,
    parse_type,
    trim_whitespace,
)

PUNCTUATION = r"""[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~]"""
"""ASCII punctuation as one character class that RE2 (DuckDB) and Java (Spark) both read."""

WHITESPACE_RUN = r"\s+"

CLEANED = "__prophecy_cleaned"


class DataCleansingProps(Properties):
    columns: list[ColumnName] = Field(
        default_factory=list,
        description="Columns to clean; empty means every text column. Text operations apply "
        "to text columns, NULL replacement to text and number columns",
    )
    trim: bool = Field(default=False, description="Remove leading and trailing whitespace")
    case: Literal["unchanged", "upper", "lower", "title"] = Field(
        default="unchanged", description="Change the letter case of text"
    )
    remove_punctuation: bool = Field(
        default=False, description="Delete ASCII punctuation characters from text"
    )
    collapse_spaces: bool = Field(
        default=False, description="Replace each run of whitespace inside text by one space"
    )
    replace_nulls: bool = Field(
        default=False, description="Replace NULL text and numbers by the defaults below"
    )
    text_default: str = Field(default="", description="Replacement for NULL text")
    number_default: int | float = Field(
        default=0, allow_inf_nan=False, description="Replacement for NULL numbers"
    )
    drop_null_rows: bool = Field(
        default=False, description="Leave out rows in which every column is NULL"
    )


class DataCleansing(GemKind):
    kind = "DataCleansing"
    category = "Transform"
    summary = "Trim, change case, remove punctuation, replace NULLs, drop empty rows"
    Props = DataCleansingProps
    row_wise = True

    def build(self, props: DataCleansingProps, ctx: GemContext) -> GemOutput | None:
        rel = ctx.input
        chosen = self._chosen(props, ctx)
        if chosen is None:
            return None
        targets = [c for c in rel.columns if c.name.lower() in chosen]
        # Title case is emulated on DuckDB by an expression that repeats its argument, so
        # the other text operations run first, one level down, and it gets a plain column.
        two_levels = props.case == "title" and any(is_text(parse_type(c)) for c in targets)
        inner: dict[str, exp.Expr] = {}
        outer: dict[str, exp.Expr] = {}
        for col in targets:
            text = self._text_stage(props, col)
            if two_levels:
                if text is not None:
                    inner[col.name] = text
                final = self._final_stage(props, col, column_ref(col.name))
            else:
                final = self._final_stage(
                    props, col, text if text is not None else column_ref(col.name)
                )
            if final is not None:
                outer[col.name] = final
            elif text is not None and not two_levels:
                outer[col.name] = text
        query = self._select(rel.columns, inner if two_levels else outer).from_(rel.table)
        if props.drop_null_rows:
            query = query.where(
                exp.or_(
                    *(
                        exp.Not(this=exp.Is(this=column_ref(c.name), expression=exp.null()))
                        for c in rel.columns
                    )
                )
            )
        if two_levels:
            query = self._select(rel.columns, outer).from_(query.subquery(CLEANED))
        return GemOutput(query, list(rel.columns))

    def _select(self, columns: list[Column], replaced: dict[str, exp.Expr]) -> exp.Select:
        return exp.select(
            *(
                exp.alias_(replaced[c.name], quoted(c.name))
                if c.name in replaced
                else column_ref(c.name)
                for c in columns
            )
        )

    def _chosen(self, props: DataCleansingProps, ctx: GemContext) -> set[str] | None:
        """Lower-cased names of the columns to clean; ``None`` after an issue."""
        if not props.columns:
            return {c.name.lower() for c in ctx.input.columns if is_text(parse_type(c))}
        ok = True
        chosen: set[str] = set()
        for i, name in enumerate(props.columns):
            found = ctx.column(name, "columns", i)
            if found is None:
                ok = False
                continue
            dtype = parse_type(found)
            if is_text(dtype) or dtype is None:
                chosen.add(found.name.lower())
                continue
            if not (props.replace_nulls and is_number(dtype)):
                ctx.issue(
                    "not_applicable",
                    f"column '{found.name}' is {found.type}; text operations apply to text "
                    "columns and NULL replacement to text and number columns",
                    "columns",
                    i,
                )
                ok = False
                continue
            fractional = not float(props.number_default).is_integer()
            if fractional and dtype.is_type(*exp.DataType.INTEGER_TYPES):
                ctx.issue(
                    "bad_default",
                    f"column '{found.name}' is {found.type}; "
                    f"{props.number_default} is not a whole number",
                    "number_default",
                )
                ok = False
                continue
            chosen.add(found.name.lower())
        return chosen if ok else None

    def _text_stage(self, props: DataCleansingProps, col: Column) -> exp.Expr | None:
        """Punctuation, whitespace and upper/lower case; ``None`` when none applies."""
        if not is_text(parse_type(col)):
            return None
        tree: exp.Expr = column_ref(col.name)
        if props.remove_punctuation:
            tree = _replace_all(tree, PUNCTUATION, "")
        if props.collapse_spaces:
            tree = _replace_all(tree, WHITESPACE_RUN, " ")
        if props.trim:
            tree = trim_whitespace(tree)
        if props.case == "upper":
            tree = exp.Upper(this=tree)
        elif props.case == "lower":
            tree = exp.Lower(this=tree)
        return None if isinstance(tree, exp.Column) else tree

    def _final_stage(
        self, props: DataCleansingProps, col: Column, tree: exp.Expr
    ) -> exp.Expr | None:
        """Title case and NULL replacement over ``tree``; ``None`` when neither applies."""
        dtype = parse_type(col)
        changed = False
        if is_text(dtype):
            if props.case == "title":
                tree = exp.Initcap(this=tree)
                changed = True
            if props.replace_nulls:
                tree = exp.Coalesce(this=tree, expressions=[exp.Literal.string(props.text_default)])
                changed = True
        elif dtype is not None and is_number(dtype) and props.replace_nulls:
            default = exp.cast(exp.convert(props.number_default), dtype.copy())
            tree = exp.Coalesce(this=tree, expressions=[default])
            changed = True
        return tree if changed else None


def _replace_all(tree: exp.Expr, pattern: str, replacement: str) -> exp.Expr:
    """Every match replaced (no modifiers: global in DuckDB's rendering, as in Spark's)."""
    return exp.RegexpReplace(
        this=tree,
        expression=exp.Literal.string(pattern),
        replacement=exp.Literal.string(replacement),
    )


GEMS: list[type[GemKind]] = [DataCleansing]

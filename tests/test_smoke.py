from prophecy_jupyter.engines import DuckDBEngine
from tests.conftest import chain, gem, rows_of, seed


def test_filter_keeps_matching_rows(engine: DuckDBEngine) -> None:
    pipeline = chain(
        seed("people", [("name", "VARCHAR"), ("age", "INTEGER")], [["ann", 31], ["bob", 12]]),
        gem("adults", "Filter", condition="age >= 18"),
    )
    assert rows_of(pipeline, engine, "adults") == [("ann", 31)]

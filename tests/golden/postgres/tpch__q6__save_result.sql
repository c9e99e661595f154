WITH "lineitem" AS (
  SELECT
    *
  FROM READ_PARQUET('data/lineitem.parquet')
), "shipped_in_year" AS (
  SELECT
    *
  FROM "lineitem"
  WHERE
    "l_shipdate" >= CAST('1994-01-01' AS DATE)
    AND "l_shipdate" < CAST('1994-01-01' AS DATE) + INTERVAL '1 YEAR'
), "small_discounted" AS (
  SELECT
    *
  FROM "shipped_in_year"
  WHERE
    "l_discount" BETWEEN 0.06 - 0.01 AND 0.06 + 0.01 AND "l_quantity" < 24
), "forecast_revenue" AS (
  SELECT
    SUM("l_extendedprice" * "l_discount") AS "revenue"
  FROM "small_discounted"
)
SELECT
  *
FROM "forecast_revenue"

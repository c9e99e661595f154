WITH "lineitem" AS (
  SELECT
    *
  FROM READ_PARQUET('data/lineitem.parquet')
), "shipped" AS (
  SELECT
    *
  FROM "lineitem"
  WHERE
    "l_shipdate" <= CAST(CAST('1998-12-01' AS DATE) - INTERVAL '90 DAY' AS TIMESTAMPNTZ)
), "line_amounts" AS (
  SELECT
    "l_returnflag" AS "l_returnflag",
    "l_linestatus" AS "l_linestatus",
    "l_quantity" AS "l_quantity",
    "l_extendedprice" AS "l_extendedprice",
    "l_discount" AS "l_discount",
    "l_extendedprice" * (
      1 - "l_discount"
    ) AS "disc_price",
    "l_extendedprice" * (
      1 - "l_discount"
    ) * (
      1 + "l_tax"
    ) AS "charge"
  FROM "shipped"
), "pricing_summary" AS (
  SELECT
    "l_returnflag",
    "l_linestatus",
    SUM("l_quantity") AS "sum_qty",
    SUM("l_extendedprice") AS "sum_base_price",
    SUM("disc_price") AS "sum_disc_price",
    SUM("charge") AS "sum_charge",
    AVG("l_quantity") AS "avg_qty",
    AVG("l_extendedprice") AS "avg_price",
    AVG("l_discount") AS "avg_disc",
    COUNT(*) AS "count_order"
  FROM "line_amounts"
  GROUP BY
    "l_returnflag",
    "l_linestatus"
), "by_flag_and_status" AS (
  SELECT
    *
  FROM "pricing_summary"
  ORDER BY
    "l_returnflag" ASC,
    "l_linestatus" ASC
)
SELECT
  *
FROM "by_flag_and_status"

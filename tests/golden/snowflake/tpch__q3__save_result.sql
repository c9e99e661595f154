WITH "customer" AS (
  SELECT
    *
  FROM READ_PARQUET('data/customer.parquet')
), "orders" AS (
  SELECT
    *
  FROM READ_PARQUET('data/orders.parquet')
), "lineitem" AS (
  SELECT
    *
  FROM READ_PARQUET('data/lineitem.parquet')
), "segment_customers" AS (
  SELECT
    *
  FROM "customer"
  WHERE
    "c_mktsegment" = 'BUILDING'
), "open_orders" AS (
  SELECT
    *
  FROM "orders"
  WHERE
    "o_orderdate" < CAST('1995-03-15' AS DATE)
), "unshipped_lines" AS (
  SELECT
    *
  FROM "lineitem"
  WHERE
    "l_shipdate" > CAST('1995-03-15' AS DATE)
), "order_lines" AS (
  SELECT
    "segment_customers"."c_custkey",
    "segment_customers"."c_name",
    "segment_customers"."c_address",
    "segment_customers"."c_nationkey",
    "segment_customers"."c_phone",
    "segment_customers"."c_acctbal",
    "segment_customers"."c_mktsegment",
    "segment_customers"."c_comment",
    "open_orders"."o_orderkey",
    "open_orders"."o_custkey",
    "open_orders"."o_orderstatus",
    "open_orders"."o_totalprice",
    "open_orders"."o_orderdate",
    "open_orders"."o_orderpriority",
    "open_orders"."o_clerk",
    "open_orders"."o_shippriority",
    "open_orders"."o_comment",
    "unshipped_lines"."l_orderkey",
    "unshipped_lines"."l_partkey",
    "unshipped_lines"."l_suppkey",
    "unshipped_lines"."l_linenumber",
    "unshipped_lines"."l_quantity",
    "unshipped_lines"."l_extendedprice",
    "unshipped_lines"."l_discount",
    "unshipped_lines"."l_tax",
    "unshipped_lines"."l_returnflag",
    "unshipped_lines"."l_linestatus",
    "unshipped_lines"."l_shipdate",
    "unshipped_lines"."l_commitdate",
    "unshipped_lines"."l_receiptdate",
    "unshipped_lines"."l_shipinstruct",
    "unshipped_lines"."l_shipmode",
    "unshipped_lines"."l_comment"
  FROM "segment_customers" AS "segment_customers"
  JOIN "open_orders" AS "open_orders"
    ON "segment_customers"."c_custkey" = "open_orders"."o_custkey"
  JOIN "unshipped_lines" AS "unshipped_lines"
    ON "open_orders"."o_orderkey" = "unshipped_lines"."l_orderkey"
), "revenue_by_order" AS (
  SELECT
    "l_orderkey",
    "o_orderdate",
    "o_shippriority",
    SUM("l_extendedprice" * (
      1 - "l_discount"
    )) AS "revenue"
  FROM "order_lines"
  GROUP BY
    "l_orderkey",
    "o_orderdate",
    "o_shippriority"
), "by_revenue" AS (
  SELECT
    *
  FROM "revenue_by_order"
  ORDER BY
    "revenue" DESC NULLS LAST,
    "o_orderdate" ASC
), "top_10" AS (
  SELECT
    *
  FROM "by_revenue"
  LIMIT 10
)
SELECT
  *
FROM "top_10"

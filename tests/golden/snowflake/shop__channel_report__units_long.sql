WITH "orders_2024" AS (
  SELECT
    *
  FROM READ_CSV('data/orders_2024.csv', header = TRUE, delim = ',')
), "orders" AS (
  SELECT
    *
  FROM READ_CSV('data/orders.csv', header = TRUE, delim = ',')
), "all_orders" AS (
  SELECT
    "order_id" AS "order_id",
    "customer_id" AS "customer_id",
    "product_id" AS "product_id",
    "quantity" AS "quantity",
    "order_date" AS "order_date",
    "channel" AS "channel",
    "status" AS "status"
  FROM "orders_2024"
  UNION ALL
  SELECT
    "order_id" AS "order_id",
    "customer_id" AS "customer_id",
    "product_id" AS "product_id",
    "quantity" AS "quantity",
    "order_date" AS "order_date",
    "channel" AS "channel",
    "status" AS "status"
  FROM "orders"
), "recent" AS (
  SELECT
    *
  FROM "all_orders"
  WHERE
    "order_date" >= CAST('2024-09-01' AS DATE)
    AND COALESCE("status", 'shipped') <> 'cancelled'
), "with_month" AS (
  SELECT
    TO_CHAR("order_date", 'yyyy-mm') AS "month",
    "channel" AS "channel",
    "quantity" AS "quantity"
  FROM "recent"
), "units_by_channel" AS (
  SELECT
    "month",
    SUM(IFF("channel" = 'web', "quantity", NULL)) AS "web",
    SUM(IFF("channel" = 'store', "quantity", NULL)) AS "store",
    SUM(IFF("channel" = 'app', "quantity", NULL)) AS "app"
  FROM "with_month"
  GROUP BY
    "month"
), "long_form" AS (
  SELECT
    "units_by_channel"."month",
    "__prophecy_unpivot"."name" AS "channel",
    CASE
      WHEN "__prophecy_unpivot"."name" = 'web'
      THEN "units_by_channel"."web"
      WHEN "__prophecy_unpivot"."name" = 'store'
      THEN "units_by_channel"."store"
      WHEN "__prophecy_unpivot"."name" = 'app'
      THEN "units_by_channel"."app"
    END AS "units"
  FROM "units_by_channel"
  CROSS JOIN (VALUES
    ('web'),
    ('store'),
    ('app')) AS __prophecy_unpivot(name)
  WHERE
    NOT CASE
      WHEN "__prophecy_unpivot"."name" = 'web'
      THEN "units_by_channel"."web"
      WHEN "__prophecy_unpivot"."name" = 'store'
      THEN "units_by_channel"."store"
      WHEN "__prophecy_unpivot"."name" = 'app'
      THEN "units_by_channel"."app"
    END IS NULL
), "first_rows" AS (
  SELECT
    *
  FROM "long_form"
  LIMIT 12
)
SELECT
  *
FROM "first_rows"

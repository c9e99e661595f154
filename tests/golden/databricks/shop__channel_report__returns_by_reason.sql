WITH `returns` AS (
  SELECT
    *
  FROM READ_JSON_AUTO('data/returns.json')
), `returned_items` AS (
  SELECT
    `returns`.`return_id`,
    `returns`.`order_id`,
    `returns`.`customer`.`id` AS `customer_id`,
    `returns`.`customer`.`reason` AS `customer_reason`,
    `__prophecy_explode_0`.`element`.`product_id` AS `items_product_id`,
    `__prophecy_explode_0`.`element`.`quantity` AS `items_quantity`
  FROM `returns`
  LATERAL VIEW
  EXPLODE(`returns`.`items`) __prophecy_explode_0 AS `element`
), `by_reason` AS (
  SELECT
    customer_reason AS reason,
    COUNT(DISTINCT return_id) AS returns,
    SUM(items_quantity) AS items
  FROM `returned_items`
  WHERE
    NOT items_product_id IS NULL
  GROUP BY
    1
  ORDER BY
    items DESC,
    reason NULLS LAST
)
SELECT
  *
FROM `by_reason`

WITH `orders` AS (
  SELECT
    *
  FROM read_csv('data/orders.csv', header = TRUE, delim = ',')
), `customers` AS (
  SELECT
    *
  FROM read_csv('data/customers.csv', header = TRUE, delim = ',')
), `orphans` AS (
  SELECT
    `orders`.`order_id`,
    `orders`.`customer_id`,
    `orders`.`product_id`,
    `orders`.`quantity`,
    `orders`.`channel`,
    `orders`.`order_date`,
    `orders`.`status`
  FROM `orders` AS `orders`
  WHERE
    NOT EXISTS(
      SELECT
        1
      FROM `customers` AS `customers`
      WHERE
        `orders`.`customer_id` = `customers`.`customer_id`
    )
), `first_orphans` AS (
  SELECT
    *
  FROM `orphans`
  LIMIT 5
)
SELECT
  *
FROM `first_orphans`

WITH `orders` AS (
  SELECT
    *
  FROM READ_CSV('data/orders.csv', header = TRUE, delim = ',')
), `customers` AS (
  SELECT
    *
  FROM READ_CSV('data/customers.csv', header = TRUE, delim = ',')
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
  ANTI JOIN `customers` AS `customers`
    ON `orders`.`customer_id` = `customers`.`customer_id`
), `first_orphans` AS (
  SELECT
    *
  FROM `orphans`
  LIMIT 5
)
SELECT
  *
FROM `first_orphans`

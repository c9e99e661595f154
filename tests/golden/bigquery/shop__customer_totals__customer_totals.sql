WITH `customers` AS (
  SELECT
    *
  FROM read_csv('data/customers.csv', header = TRUE, delim = ',')
), `orders` AS (
  SELECT
    *
  FROM read_csv('data/orders.csv', header = TRUE, delim = ',')
), `products` AS (
  SELECT
    *
  FROM read_json_auto('data/products.json')
), `shipped` AS (
  SELECT
    *
  FROM `orders`
  WHERE
    `status` = 'shipped'
), `order_lines` AS (
  SELECT
    `shipped`.`customer_id` AS `customer_id`,
    `order_id` AS `order_id`,
    `quantity` * `price` AS `revenue`
  FROM `shipped` AS `shipped`
  JOIN `products` AS `products`
    ON `shipped`.`product_id` = `products`.`product_id`
), `with_customer` AS (
  SELECT
    `customers`.`customer_id` AS `customer_id`,
    `name` AS `name`,
    `region` AS `region`,
    `order_id` AS `order_id`,
    `revenue` AS `revenue`
  FROM `customers` AS `customers`
  JOIN `order_lines` AS `order_lines`
    ON `customers`.`customer_id` = `order_lines`.`customer_id`
), `by_customer` AS (
  SELECT
    `customer_id`,
    `name`,
    `region`,
    COUNT(DISTINCT `order_id`) AS `orders`,
    (
      CASE
        WHEN ABS((
          SUM(`revenue`) * 100.0
        ) - TRUNC((
          SUM(`revenue`) * 100.0
        ))) > 0.5
        OR (
          ABS((
            SUM(`revenue`) * 100.0
          ) - TRUNC((
            SUM(`revenue`) * 100.0
          ))) = 0.5
          AND SIGN(
            (
              (
                (
                  134217729.0 * SUM(`revenue`)
                ) - (
                  (
                    134217729.0 * SUM(`revenue`)
                  ) - SUM(`revenue`)
                )
              ) * 100.0 - (
                SUM(`revenue`) * 100.0
              )
            ) + (
              SUM(`revenue`) - (
                (
                  134217729.0 * SUM(`revenue`)
                ) - (
                  (
                    134217729.0 * SUM(`revenue`)
                  ) - SUM(`revenue`)
                )
              )
            ) * 100.0
          ) <> -SIGN((
            SUM(`revenue`) * 100.0
          ))
        )
        THEN TRUNC((
          SUM(`revenue`) * 100.0
        )) + SIGN((
          SUM(`revenue`) * 100.0
        ))
        ELSE TRUNC((
          SUM(`revenue`) * 100.0
        ))
      END / 100.0
    ) AS `total`
  FROM `with_customer`
  GROUP BY
    `customer_id`,
    `name`,
    `region`
  HAVING
    (
      CASE
        WHEN ABS((
          SUM(`revenue`) * 100.0
        ) - TRUNC((
          SUM(`revenue`) * 100.0
        ))) > 0.5
        OR (
          ABS((
            SUM(`revenue`) * 100.0
          ) - TRUNC((
            SUM(`revenue`) * 100.0
          ))) = 0.5
          AND SIGN(
            (
              (
                (
                  134217729.0 * SUM(`revenue`)
                ) - (
                  (
                    134217729.0 * SUM(`revenue`)
                  ) - SUM(`revenue`)
                )
              ) * 100.0 - (
                SUM(`revenue`) * 100.0
              )
            ) + (
              SUM(`revenue`) - (
                (
                  134217729.0 * SUM(`revenue`)
                ) - (
                  (
                    134217729.0 * SUM(`revenue`)
                  ) - SUM(`revenue`)
                )
              )
            ) * 100.0
          ) <> -SIGN((
            SUM(`revenue`) * 100.0
          ))
        )
        THEN TRUNC((
          SUM(`revenue`) * 100.0
        )) + SIGN((
          SUM(`revenue`) * 100.0
        ))
        ELSE TRUNC((
          SUM(`revenue`) * 100.0
        ))
      END / 100.0
    ) >= 50.0
), `ranked` AS (
  SELECT
    *
  FROM `by_customer`
  ORDER BY
    `total` DESC,
    `customer_id` ASC NULLS LAST
)
SELECT
  *
FROM `ranked`

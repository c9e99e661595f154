WITH `orders` AS (
  SELECT
    *
  FROM READ_CSV('data/orders.csv', header = TRUE, delim = ',')
), `products` AS (
  SELECT
    *
  FROM READ_JSON_AUTO('data/products.json')
), `lines` AS (
  SELECT
    `orders`.`order_id`,
    `orders`.`customer_id`,
    `orders`.`product_id`,
    `orders`.`quantity`,
    `orders`.`channel`,
    `orders`.`order_date`,
    `orders`.`status`,
    `products`.`product`,
    `products`.`category`,
    `products`.`price`
  FROM `orders` AS `orders`
  JOIN `products` AS `products`
    ON `orders`.`product_id` = `products`.`product_id`
), `revenue` AS (
  SELECT
    `order_id`,
    `customer_id`,
    `product_id`,
    `quantity`,
    `order_date`,
    `product`,
    `category`,
    `price`,
    `quantity` * `price` AS `revenue`,
    CAST(DATE_TRUNC('MONTH', `order_date`) AS TIMESTAMP_NTZ) AS `month`
  FROM `lines`
), `per_product` AS (
  SELECT
    `category`,
    `product`,
    SUM(`quantity`) AS `units`,
    (
      CASE
        WHEN ABS((
          SUM(`revenue`) * 100.0
        ) - CAST((
          SUM(`revenue`) * 100.0
        ) AS BIGINT)) > 0.5
        OR (
          ABS((
            SUM(`revenue`) * 100.0
          ) - CAST((
            SUM(`revenue`) * 100.0
          ) AS BIGINT)) = 0.5
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
        THEN CAST((
          SUM(`revenue`) * 100.0
        ) AS BIGINT) + SIGN((
          SUM(`revenue`) * 100.0
        ))
        ELSE CAST((
          SUM(`revenue`) * 100.0
        ) AS BIGINT)
      END / 100.0
    ) AS `revenue`
  FROM `revenue`
  GROUP BY
    `category`,
    `product`
), `rank_in_category` AS (
  SELECT
    `category`,
    `product`,
    `units`,
    `revenue`,
    ROW_NUMBER() OVER (PARTITION BY `category` ORDER BY `revenue` DESC, `product` ASC NULLS LAST) AS `rank`
  FROM `per_product`
), `top` AS (
  SELECT
    *
  FROM `rank_in_category`
  WHERE
    `rank` <= 2
)
SELECT
  *
FROM `top`

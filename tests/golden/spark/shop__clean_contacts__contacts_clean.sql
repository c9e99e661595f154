WITH `contacts` AS (
  SELECT
    *
  FROM READ_CSV('data/contacts.csv', header = TRUE, delim = ',')
), `tidy_names` AS (
  SELECT
    `email`,
    ARRAY_JOIN(
      TRANSFORM(
        REGEXP_EXTRACT_ALL(
          `full_name`,
          '([ \\t\\n\\r\\f\\x0B!"#$%&\'()*+,\\-./:;<=>?@\\[\\\\\\]\\^_`{|}~]+|[^ \\t\\n\\r\\f\\x0B!"#$%&\'()*+,\\-./:;<=>?@\\[\\\\\\]\\^_`{|}~]+)'
        ),
        seg -> CASE
          WHEN seg RLIKE '^[ \\t\\n\\r\\f\\x0B!"#$%&\'()*+,\\-./:;<=>?@\\[\\\\\\]\\^_`{|}~]'
          THEN seg
          ELSE CONCAT(UPPER(LEFT(seg, 1)), LOWER(SUBSTRING(seg, 2)))
        END
      ),
      ''
    ) AS `full_name`,
    `phone`,
    `updated_at`
  FROM (
    SELECT
      `email`,
      REGEXP_REPLACE(
        REGEXP_REPLACE(
          REGEXP_REPLACE(`full_name`, '[!"#$%\\&\'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~]', ''),
          '[\\t\\n\\f\\r ]+',
          ' '
        ),
        '^[\\t\\n\\f\\r ]+|[\\t\\n\\f\\r ]+\\z',
        ''
      ) AS `full_name`,
      `phone`,
      `updated_at`
    FROM `contacts`
  ) AS __prophecy_cleaned
), `tidy_emails` AS (
  SELECT
    COALESCE(
      LOWER(REGEXP_REPLACE(`email`, '^[\\t\\n\\f\\r ]+|[\\t\\n\\f\\r ]+\\z', '')),
      'unknown'
    ) AS `email`,
    `full_name`,
    COALESCE(
      LOWER(REGEXP_REPLACE(`phone`, '^[\\t\\n\\f\\r ]+|[\\t\\n\\f\\r ]+\\z', '')),
      'unknown'
    ) AS `phone`,
    `updated_at`
  FROM `tidy_names`
), `split_name` AS (
  SELECT
    `tidy_emails`.`email`,
    `tidy_emails`.`full_name`,
    TRY_ELEMENT_AT(SPLIT(`tidy_emails`.`full_name`, CONCAT('\\Q', ' ', '\\E')), 1) AS `first_name`,
    CASE
      WHEN NOT TRY_ELEMENT_AT(SPLIT(`tidy_emails`.`full_name`, CONCAT('\\Q', ' ', '\\E')), 2) IS NULL
      THEN CASE
        WHEN 2 + LENGTH(TRY_ELEMENT_AT(SPLIT(`tidy_emails`.`full_name`, CONCAT('\\Q', ' ', '\\E')), 1)) = 0
        THEN SUBSTRING(`tidy_emails`.`full_name`, 1)
        ELSE SUBSTRING(
          `tidy_emails`.`full_name`,
          2 + LENGTH(TRY_ELEMENT_AT(SPLIT(`tidy_emails`.`full_name`, CONCAT('\\Q', ' ', '\\E')), 1))
        )
      END
    END AS `last_name`,
    `tidy_emails`.`phone`,
    `tidy_emails`.`updated_at`
  FROM `tidy_emails`
), `latest` AS (
  SELECT
    `email`,
    `full_name`,
    `first_name`,
    `last_name`,
    `phone`,
    `updated_at`
  FROM (
    SELECT
      *,
      ROW_NUMBER() OVER (PARTITION BY `email` ORDER BY `updated_at` DESC NULLS FIRST) AS `__prophecy_row_number`
    FROM `split_name`
  ) AS numbered
  WHERE
    `__prophecy_row_number` = 1
), `by_email` AS (
  SELECT
    *
  FROM `latest`
  ORDER BY
    `email` ASC NULLS LAST
)
SELECT
  *
FROM `by_email`

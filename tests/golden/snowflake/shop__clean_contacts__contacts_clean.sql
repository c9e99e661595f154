WITH "contacts" AS (
  SELECT
    *
  FROM READ_CSV('data/contacts.csv', header = TRUE, delim = ',')
), "tidy_names" AS (
  SELECT
    "email",
    INITCAP("full_name", ' \t\n\r\f\x0b!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~') AS "full_name",
    "phone",
    "updated_at"
  FROM (
    SELECT
      "email",
      REGEXP_REPLACE(
        REGEXP_REPLACE(
          REGEXP_REPLACE("full_name", '[]!"#$%&\'()*+,./:;<=>?@[_`{|}~^\\\\-]', '', 1, 0, 'c'),
          '[\t\n\f\r ]+',
          ' ',
          1,
          0,
          'c'
        ),
        '^[\t\n\f\r ]+|[\t\n\f\r ]+$',
        '',
        1,
        0,
        'c'
      ) AS "full_name",
      "phone",
      "updated_at"
    FROM "contacts"
  ) AS __prophecy_cleaned
), "tidy_emails" AS (
  SELECT
    COALESCE(
      LOWER(REGEXP_REPLACE("email", '^[\t\n\f\r ]+|[\t\n\f\r ]+$', '', 1, 0, 'c')),
      'unknown'
    ) AS "email",
    "full_name",
    COALESCE(
      LOWER(REGEXP_REPLACE("phone", '^[\t\n\f\r ]+|[\t\n\f\r ]+$', '', 1, 0, 'c')),
      'unknown'
    ) AS "phone",
    "updated_at"
  FROM "tidy_names"
), "split_name" AS (
  SELECT
    "tidy_emails"."email",
    "tidy_emails"."full_name",
    CAST(GET(SPLIT("tidy_emails"."full_name", ' '), 0) AS VARCHAR) AS "first_name",
    CASE
      WHEN NOT CAST(GET(SPLIT("tidy_emails"."full_name", ' '), 1) AS VARCHAR) IS NULL
      THEN CASE
        WHEN 2 + LENGTH(CAST(GET(SPLIT("tidy_emails"."full_name", ' '), 0) AS VARCHAR)) < 0
        THEN SUBSTRING(
          "tidy_emails"."full_name",
          LENGTH("tidy_emails"."full_name") + 1 + 2 + LENGTH(CAST(GET(SPLIT("tidy_emails"."full_name", ' '), 0) AS VARCHAR))
        )
        WHEN 2 + LENGTH(CAST(GET(SPLIT("tidy_emails"."full_name", ' '), 0) AS VARCHAR)) = 0
        THEN SUBSTRING("tidy_emails"."full_name", 1)
        ELSE SUBSTRING(
          "tidy_emails"."full_name",
          2 + LENGTH(CAST(GET(SPLIT("tidy_emails"."full_name", ' '), 0) AS VARCHAR))
        )
      END
    END AS "last_name",
    "tidy_emails"."phone",
    "tidy_emails"."updated_at"
  FROM "tidy_emails"
), "latest" AS (
  SELECT
    "email",
    "full_name",
    "first_name",
    "last_name",
    "phone",
    "updated_at"
  FROM (
    SELECT
      *,
      ROW_NUMBER() OVER (PARTITION BY "email" ORDER BY "updated_at" DESC) AS "__prophecy_row_number"
    FROM "split_name"
  ) AS numbered
  WHERE
    "__prophecy_row_number" = 1
), "by_email" AS (
  SELECT
    *
  FROM "latest"
  ORDER BY
    "email" ASC
)
SELECT
  *
FROM "by_email"

WITH "contacts" AS (
  SELECT
    *
  FROM READ_CSV('data/contacts.csv', header = TRUE, delim = ',')
), "tidy_names" AS (
  SELECT
    "email",
    COALESCE(
      (
        SELECT
          STRING_AGG(
            
              CASE
                WHEN m[1] ~ '^[ \t\n\r\f\v!"#$%&''()*+,\-./:;<=>?@\[\\\]\^_`{|}~]'
                THEN m[1]
                ELSE UPPER(LEFT(m[1], 1)) || LOWER(SUBSTRING(m[1] FROM 2))
              END,
              ''
            
            ORDER BY
              n
          )
        FROM REGEXP_MATCHES(
          "full_name",
          '([ \t\n\r\f\v!"#$%&''()*+,\-./:;<=>?@\[\\\]\^_`{|}~]+|[^ \t\n\r\f\v!"#$%&''()*+,\-./:;<=>?@\[\\\]\^_`{|}~]+)',
          'g'
        ) WITH ORDINALITY AS r(m, n)
      ),
      "full_name"
    ) AS "full_name",
    "phone",
    "updated_at"
  FROM (
    SELECT
      "email",
      REGEXP_REPLACE(
        REGEXP_REPLACE(
          REGEXP_REPLACE("full_name", '[!"#$%&''()*+,\-./:;<=>?@\[\\\]^_`{|}~]', '', 'g'),
          '[\t\n\f\r ]+',
          ' ',
          'g'
        ),
        '^[\t\n\f\r ]+|[\t\n\f\r ]+$',
        '',
        'g'
      ) AS "full_name",
      "phone",
      "updated_at"
    FROM "contacts"
  ) AS __prophecy_cleaned
), "tidy_emails" AS (
  SELECT
    COALESCE(LOWER(REGEXP_REPLACE("email", '^[\t\n\f\r ]+|[\t\n\f\r ]+$', '', 'g')), 'unknown') AS "email",
    "full_name",
    COALESCE(LOWER(REGEXP_REPLACE("phone", '^[\t\n\f\r ]+|[\t\n\f\r ]+$', '', 'g')), 'unknown') AS "phone",
    "updated_at"
  FROM "tidy_names"
), "split_name" AS (
  SELECT
    "tidy_emails"."email",
    "tidy_emails"."full_name",
    (
      CASE
        WHEN "tidy_emails"."full_name" = ''
        THEN ARRAY['']
        ELSE STRING_TO_ARRAY("tidy_emails"."full_name", ' ')
      END
    )[1] AS "first_name",
    CASE
      WHEN NOT (
        CASE
          WHEN "tidy_emails"."full_name" = ''
          THEN ARRAY['']
          ELSE STRING_TO_ARRAY("tidy_emails"."full_name", ' ')
        END
      )[2] IS NULL
      THEN CASE
        WHEN 2 + LENGTH(
          (
            CASE
              WHEN "tidy_emails"."full_name" = ''
              THEN ARRAY['']
              ELSE STRING_TO_ARRAY("tidy_emails"."full_name", ' ')
            END
          )[1]
        ) < 0
        THEN SUBSTRING("tidy_emails"."full_name" FROM LENGTH("tidy_emails"."full_name") + 1 + 2 + LENGTH(
          (
            CASE
              WHEN "tidy_emails"."full_name" = ''
              THEN ARRAY['']
              ELSE STRING_TO_ARRAY("tidy_emails"."full_name", ' ')
            END
          )[1]
        ))
        ELSE SUBSTRING("tidy_emails"."full_name" FROM 2 + LENGTH(
          (
            CASE
              WHEN "tidy_emails"."full_name" = ''
              THEN ARRAY['']
              ELSE STRING_TO_ARRAY("tidy_emails"."full_name", ' ')
            END
          )[1]
        ))
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

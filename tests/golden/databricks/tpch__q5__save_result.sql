WITH `region` AS (
  SELECT
    *
  FROM READ_PARQUET('data/region.parquet')
), `nation` AS (
  SELECT
    *
  FROM READ_PARQUET('data/nation.parquet')
), `supplier` AS (
  SELECT
    *
  FROM READ_PARQUET('data/supplier.parquet')
), `customer` AS (
  SELECT
    *
  FROM READ_PARQUET('data/customer.parquet')
), `orders` AS (
  SELECT
    *
  FROM READ_PARQUET('data/orders.parquet')
), `lineitem` AS (
  SELECT
    *
  FROM READ_PARQUET('data/lineitem.parquet')
), `selected_region` AS (
  SELECT
    *
  FROM `region`
  WHERE
    `r_name` = 'ASIA'
), `orders_in_year` AS (
  SELECT
    *
  FROM `orders`
  WHERE
    `o_orderdate` >= CAST('1994-01-01' AS DATE)
    AND `o_orderdate` < CAST(CAST('1994-01-01' AS DATE) + INTERVAL '1' YEAR AS TIMESTAMP_NTZ)
), `region_nations` AS (
  SELECT
    `nation`.`n_nationkey`,
    `nation`.`n_name`,
    `nation`.`n_regionkey`,
    `nation`.`n_comment`,
    `selected_region`.`r_regionkey`,
    `selected_region`.`r_name`,
    `selected_region`.`r_comment`
  FROM `nation` AS `nation`
  JOIN `selected_region` AS `selected_region`
    ON `nation`.`n_regionkey` = `selected_region`.`r_regionkey`
), `customer_lines` AS (
  SELECT
    `customer`.`c_custkey`,
    `customer`.`c_name`,
    `customer`.`c_address`,
    `customer`.`c_nationkey`,
    `customer`.`c_phone`,
    `customer`.`c_acctbal`,
    `customer`.`c_mktsegment`,
    `customer`.`c_comment`,
    `orders_in_year`.`o_orderkey`,
    `orders_in_year`.`o_custkey`,
    `orders_in_year`.`o_orderstatus`,
    `orders_in_year`.`o_totalprice`,
    `orders_in_year`.`o_orderdate`,
    `orders_in_year`.`o_orderpriority`,
    `orders_in_year`.`o_clerk`,
    `orders_in_year`.`o_shippriority`,
    `orders_in_year`.`o_comment`,
    `lineitem`.`l_orderkey`,
    `lineitem`.`l_partkey`,
    `lineitem`.`l_suppkey`,
    `lineitem`.`l_linenumber`,
    `lineitem`.`l_quantity`,
    `lineitem`.`l_extendedprice`,
    `lineitem`.`l_discount`,
    `lineitem`.`l_tax`,
    `lineitem`.`l_returnflag`,
    `lineitem`.`l_linestatus`,
    `lineitem`.`l_shipdate`,
    `lineitem`.`l_commitdate`,
    `lineitem`.`l_receiptdate`,
    `lineitem`.`l_shipinstruct`,
    `lineitem`.`l_shipmode`,
    `lineitem`.`l_comment`
  FROM `customer` AS `customer`
  JOIN `orders_in_year` AS `orders_in_year`
    ON `customer`.`c_custkey` = `orders_in_year`.`o_custkey`
  JOIN `lineitem` AS `lineitem`
    ON `orders_in_year`.`o_orderkey` = `lineitem`.`l_orderkey`
), `region_suppliers` AS (
  SELECT
    `supplier`.`s_suppkey`,
    `supplier`.`s_name`,
    `supplier`.`s_address`,
    `supplier`.`s_nationkey`,
    `supplier`.`s_phone`,
    `supplier`.`s_acctbal`,
    `supplier`.`s_comment`,
    `region_nations`.`n_nationkey`,
    `region_nations`.`n_name`,
    `region_nations`.`n_regionkey`,
    `region_nations`.`n_comment`,
    `region_nations`.`r_regionkey`,
    `region_nations`.`r_name`,
    `region_nations`.`r_comment`
  FROM `supplier` AS `supplier`
  JOIN `region_nations` AS `region_nations`
    ON `supplier`.`s_nationkey` = `region_nations`.`n_nationkey`
), `local_supplier_lines` AS (
  SELECT
    `customer_lines`.`c_custkey`,
    `customer_lines`.`c_name`,
    `customer_lines`.`c_address`,
    `customer_lines`.`c_nationkey`,
    `customer_lines`.`c_phone`,
    `customer_lines`.`c_acctbal`,
    `customer_lines`.`c_mktsegment`,
    `customer_lines`.`c_comment`,
    `customer_lines`.`o_orderkey`,
    `customer_lines`.`o_custkey`,
    `customer_lines`.`o_orderstatus`,
    `customer_lines`.`o_totalprice`,
    `customer_lines`.`o_orderdate`,
    `customer_lines`.`o_orderpriority`,
    `customer_lines`.`o_clerk`,
    `customer_lines`.`o_shippriority`,
    `customer_lines`.`o_comment`,
    `customer_lines`.`l_orderkey`,
    `customer_lines`.`l_partkey`,
    `customer_lines`.`l_suppkey`,
    `customer_lines`.`l_linenumber`,
    `customer_lines`.`l_quantity`,
    `customer_lines`.`l_extendedprice`,
    `customer_lines`.`l_discount`,
    `customer_lines`.`l_tax`,
    `customer_lines`.`l_returnflag`,
    `customer_lines`.`l_linestatus`,
    `customer_lines`.`l_shipdate`,
    `customer_lines`.`l_commitdate`,
    `customer_lines`.`l_receiptdate`,
    `customer_lines`.`l_shipinstruct`,
    `customer_lines`.`l_shipmode`,
    `customer_lines`.`l_comment`,
    `region_suppliers`.`s_suppkey`,
    `region_suppliers`.`s_name`,
    `region_suppliers`.`s_address`,
    `region_suppliers`.`s_nationkey`,
    `region_suppliers`.`s_phone`,
    `region_suppliers`.`s_acctbal`,
    `region_suppliers`.`s_comment`,
    `region_suppliers`.`n_nationkey`,
    `region_suppliers`.`n_name`,
    `region_suppliers`.`n_regionkey`,
    `region_suppliers`.`n_comment`,
    `region_suppliers`.`r_regionkey`,
    `region_suppliers`.`r_name`,
    `region_suppliers`.`r_comment`
  FROM `customer_lines` AS `customer_lines`
  JOIN `region_suppliers` AS `region_suppliers`
    ON `customer_lines`.`l_suppkey` = `region_suppliers`.`s_suppkey`
    AND `customer_lines`.`c_nationkey` = `region_suppliers`.`s_nationkey`
), `revenue_by_nation` AS (
  SELECT
    `n_name`,
    SUM(`l_extendedprice` * (
      1 - `l_discount`
    )) AS `revenue`
  FROM `local_supplier_lines`
  GROUP BY
    `n_name`
), `by_revenue` AS (
  SELECT
    *
  FROM `revenue_by_nation`
  ORDER BY
    `revenue` DESC
)
SELECT
  *
FROM `by_revenue`

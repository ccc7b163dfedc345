-- Purchase behaviour per contact with at least one order.
{{ config(materialized='view') }}
SELECT contact_id,
       COUNT(*) AS order_count,
       SUM(amount) AS revenue,
       MAX(ordered_at) AS last_ordered_at
FROM {{ ref('stg_orders') }}
GROUP BY contact_id

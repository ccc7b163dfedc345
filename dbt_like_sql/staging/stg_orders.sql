-- Orders that count: a positive amount, a known contact. Rejected orders stay in the source table.
{{ config(materialized='view') }}
SELECT o.order_id, o.contact_id, o.ordered_at, o.amount, o.product_category
FROM {{ source('orders') }} AS o
JOIN {{ ref('stg_contacts') }} AS c ON c.contact_id = o.contact_id
WHERE o.amount IS NOT NULL AND o.amount > 0

-- Orders that count, at their net amount (amount minus refunded), of a known contact. The rule is
-- counted_order() (persona_pipeline/core/orders.py): not cancelled, net amount above zero. The Analysis uses the
-- same rule; orders left out stay in the source table and are counted beside the figures.
{{ config(materialized='view') }}
SELECT o.order_id, o.contact_id, o.ordered_at, {{ net_amount('o') }} AS amount, o.product_category
FROM {{ source('orders') }} AS o
JOIN {{ ref('stg_contacts') }} AS c ON c.contact_id = o.contact_id
WHERE {{ counted_order('o') }}

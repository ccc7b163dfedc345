-- Contacts with at least one order.
SELECT contact_id FROM {{ ref('stg_customer_value') }} WHERE order_count >= 1

-- Customers who ordered in the 90 days up to the latest order in the data.
SELECT contact_id
FROM {{ ref('stg_customer_value') }}
WHERE last_ordered_at >= (SELECT {{ days_before('MAX(ordered_at)', 90) }} FROM {{ ref('stg_orders') }})

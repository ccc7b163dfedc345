-- Customers whose revenue is at least twice the average customer's.
SELECT contact_id
FROM {{ ref('stg_customer_value') }}
WHERE revenue >= (SELECT 2 * AVG(revenue) FROM {{ ref('stg_customer_value') }})

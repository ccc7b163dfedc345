-- Contacts who have never ordered.
SELECT c.contact_id
FROM {{ ref('stg_contacts') }} AS c
LEFT JOIN {{ ref('stg_customer_value') }} AS v ON v.contact_id = c.contact_id
WHERE v.contact_id IS NULL

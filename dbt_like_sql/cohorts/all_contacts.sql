-- Everyone: customers and leads.
SELECT contact_id FROM {{ ref('stg_contacts') }}

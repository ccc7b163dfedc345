-- Contacts that can be addressed: one row per contact id.
{{ config(materialized='view') }}
SELECT contact_id, created_at, updated_at
FROM {{ source('contacts') }}
WHERE contact_id IS NOT NULL

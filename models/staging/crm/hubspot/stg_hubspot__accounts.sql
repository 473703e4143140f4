{{ config(enabled=var('crm_source') == 'hubspot') }}

with

source as (

    select * from {{ source('hubspot', 'company') }}

),

renamed as (

    select

        ---------- ids
        nullif(trim(cast(id as {{ dbt.type_string() }})), '') as account_id,

        ---------- text
        nullif(trim(cast(property_name as {{ dbt.type_string() }})), '') as account_name,
        -- HubSpot fills the company domain (`acme.co.uk`) more often than the website: either
        -- gives the registered domain addresses are matched on
        coalesce(
            nullif(trim(cast(property_website as {{ dbt.type_string() }})), ''),
            nullif(trim(cast(property_domain as {{ dbt.type_string() }})), '')
        ) as website,
        nullif(trim(cast(property_city as {{ dbt.type_string() }})), '') as city,
        nullif(trim(cast(property_country as {{ dbt.type_string() }})), '') as country,

        ---------- load metadata
        cast(_fivetran_synced as {{ dbt.type_timestamp() }}) as loaded_at

    from source
    -- a deleted company (kept by Fivetran as a soft delete) never counts
    where not coalesce(is_deleted, false)

)

select * from renamed

{{ config(enabled=var('crm_source') == 'salesforce') }}

with

source as (

    select * from {{ source('salesforce', 'account') }}

),

renamed as (

    select

        ---------- ids
        nullif(trim(cast(id as {{ dbt.type_string() }})), '') as account_id,

        ---------- text
        nullif(trim(cast(name as {{ dbt.type_string() }})), '') as account_name,
        nullif(trim(cast(website as {{ dbt.type_string() }})), '') as website,
        nullif(trim(cast(billing_city as {{ dbt.type_string() }})), '') as city,
        nullif(trim(cast(billing_country as {{ dbt.type_string() }})), '') as country,

        ---------- load metadata
        cast(_fivetran_synced as {{ dbt.type_timestamp() }}) as loaded_at

    from source
    -- a deleted account (kept by Fivetran as a soft delete) never counts
    where not coalesce(is_deleted, false)

)

select * from renamed

{{ config(enabled=var('crm_source') == 'dataverse') }}

with

source as (

    select * from {{ source('dataverse', 'account') }}
    {%- if not var('crm_include_inactive') %}
    -- statecode 1: deactivated in Dynamics 365 (0 is active)
    where coalesce(statecode, 0) <> 1
    {%- endif %}

),

renamed as (

    select

        ---------- ids
        nullif(trim(cast(accountid as {{ dbt.type_string() }})), '') as account_id,

        ---------- text
        nullif(trim(cast(name as {{ dbt.type_string() }})), '') as account_name,
        nullif(trim(cast(websiteurl as {{ dbt.type_string() }})), '') as website,
        nullif(trim(cast(address1_city as {{ dbt.type_string() }})), '') as city,
        nullif(trim(cast(address1_country as {{ dbt.type_string() }})), '') as country,

        ---------- load metadata
        -- Synapse Link, Fabric Link and the Dataverse loader write no common load-time column
        cast(null as {{ dbt.type_timestamp() }}) as loaded_at

    from source

)

select * from renamed

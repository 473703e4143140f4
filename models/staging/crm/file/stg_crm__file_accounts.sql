{{ config(enabled=var('crm_source') == 'file') }}

with

source as (

    select * from {{ source('crm', 'accounts') }}

),

renamed as (

    select

        ---------- ids
        nullif(trim(cast(account_id as {{ dbt.type_string() }})), '') as account_id,

        ---------- text
        nullif(trim(cast(name as {{ dbt.type_string() }})), '') as account_name,
        nullif(trim(cast(website as {{ dbt.type_string() }})), '') as website,
        nullif(trim(cast(city as {{ dbt.type_string() }})), '') as city,
        nullif(trim(cast(country as {{ dbt.type_string() }})), '') as country,

        ---------- load metadata
        cast(_loaded_at as {{ dbt.type_timestamp() }}) as loaded_at

    from source

)

select * from renamed

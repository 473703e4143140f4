{%- set email_column = adapter.quote(var('crm_contact_email_column')) -%}

with

source as (

    select * from {{ source('crm', 'contacts') }}

),

renamed as (

    select

        ---------- ids
        nullif(trim(cast(contact_id as {{ dbt.type_string() }})), '') as contact_id,
        nullif(trim(cast(account_id as {{ dbt.type_string() }})), '') as account_id,

        ---------- contact details
        nullif(lower(trim(cast({{ email_column }} as {{ dbt.type_string() }}))), '')
            as email_address,

        ---------- load metadata
        cast(_loaded_at as {{ dbt.type_timestamp() }}) as loaded_at

    from source

)

select * from renamed

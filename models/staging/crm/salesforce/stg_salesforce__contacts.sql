{{ config(enabled=var('crm_source') == 'salesforce') }}
{%- set email_columns = crm_contact_email_columns(['email']) %}

with

source as (

    select * from {{ source('salesforce', 'contact') }}
    -- a deleted contact (kept by Fivetran as a soft delete) never counts
    where not coalesce(is_deleted, false)

),

emails as (

    -- one row per email column: a contact with several addresses is several rows
    {%- for column in email_columns %}
    select

        ---------- ids
        nullif(trim(cast(id as {{ dbt.type_string() }})), '') as contact_id,
        nullif(trim(cast(account_id as {{ dbt.type_string() }})), '') as account_id,

        ---------- contact details
        nullif(lower(trim(cast({{ adapter.quote(column) }} as {{ dbt.type_string() }}))), '')
            as email_address,

        ---------- load metadata
        cast(_fivetran_synced as {{ dbt.type_timestamp() }}) as loaded_at

    from source
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}

),

final as (

    select distinct
        contact_id,
        account_id,
        email_address,
        loaded_at
    from emails
    where email_address is not null

)

select * from final

{{ config(enabled=var('crm_source') == 'hubspot') }}
{%- set email_columns = crm_contact_email_columns(['property_email']) %}

with

source as (

    select * from {{ source('hubspot', 'contact') }}
    -- a contact deleted in HubSpot (Fivetran's soft delete) never counts
    where not coalesce(_fivetran_deleted, false)

),

emails as (

    -- one row per email column: a contact with several addresses is several rows
    {%- for column in email_columns %}
    select

        ---------- ids
        nullif(trim(cast(id as {{ dbt.type_string() }})), '') as contact_id,
        nullif(trim(cast(property_associatedcompanyid as {{ dbt.type_string() }})), '')
            as account_id,

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

{{ config(enabled=var('crm_source') == 'dataverse') }}
{%- set email_columns = crm_contact_email_columns(
    ['emailaddress1', 'emailaddress2', 'emailaddress3']) %}

with

source as (

    select * from {{ source('dataverse', 'contact') }}
    -- the parent customer is an account or another contact: only an account's contacts count
    where parentcustomeridtype = 'account'
    {%- if not var('crm_include_inactive') %}
        -- statecode 1: deactivated in Dynamics 365 (0 is active)
        and coalesce(statecode, 0) <> 1
    {%- endif %}

),

emails as (

    -- one row per email column: a contact with several addresses is several rows
    {%- for column in email_columns %}
    select

        ---------- ids
        nullif(trim(cast(contactid as {{ dbt.type_string() }})), '') as contact_id,
        nullif(trim(cast(parentcustomerid as {{ dbt.type_string() }})), '') as account_id,

        ---------- contact details
        nullif(lower(trim(cast({{ adapter.quote(column) }} as {{ dbt.type_string() }}))), '')
            as email_address,

        ---------- load metadata
        cast(null as {{ dbt.type_timestamp() }}) as loaded_at

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

{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook=["{{ empty_when_upstream_is_empty(ref('stg_graph__messages')) }}"],
    )
}}

with

email_roles as (

    select * from {{ ref('int_email_roles') }}

),

written_forms as (

    -- the few distinct forms (tens of thousands, next to a hundred million roles); an
    -- incremental build reads only the roles rebuilt since the last one (int_email_roles is
    -- built first) and adds the forms not here yet. A form whose emails are all gone stays:
    -- it only maps a form to its address, and counts nothing.
    select
        written_address,
        max(loaded_at) as loaded_at
    from email_roles
    where {{ loaded_since_last_build('email_roles.loaded_at') }}
    group by written_address

),

final as (

    select
        written_forms.written_address,
        nullif(lower(trim(written_forms.written_address)), '') as address,
        written_forms.loaded_at
    from written_forms
    {% if is_incremental() %}
    left join {{ this }} as known_forms
        on written_forms.written_address = known_forms.written_address
    where known_forms.written_address is null
    {% endif %}

)

select * from final

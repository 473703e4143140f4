with

email_roles as (

    select * from {{ ref('int_email_roles') }}

),

written_forms as (

    -- the few distinct forms (tens of thousands, next to a hundred million roles)
    select distinct written_address
    from email_roles

),

final as (

    select
        written_address,
        nullif(lower(trim(written_address)), '') as address
    from written_forms

)

select * from final

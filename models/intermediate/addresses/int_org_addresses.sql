with

org_mailboxes as (

    select * from {{ ref('stg_graph__users') }}

),

addresses as (

    select
        mail_lower as org_address,
        user_id
    from org_mailboxes
    where mail_lower is not null

    union all

    select
        upn_lower as org_address,
        user_id
    from org_mailboxes
    where upn_lower is not null

),

one_user_per_address as (

    -- an address held by two selected users (a data error) goes to the smallest user id
    select
        org_address,
        min(user_id) as user_id
    from addresses
    group by org_address

),

final as (

    select
        org_address,
        user_id,
        {{ email_domain('org_address') }} as org_domain
    from one_user_per_address

)

select * from final

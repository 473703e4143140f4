with

emails as (

    select * from {{ ref('int_emails') }}

),

email_roles as (

    select * from {{ ref('int_email_roles') }}

),

address_accounts as (

    select * from {{ ref('int_address_accounts') }}

),

account_roles as (

    -- the addresses of an account on each email: few, next to the org's internal mail and the
    -- newsletters that make up most of a mailbox
    select
        email_roles.internet_message_id,
        email_roles.address,
        email_roles.is_sender,
        email_roles.is_recipient,
        cast(null as {{ dbt.type_string() }}) as org_user_id,
        address_accounts.account_id
    from email_roles
    inner join address_accounts
        on email_roles.address = address_accounts.address
    where address_accounts.account_id is not null

),

account_emails as (

    -- only an email with an address of an account can be to or from an account: the org
    -- people of the other emails never count
    select distinct internet_message_id
    from account_roles

),

org_roles as (

    select
        email_roles.internet_message_id,
        email_roles.address,
        email_roles.is_sender,
        email_roles.is_recipient,
        address_accounts.org_user_id,
        cast(null as {{ dbt.type_string() }}) as account_id
    from email_roles
    inner join account_emails
        on email_roles.internet_message_id = account_emails.internet_message_id
    inner join address_accounts
        on email_roles.address = address_accounts.address
    where address_accounts.org_user_id is not null

),

final as (

    select people.*
    from (
        select * from account_roles
        union all
        select * from org_roles
    ) as people
    -- an email placed in time up to as_of_date (int_emails keeps every landed email)
    inner join emails
        on people.internet_message_id = emails.internet_message_id
    where emails.sent_date <= {{ as_of_date() }}

)

select * from final

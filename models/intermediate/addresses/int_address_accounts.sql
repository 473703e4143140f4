with

email_addresses as (

    -- the forms, not the month rows
    select * from {{ ref('int_email_addresses') }}
    where not is_day_row

),

events as (

    select * from {{ ref('stg_graph__events') }}

),

event_attendees as (

    select * from {{ ref('stg_graph__event_attendees') }}

),

org_addresses as (

    select * from {{ ref('int_org_addresses') }}

),

accounts as (

    select * from {{ ref('int_accounts') }}

),

contacts as (

    select * from {{ ref('stg_crm__contacts') }}

),

written_addresses as (

    -- every address as it was written on an email or a meeting (the meetings' addresses are
    -- already trimmed and lower case in staging)
    select written_address from email_addresses
    union
    select organizer_address as written_address from events
    union
    select attendee_address as written_address from event_attendees

),

normalised as (

    -- each written form trimmed and lower case once (tens of thousands of forms, not the
    -- hundred million entries of the emails)
    select
        written_address,
        nullif(lower(trim(written_address)), '') as address
    from written_addresses
    where written_address is not null

),

addresses as (

    select
        written_address,
        address,
        {{ email_domain('address') }} as address_domain
    from normalised
    where address is not null

),

contact_accounts as (

    -- rule 1: a contact's email (trimmed, lower case in staging) -> that contact's account;
    -- contacts of accounts missing from the accounts snapshot are ignored, and an email held
    -- by contacts of two accounts decides nothing (rule 2 is tried instead)
    select
        contacts.email_address,
        min(contacts.account_id) as account_id
    from contacts
    inner join accounts
        on contacts.account_id = accounts.account_id
    where contacts.email_address is not null
    group by contacts.email_address
    having count(distinct contacts.account_id) = 1

),

domain_accounts as (

    -- rule 2: the registered domain of exactly one account's website, neither a public mail
    -- domain nor an org domain (flagged in int_accounts)
    select
        registered_domain,
        account_id
    from accounts
    where is_matchable_domain

),

resolved as (

    select
        addresses.written_address,
        addresses.address,
        addresses.address_domain,
        org_addresses.user_id as org_user_id,
        case
            when org_addresses.user_id is not null then null
            when contact_accounts.account_id is not null then contact_accounts.account_id
            {% if var('domain_matching') %}
            when domain_accounts.account_id is not null then domain_accounts.account_id
            {% endif %}
        end as account_id,
        case
            when org_addresses.user_id is not null then 'org_mailbox'
            when contact_accounts.account_id is not null then 'contact_email'
            {% if var('domain_matching') %}
            when domain_accounts.account_id is not null then 'website_domain'
            {% endif %}
        end as matched_by
    from addresses
    left join org_addresses
        on addresses.address = org_addresses.org_address
    left join contact_accounts
        on addresses.address = contact_accounts.email_address
    left join domain_accounts
        on addresses.address_domain = domain_accounts.registered_domain

)

select * from resolved

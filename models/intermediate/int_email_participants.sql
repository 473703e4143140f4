with

emails as (

    select * from {{ ref('int_emails') }}

),

email_copies as (

    select * from {{ ref('int_email_copies') }}

),

message_recipients as (

    select * from {{ ref('stg_graph__message_recipients') }}

),

address_accounts as (

    select * from {{ ref('int_address_accounts') }}

),

senders as (

    select
        internet_message_id,
        from_address as address,
        1 as is_sender,
        0 as is_recipient
    from emails
    where from_address is not null

),

recipients as (

    -- the union of the to/cc/bcc lists over all copies (only the sender's copy shows bcc)
    select distinct
        email_copies.internet_message_id,
        message_recipients.recipient_address as address,
        0 as is_sender,
        1 as is_recipient
    from message_recipients
    inner join email_copies
        on
            message_recipients.mailbox_id = email_copies.mailbox_id
            and message_recipients.message_id = email_copies.message_id
    inner join emails
        on email_copies.internet_message_id = emails.internet_message_id

),

participants as (

    select
        internet_message_id,
        address,
        max(is_sender) = 1 as is_sender,
        max(is_recipient) = 1 as is_recipient
    from (
        select * from senders
        union all
        select * from recipients
    ) as email_roles
    group by
        internet_message_id,
        address

),

final as (

    select
        participants.internet_message_id,
        participants.address,
        participants.is_sender,
        participants.is_recipient,
        address_accounts.org_user_id,
        address_accounts.account_id
    from participants
    inner join address_accounts
        on participants.address = address_accounts.address
    -- only the people who can count: org mailboxes and addresses of an account
    where
        address_accounts.org_user_id is not null
        or address_accounts.account_id is not null

)

select * from final

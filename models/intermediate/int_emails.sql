with

email_copies as (

    select * from {{ ref('int_email_copies') }}

),

emails as (

    -- the copies of one email agree on these; min() picks one deterministically if not
    select
        internet_message_id,
        min(conversation_id) as conversation_id,
        min(sent_at) as sent_at,
        min(from_address) as from_address,
        count(*) as copies
    from email_copies
    group by internet_message_id

),

final as (

    select
        internet_message_id,
        conversation_id,
        sent_at,
        cast(sent_at as date) as sent_date,
        from_address,
        copies
    from emails
    -- an email is placed by its time; none after as_of_date (a run as of a past day sees no
    -- later mail)
    where
        sent_at is not null
        and cast(sent_at as date) <= {{ as_of_date() }}

)

select * from final

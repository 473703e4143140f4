{#- int_meetings is read by name where it is used: DuckDB would keep an import CTE
    read twice whole in memory -#}
with

meeting_copies as (

    select * from {{ ref('int_meeting_copies') }}

),

event_attendees as (

    select * from {{ ref('stg_graph__event_attendees') }}

),

address_accounts as (

    select * from {{ ref('int_address_accounts') }}

),

invitees as (

    -- an attendee declined in any copy is not a participant: the organizer's copy carries the
    -- responses, the other copies usually show `none`
    select
        meeting_copies.meeting_id,
        event_attendees.attendee_address as address
    from event_attendees
    inner join meeting_copies
        on
            event_attendees.mailbox_id = meeting_copies.mailbox_id
            and event_attendees.event_id = meeting_copies.event_id
    -- an entry without an address (e.g. a room without one) cannot be attributed
    where event_attendees.attendee_address is not null
    group by
        meeting_copies.meeting_id,
        event_attendees.attendee_address
    having max(case when event_attendees.response = 'declined' then 1 else 0 end) = 0

),

participants as (

    select
        meeting_id,
        address,
        max(is_organizer) = 1 as is_organizer
    from (
        select
            meeting_id,
            organizer_address as address,
            1 as is_organizer
        from {{ ref('int_meetings') }}
        where organizer_address is not null

        union all

        select
            invitees.meeting_id,
            invitees.address,
            0 as is_organizer
        from invitees
        inner join {{ ref('int_meetings') }} as meetings
            on invitees.meeting_id = meetings.meeting_id
    ) as meeting_roles
    group by
        meeting_id,
        address

),

final as (

    select
        participants.meeting_id,
        participants.address,
        participants.is_organizer,
        address_accounts.org_user_id,
        address_accounts.account_id
    from participants
    inner join address_accounts
        on participants.address = address_accounts.written_address
    -- only the people who can count: org mailboxes and addresses of an account
    where
        address_accounts.org_user_id is not null
        or address_accounts.account_id is not null

)

select * from final

{{ config(materialized='view') }}

with

events as (

    select * from {{ ref('stg_graph__events') }}

),

keyed as (

    select
        mailbox_id,
        event_id,
        -- an event without an iCalUId cannot be matched across calendars: each copy then
        -- stands for itself
        coalesce(
            ical_uid,
            {{ dbt.concat(["'graph:'", "mailbox_id", "':'", "event_id"]) }}
        ) as ical_uid,
        start_at_utc,
        end_at_utc,
        organizer_address,
        is_cancelled,
        is_all_day
    from events
    -- a series master is the recurrence rule, not an occurrence; a start in an unknown time
    -- zone cannot be placed in time (staging warns about it)
    where
        coalesce(event_type, '') <> 'seriesMaster'
        and start_at_utc is not null

),

final as (

    select
        {{ dbt.hash(dbt.concat([
            "ical_uid", "'|'", "cast(start_at_utc as " ~ dbt.type_string() ~ ")"
        ])) }} as meeting_id,
        mailbox_id,
        event_id,
        ical_uid,
        start_at_utc,
        end_at_utc,
        organizer_address,
        is_cancelled,
        is_all_day
    from keyed

)

select * from final

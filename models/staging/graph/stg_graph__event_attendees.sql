{{ config(materialized='table') }}

with

source as (

    select * from {{ source('graph', 'events') }}
    where not coalesce(_removed, false)

),

attendees as (

    select
        source._mailbox_id as mailbox_id,
        source.id as event_id,
        source."iCalUId" as ical_uid,
        attendee_list.attendee_position,
        {{ struct_field('attendee_list.attendee', 'type') }} as attendee_type,
        {{ struct_field('attendee_list.attendee', 'status.response') }} as response,
        {{ struct_field('attendee_list.attendee', 'emailAddress.address') }} as attendee_address,
        {{ struct_field('attendee_list.attendee', 'emailAddress.name') }} as attendee_name,
        source._loaded_at as loaded_at
    from source
    {{ unnest_struct_list(
        'source.attendees', 'attendee_list', 'attendee', 'attendee_position'
    ) }}

),

renamed as (

    select

        ---------- ids
        mailbox_id,
        event_id,
        nullif(trim(ical_uid), '') as ical_uid,

        ---------- attendee
        attendee_position,
        lower(attendee_type) as attendee_type,
        lower(response) as response,
        nullif(lower(trim(attendee_address)), '') as attendee_address,
        attendee_name,

        ---------- load metadata
        loaded_at

    -- an entry without an address (e.g. a room without one) is kept, its address null: the
    -- models that read it leave it out (filtered here, DuckDB plans the unnest slower)
    from attendees

)

select * from renamed

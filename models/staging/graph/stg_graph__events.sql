{{ config(materialized='table') }}

with

source as (

    select * from {{ source('graph', 'events') }}
    where not coalesce(_removed, false)

),

time_zones as (

    {{ time_zone_names() }}

),

renamed as (

    select

        ---------- ids
        source._mailbox_id as mailbox_id,
        source.id as event_id,
        nullif(trim(source."iCalUId"), '') as ical_uid,
        source."seriesMasterId" as series_master_id,

        ---------- kind
        source.type as event_type,
        coalesce(source."isCancelled", false) as is_cancelled,
        coalesce(source."isAllDay", false) as is_all_day,

        ---------- timestamps (UTC)
        {{ to_utc(
            struct_field('source."start"', 'dateTime'),
            struct_field('source."start"', 'timeZone'),
            'start_zone.iana_name'
        ) }} as start_at_utc,
        {{ to_utc(
            struct_field('source."end"', 'dateTime'),
            struct_field('source."end"', 'timeZone'),
            'end_zone.iana_name'
        ) }} as end_at_utc,
        {{ struct_field('source."start"', 'timeZone') }} as start_time_zone,
        {{ parse_graph_datetime('source."lastModifiedDateTime"') }} as last_modified_at,

        ---------- people
        nullif(lower(trim({{ struct_field('source.organizer', 'emailAddress.address') }})), '')
            as organizer_address,
        {{ struct_field('source.organizer', 'emailAddress.name') }} as organizer_name,

        ---------- load metadata
        source._loaded_at as loaded_at

    from source
    -- the IANA name of each zone (Windows names mapped): a join, not a lookup per row
    left join time_zones as start_zone
        on lower(trim({{ struct_field('source."start"', 'timeZone') }})) = start_zone.zone_key
    left join time_zones as end_zone
        on lower(trim({{ struct_field('source."end"', 'timeZone') }})) = end_zone.zone_key

)

select * from renamed

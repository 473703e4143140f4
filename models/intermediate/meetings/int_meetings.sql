with

meeting_copies as (

    select * from {{ ref('int_meeting_copies') }}

),

occurrences as (

    -- one meeting per iCalUId and start (UTC) across all org calendars; a copy cancelled or
    -- all-day anywhere makes the occurrence so
    select
        meeting_id,
        ical_uid,
        start_at_utc,
        max(end_at_utc) as end_at_utc,
        min(organizer_address) as organizer_address,
        max(case when is_cancelled then 1 else 0 end) = 1 as is_cancelled,
        max(case when is_all_day then 1 else 0 end) = 1 as is_all_day,
        count(*) as copies
    from meeting_copies
    group by
        meeting_id,
        ical_uid,
        start_at_utc

),

final as (

    select
        meeting_id,
        ical_uid,
        start_at_utc,
        end_at_utc,
        cast(start_at_utc as date) as start_date,
        -- whole seconds: int_account_period_figures averages them exactly (exact_mean)
        case
            when end_at_utc >= start_at_utc
                then {{ seconds_between('start_at_utc', 'end_at_utc') }}
        end as duration_seconds,
        organizer_address,
        copies
    from occurrences
    where
        not is_cancelled
        and not is_all_day
        and cast(start_at_utc as date) <= {{ as_of_date() }}

)

select * from final

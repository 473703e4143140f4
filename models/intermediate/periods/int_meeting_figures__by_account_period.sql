{#- One row per account and period of the window (int_periods) holding a meeting with the
    account: the meetings in each direction, their average length and the day of the last
    one. A meeting a third party organized is in neither direction but counts for the length
    and the last day. int_account_period_figures zero-fills the other periods. -#}
with

meeting_interactions as (

    select * from {{ ref('int_meeting_account_interactions') }}

),

periods as (

    select * from {{ ref('int_periods') }}

),

period_meetings as (

    -- each meeting in every period holding its day: the window's periods only
    select
        meeting_interactions.account_id,
        periods.aggregation_level,
        periods.period_start,
        meeting_interactions.meeting_id,
        meeting_interactions.is_to_account,
        meeting_interactions.is_from_account,
        meeting_interactions.duration_seconds,
        meeting_interactions.start_date
    from meeting_interactions
    inner join periods
        on meeting_interactions.start_date between periods.period_start and periods.period_end

),

final as (

    select
        account_id,
        aggregation_level,
        period_start,
        sum(case when is_to_account then 1 else 0 end) as meetings_to_account,
        sum(case when is_from_account then 1 else 0 end) as meetings_from_account,
        -- exact sums of whole seconds, one division: the same figure whatever the order of
        -- the rows (a floating-point avg() is not)
        {{ exact_mean('duration_seconds', 60) }} as average_meeting_minutes,
        max(start_date) as last_meeting_date_in_period
    from period_meetings
    group by
        account_id,
        aggregation_level,
        period_start

)

select * from final

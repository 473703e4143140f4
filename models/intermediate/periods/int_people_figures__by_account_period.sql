{#- One row per account and period of the window (int_periods) whose emails or meetings
    involved anybody: the people involved on each side, each counted once per account and
    period, apart for the emails and the meetings. The org side is the org mailboxes' users (a
    user's mail and UPN are one person), the account side the account's own addresses (an
    address of another account, or of nobody, is not this account's).
    int_account_period_figures zero-fills the other periods. -#}
with

periods as (

    select * from {{ ref('int_periods') }}

),

meeting_interactions as (

    select * from {{ ref('int_meeting_account_interactions') }}

),

meeting_participants as (

    select * from {{ ref('int_meeting_participants') }}

),

email_people_periods as (

    select * from {{ ref('int_account_email_people_periods') }}
    where not is_day_row

),

meeting_people_days as (

    -- once per account, day and person first
    select distinct
        meeting_interactions.account_id,
        meeting_interactions.start_date as activity_date,
        case
            when meeting_participants.org_user_id is not null then 'org'
            else 'account'
        end as side,
        coalesce(meeting_participants.org_user_id, meeting_participants.address) as person
    from meeting_interactions
    inner join meeting_participants
        on meeting_interactions.meeting_id = meeting_participants.meeting_id
    where
        -- the window's bounds as constants, which the engine prunes with
        meeting_interactions.start_date between {{ window_start_date() }} and {{ as_of_date() }}
        and (
            meeting_participants.org_user_id is not null
            or meeting_participants.account_id = meeting_interactions.account_id
        )

),

people_per_period as (

    -- the emails' people of the whole months and weeks of the window as
    -- int_account_email_people_periods counted them
    select
        counted.account_id,
        counted.aggregation_level,
        counted.period_start,
        'email' as medium,
        counted.side,
        counted.people
    from email_people_periods as counted
    inner join periods
        on
            counted.aggregation_level = periods.aggregation_level
            and counted.period_start = periods.period_start
    where periods.is_whole
    {%- for level in ['Year', 'Month', 'Week'] %}

    union all

    -- those of the other periods (the Year, the cut months and weeks) from the people of each
    -- day (the table is read by name in each level's branch: a CTE read three times would be
    -- kept whole in memory, 18 M rows at 2,500 mailboxes)
    select
        account_id,
        '{{ level }}' as aggregation_level,
        {{ period_start(level, 'activity_date') }} as period_start,
        'email' as medium,
        side,
        count(distinct person) as people
    from {{ ref('int_account_email_people_days') }}
    where
        not is_day_row
        and activity_date between {{ window_start_date() }} and {{ as_of_date() }}
        and {{ period_start(level, 'activity_date') }} in (
            select periods.period_start
            from periods
            where periods.aggregation_level = '{{ level }}' and not periods.is_whole
        )
    group by
        account_id,
        {{ period_start(level, 'activity_date') }},
        side
    {%- endfor %}
    {%- for level in ['Year', 'Month', 'Week'] %}

    union all

    -- the meetings' people of every period
    select
        account_id,
        '{{ level }}' as aggregation_level,
        {{ period_start(level, 'activity_date') }} as period_start,
        'meeting' as medium,
        side,
        count(distinct person) as people
    from meeting_people_days
    group by
        account_id,
        {{ period_start(level, 'activity_date') }},
        side
    {%- endfor %}

),

final as (

    select
        account_id,
        aggregation_level,
        period_start,
        sum(case when medium = 'email' and side = 'org' then people else 0 end)
            as email_org_contacts,
        sum(case when medium = 'email' and side = 'account' then people else 0 end)
            as email_account_contacts,
        sum(case when medium = 'meeting' and side = 'org' then people else 0 end)
            as meeting_org_contacts,
        sum(case when medium = 'meeting' and side = 'account' then people else 0 end)
            as meeting_account_contacts
    from people_per_period
    group by
        account_id,
        aggregation_level,
        period_start

)

select * from final

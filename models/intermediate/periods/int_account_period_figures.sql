{#- One row per account and period of the window (docs/metrics.md): a Year row for every
    account, Month and Week rows for the accounts active in the window; every figure `office`
    publishes, and the inputs of its EngagementScore. -#}
with

accounts as (

    select * from {{ ref('int_accounts') }}

),

account_activity as (

    select * from {{ ref('int_account_activity') }}

),

org_mailboxes as (

    select * from {{ ref('int_org_mailboxes') }}

),

periods as (

    select * from {{ ref('int_periods') }}

),

email_interactions as (

    select * from {{ ref('int_email_account_interactions') }}
    where not is_day_row

),

meeting_interactions as (

    select * from {{ ref('int_meeting_account_interactions') }}

),

meeting_participants as (

    select * from {{ ref('int_meeting_participants') }}

),

email_replies as (

    select * from {{ ref('int_account_email_replies') }}

),

---------- the rows: a Year row per account, Month and Week rows for the active ones

graph_landed as (

    -- no Graph data landed (or `remove graph`): the entity is empty
    select count(*) > 0 as has_org_mailboxes
    from org_mailboxes

),

account_periods as (

    select
        accounts.account_id,
        periods.aggregation_level,
        periods.period_start,
        periods.period_end,
        account_activity.engagement_start_date,
        account_activity.last_email_date_before_window,
        account_activity.last_meeting_date_before_window
    from accounts
    inner join account_activity
        on accounts.account_id = account_activity.account_id
    cross join periods
    cross join graph_landed
    where
        graph_landed.has_org_mailboxes
        and (periods.aggregation_level = 'Year' or account_activity.is_active_in_window)

),

---------- emails per account and period: per day first, then each day in its periods

email_days as (

    select
        account_id,
        sent_date,
        sum(case when is_to_account then 1 else 0 end) as emails_to_account,
        sum(case when is_from_account then 1 else 0 end) as emails_from_account
    from email_interactions
    where sent_date between {{ window_start_date() }} and {{ as_of_date() }}
    group by
        account_id,
        sent_date

),

email_figures as (
    {%- for level in ['Year', 'Month', 'Week'] %}

    select
        account_id,
        '{{ level }}' as aggregation_level,
        {{ period_start(level, 'sent_date') }} as period_start,
        sum(emails_to_account) as emails_to_account,
        sum(emails_from_account) as emails_from_account,
        max(sent_date) as last_email_date_in_period
    from email_days
    group by
        account_id,
        {{ period_start(level, 'sent_date') }}
    {%- if not loop.last %}

    union all
    {%- endif %}
    {%- endfor %}

),

---------- meetings per account and period

period_meetings as (

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

meeting_figures as (

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

),

---------- the people involved: the org mailboxes' users and the account's own addresses,
---------- each counted once per account and period

email_people as (

    -- each person once per account and period, then per side: the whole months and weeks of
    -- the window as int_account_email_people_periods counted them; the other periods (the
    -- Year, the cut months and weeks) from the people of each day (the table is read by name
    -- in each level's branch: a CTE read three times would be kept whole in memory, 18 M rows
    -- at 2,500 mailboxes)
    select
        account_id,
        aggregation_level,
        period_start,
        sum(case when side = 'org' then people else 0 end) as org_contacts,
        sum(case when side = 'account' then people else 0 end) as account_contacts
    from (
        select
            counted.account_id,
            counted.aggregation_level,
            counted.period_start,
            counted.side,
            counted.people
        from {{ ref('int_account_email_people_periods') }} as counted
        inner join periods
            on
                counted.aggregation_level = periods.aggregation_level
                and counted.period_start = periods.period_start
        where
            periods.is_whole
            and not counted.is_day_row
        {%- for level in ['Year', 'Month', 'Week'] %}

        union all

        select
            account_id,
            '{{ level }}' as aggregation_level,
            {{ period_start(level, 'activity_date') }} as period_start,
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
    ) as people_per_period
    group by
        account_id,
        aggregation_level,
        period_start

),

meeting_people_days as (

    -- once per account, day and person first: the org mailboxes' users (a user's mail and UPN
    -- are one person) and the account's own addresses (an address of another account on the
    -- meeting is not this account's)
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

meeting_people as (

    select
        account_id,
        aggregation_level,
        period_start,
        sum(case when side = 'org' then people else 0 end) as org_contacts,
        sum(case when side = 'account' then people else 0 end) as account_contacts
    from (
        {%- for level in ['Year', 'Month', 'Week'] %}
        select
            account_id,
            '{{ level }}' as aggregation_level,
            {{ period_start(level, 'activity_date') }} as period_start,
            side,
            count(distinct person) as people
        from meeting_people_days
        group by
            account_id,
            {{ period_start(level, 'activity_date') }},
            side
        {%- if not loop.last %}

        union all
        {%- endif %}
        {%- endfor %}
    ) as people_per_period
    group by
        account_id,
        aggregation_level,
        period_start

),

---------- replies of the account, placed by the reply's day

reply_figures as (

    select
        email_replies.account_id,
        periods.aggregation_level,
        periods.period_start,
        {{ exact_mean('email_replies.reply_seconds', 3600) }} as average_reply_hours
    from email_replies
    inner join periods
        on email_replies.sent_date between periods.period_start and periods.period_end
    group by
        email_replies.account_id,
        periods.aggregation_level,
        periods.period_start

),

---------- together, zero-filled

joined as (

    select
        account_periods.account_id,
        account_periods.aggregation_level,
        account_periods.period_start,
        account_periods.period_end,
        account_periods.engagement_start_date,
        coalesce(email_figures.emails_to_account, 0) as emails_to_account,
        coalesce(email_figures.emails_from_account, 0) as emails_from_account,
        coalesce(meeting_figures.meetings_to_account, 0) as meetings_to_account,
        coalesce(meeting_figures.meetings_from_account, 0) as meetings_from_account,
        coalesce(email_people.org_contacts, 0) as email_org_contacts,
        coalesce(meeting_people.org_contacts, 0) as meeting_org_contacts,
        coalesce(email_people.account_contacts, 0) as email_account_contacts,
        coalesce(meeting_people.account_contacts, 0) as meeting_account_contacts,
        meeting_figures.average_meeting_minutes,
        reply_figures.average_reply_hours,
        email_figures.last_email_date_in_period,
        meeting_figures.last_meeting_date_in_period,
        -- the last email / meeting up to the period's last day: the latest of this and the
        -- earlier periods of the window, else the last one before the window
        coalesce(
            max(email_figures.last_email_date_in_period) over (
                partition by account_periods.account_id, account_periods.aggregation_level
                order by account_periods.period_start
                rows between unbounded preceding and current row
            ),
            account_periods.last_email_date_before_window
        ) as last_email_date,
        coalesce(
            max(meeting_figures.last_meeting_date_in_period) over (
                partition by account_periods.account_id, account_periods.aggregation_level
                order by account_periods.period_start
                rows between unbounded preceding and current row
            ),
            account_periods.last_meeting_date_before_window
        ) as last_meeting_date
    from account_periods
    left join email_figures
        on
            account_periods.account_id = email_figures.account_id
            and account_periods.aggregation_level = email_figures.aggregation_level
            and account_periods.period_start = email_figures.period_start
    left join email_people
        on
            account_periods.account_id = email_people.account_id
            and account_periods.aggregation_level = email_people.aggregation_level
            and account_periods.period_start = email_people.period_start
    left join meeting_figures
        on
            account_periods.account_id = meeting_figures.account_id
            and account_periods.aggregation_level = meeting_figures.aggregation_level
            and account_periods.period_start = meeting_figures.period_start
    left join meeting_people
        on
            account_periods.account_id = meeting_people.account_id
            and account_periods.aggregation_level = meeting_people.aggregation_level
            and account_periods.period_start = meeting_people.period_start
    left join reply_figures
        on
            account_periods.account_id = reply_figures.account_id
            and account_periods.aggregation_level = reply_figures.aggregation_level
            and account_periods.period_start = reply_figures.period_start

),

final as (

    select
        joined.*,
        {{ engagement_recency(
            'last_email_date_in_period', 'last_meeting_date_in_period', 'period_end'
        ) }} as recency
    from joined

)

select * from final

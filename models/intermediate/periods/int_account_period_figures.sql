{#- One row per account and period of the window (docs/metrics.md): a Year row for every
    account, Month and Week rows for the accounts active in the window. The four subject
    models (emails, meetings, people, replies by account and period) joined and zero-filled,
    the last email and meeting up to each period's end, and the recency: every figure
    `office` publishes, and the inputs of its EngagementScore. -#}
with

account_activity as (

    select * from {{ ref('int_account_activity') }}

),

org_mailboxes as (

    select * from {{ ref('stg_graph__users') }}

),

periods as (

    select * from {{ ref('int_periods') }}

),

email_figures as (

    select * from {{ ref('int_email_figures__by_account_period') }}

),

meeting_figures as (

    select * from {{ ref('int_meeting_figures__by_account_period') }}

),

people_figures as (

    select * from {{ ref('int_people_figures__by_account_period') }}

),

reply_figures as (

    select * from {{ ref('int_reply_figures__by_account_period') }}

),

graph_landed as (

    -- no Graph data landed (or `remove graph`): the entity is empty
    select count(*) > 0 as has_org_mailboxes
    from org_mailboxes

),

account_periods as (

    -- int_account_activity holds every CRM account once
    select
        account_activity.account_id,
        periods.aggregation_level,
        periods.period_start,
        periods.period_end,
        account_activity.engagement_start_date,
        account_activity.last_email_date_before_window,
        account_activity.last_meeting_date_before_window
    from account_activity
    cross join periods
    cross join graph_landed
    where
        graph_landed.has_org_mailboxes
        and (periods.aggregation_level = 'Year' or account_activity.is_active_in_window)

),

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
        coalesce(people_figures.email_org_contacts, 0) as email_org_contacts,
        coalesce(people_figures.meeting_org_contacts, 0) as meeting_org_contacts,
        coalesce(people_figures.email_account_contacts, 0) as email_account_contacts,
        coalesce(people_figures.meeting_account_contacts, 0) as meeting_account_contacts,
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
    left join meeting_figures
        on
            account_periods.account_id = meeting_figures.account_id
            and account_periods.aggregation_level = meeting_figures.aggregation_level
            and account_periods.period_start = meeting_figures.period_start
    left join people_figures
        on
            account_periods.account_id = people_figures.account_id
            and account_periods.aggregation_level = people_figures.aggregation_level
            and account_periods.period_start = people_figures.period_start
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

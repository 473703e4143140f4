with

accounts as (

    select * from {{ ref('int_accounts') }}

),

email_interactions as (

    select * from {{ ref('int_email_account_interactions') }}
    where not is_day_row

),

meeting_interactions as (

    select * from {{ ref('int_meeting_account_interactions') }}

),

window_bounds as (

    select
        period_start as window_start,
        period_end as window_end
    from {{ ref('int_periods') }}
    where aggregation_level = 'Year'

),

emails as (

    select
        email_interactions.account_id,
        min(email_interactions.sent_date) as first_email_date,
        max(
            case
                when email_interactions.sent_date < window_bounds.window_start
                    then email_interactions.sent_date
            end
        ) as last_email_date_before_window,
        count(
            case
                when email_interactions.sent_date >= window_bounds.window_start
                    then email_interactions.internet_message_id
            end
        ) as emails_in_window
    from email_interactions
    cross join window_bounds
    -- up to as_of_date: int_email_account_interactions keeps every landed email
    where email_interactions.sent_date <= window_bounds.window_end
    group by email_interactions.account_id

),

meetings as (

    select
        meeting_interactions.account_id,
        min(meeting_interactions.start_date) as first_meeting_date,
        max(
            case
                when meeting_interactions.start_date < window_bounds.window_start
                    then meeting_interactions.start_date
            end
        ) as last_meeting_date_before_window,
        count(
            case
                when meeting_interactions.start_date >= window_bounds.window_start
                    then meeting_interactions.meeting_id
            end
        ) as meetings_in_window
    from meeting_interactions
    cross join window_bounds
    group by meeting_interactions.account_id

),

final as (

    select
        accounts.account_id,
        case
            when emails.first_email_date is null then meetings.first_meeting_date
            when meetings.first_meeting_date is null then emails.first_email_date
            when emails.first_email_date <= meetings.first_meeting_date
                then emails.first_email_date
            else meetings.first_meeting_date
        end as engagement_start_date,
        emails.last_email_date_before_window,
        meetings.last_meeting_date_before_window,
        coalesce(emails.emails_in_window, 0) as emails_in_window,
        coalesce(meetings.meetings_in_window, 0) as meetings_in_window,
        coalesce(emails.emails_in_window, 0) + coalesce(meetings.meetings_in_window, 0) > 0
            as is_active_in_window
    from accounts
    left join emails
        on accounts.account_id = emails.account_id
    left join meetings
        on accounts.account_id = meetings.account_id

)

select * from final

{#- The `office` entity of the BI contract: the per-period figures of
    int_account_period_figures, scored against the other accounts of the same period, with
    the contract's names and types. -#}
with

period_figures as (

    select * from {{ ref('int_account_period_figures') }}

),

scored as (

    -- every figure the score reads is published in the row: its meetings are those the org
    -- or the account organized (a meeting a third party organized counts only through the
    -- people involved and the recency), and a row with no email and no meeting to or from
    -- the account scores 0
    select
        *,
        {{ engagement_score(
            components=[
                ('emails_to_account', 'emails_to_account'),
                ('emails_from_account', 'emails_from_account'),
                ('meetings', 'meetings_to_account + meetings_from_account'),
                ('account_contacts', 'email_account_contacts + meeting_account_contacts'),
                ('org_contacts', 'email_org_contacts + meeting_org_contacts'),
            ],
            recency='recency',
            active='emails_to_account + emails_from_account'
                ~ ' + meetings_to_account + meetings_from_account > 0',
            partition_by='aggregation_level, period_start',
        ) }} as engagement_score
    from period_figures

),

final as (

    select
        cast(account_id as {{ dbt.type_string() }}) as "AccountId",
        cast(engagement_score as {{ dbt.type_int() }}) as "EngagementScore",
        cast(emails_to_account as {{ dbt.type_int() }}) as "NoOfEmails_ToAccount",
        cast(emails_from_account as {{ dbt.type_int() }}) as "NoOfEmails_FromAccount",
        cast(meetings_to_account as {{ dbt.type_int() }}) as "NoOfMeetings_ToAccount",
        cast(meetings_from_account as {{ dbt.type_int() }}) as "NoOfMeetings_FromAccount",
        cast(email_org_contacts as {{ dbt.type_int() }}) as "NoOfContactsInvolved_Emails",
        cast(meeting_org_contacts as {{ dbt.type_int() }}) as "NoOfContactsInvolved_Meetings",
        cast(email_account_contacts as {{ dbt.type_int() }})
            as "NoOfAccountContactsInvolved_Emails",
        cast(meeting_account_contacts as {{ dbt.type_int() }})
            as "NoOfAccountContactsInvolved_Meetings",
        cast(engagement_start_date as date) as "EngagementStartDate",
        cast(
            {{ dbt.datediff('last_email_date', 'period_end', 'day') }} as {{ dbt.type_int() }}
        ) as "DaysSinceLastEmail",
        cast(
            {{ dbt.datediff('last_meeting_date', 'period_end', 'day') }} as {{ dbt.type_int() }}
        ) as "DaysSinceLastMeeting",
        cast(average_meeting_minutes as {{ type_double() }}) as "AverageDuration_Of_Meetings",
        cast(average_reply_hours as {{ type_double() }})
            as "AverageDuration_Of_AccountEmailReplies",
        cast(period_start as date) as "AggregationStartDate",
        cast(aggregation_level as {{ dbt.type_string() }}) as "AggregationLevel"
    from scored

)

select * from final
